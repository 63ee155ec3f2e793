"""Benchmark 5: how `gitops-bot plan` time and memory grow with the size of an environment.

    python -m benchmarks.plan_scaling                         # 10, 100, 1,000, 10,000 objects
    python -m benchmarks.plan_scaling --before HEAD~3         # the same for an older commit

For each size a real git repository gets two commits: the base holds the generated
objects, the head changes about 5% of them (edits, a few deletions and additions),
like a busy pull request. `plan --base main --head change` runs as a child process;
its wall time, CPU time and peak RSS (git children included) are measured from
outside. The sizes are interleaved, the order flipping each round, after a warm-up.
The growth exponent is the least-squares slope of log(time) over log(objects).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import harness, manifests
from benchmarks.harness import Command, Run, Summary

GOAL_SECONDS, GOAL_MB = 30.0, 300.0
CONFIG = """\
version: 1
kubernetes_version: "1.33"
environments:
  production:
    path: deploy
    cluster: production
    namespace: default
    prune: true
"""
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "Bench Author",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench Author",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def main() -> None:
    args = _arguments()
    info = harness.machine()
    harness.compile_bytecode()
    print("\n".join(harness.machine_lines(info)), file=sys.stderr)
    repos = {size: build_repo(size, args.changed, args.seed) for size in args.objects}
    trees: dict[str, Path | None] = {"working tree": None}
    if args.before and args.revert:
        label = f"working tree with {', '.join(args.revert)} as of {args.before}"
        trees[label] = harness.tree_with(args.before, args.revert)
    elif args.before:
        trees[f"@ {args.before}"] = harness.tree_at(args.before)
    # Every (tree, size) pair in one interleaved series, so load drifts hit all alike.
    sides = {
        f"{label} | {size:,}": _command(repo, tree)
        for label, tree in trees.items()
        for size, repo in repos.items()
    }
    runs = harness.alternate(sides, args.repetitions)
    sections, raw = [], {}
    for label in trees:
        mine = {
            size: r
            for name, r in runs.items()
            for tree, _, size in [name.partition(" | ")]
            if tree == label
        }
        summaries = {size: Summary.of(r) for size, r in mine.items()}
        commands = {size: sides[f"{label} | {size}"] for size in mine}
        sections.append(_section(label, args, commands, summaries))
        raw[label] = summaries
    if len(trees) == 2:
        sections.append(_same_output(runs, list(trees), args.objects))
    print(harness.report("Benchmark 5: plan scaling", "plan_scaling", info, sections))
    harness.save(args.json, {"machine": info, "results": raw})


def _same_output(runs: dict[str, list[Run]], labels: list[str], sizes: list[int]) -> str:
    """Whether both trees printed the very same plan (the fingerprint key is fixed)."""
    verdicts = []
    for size in sizes:
        same = _outputs(runs, labels[0], size) == _outputs(runs, labels[1], size)
        verdicts.append(f"{size:,} objects {'identical' if same else 'DIFFERENT'}")
    return f"Plan output of the two trees, byte for byte: {'; '.join(verdicts)}"


def _outputs(runs: dict[str, list[Run]], label: str, size: int) -> set[str]:
    return {r.stdout for r in runs[f"{label} | {size:,}"]}


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--changed", type=float, default=0.05, help="share of objects changed")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--before", help="also measure the bot as of this git commit")
    parser.add_argument(
        "--revert",
        nargs="+",
        metavar="PATH",
        help="with --before: the working tree with only these files as of that commit",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    return parser.parse_args()


def build_repo(size: int, changed: float, seed: int) -> Path:
    """A repository whose `main` holds `size` objects and whose `change` edits some."""
    base = manifests.generate(size, seed)
    head = manifests.change(base, changed, seed + 1)
    return commit_repo(f"plan-repo-{size}-seed{seed}-changed{changed}", base, head)


def commit_repo(
    name: str, base: list[manifests.ManifestFile], head: list[manifests.ManifestFile]
) -> Path:
    """A repository (in the cache, made anew) with `base` on `main` and `head` on `change`."""
    repo = harness.CACHE / name
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "--quiet", "--initial-branch=main")
    _commit(repo, base, "base")
    _git(repo, "checkout", "--quiet", "-b", "change")
    _commit(repo, head, "change")
    _git(repo, "checkout", "--quiet", "main")
    return repo


def _commit(repo: Path, files: list[manifests.ManifestFile], message: str) -> None:
    manifests.write(files, repo / "deploy")
    (repo / ".gitops-bot.yaml").write_text(CONFIG)
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "-m", message)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **_GIT_ENV}, check=True)


def _command(repo: Path, tree: Path | None) -> Command:
    argv = harness.python_command("plan", "--repo", str(repo), "--base", "main", "--head", "change")
    # A tree of an older commit runs from its own folder so `python -m bot` imports it.
    env = {"GITOPS_BOT_SECRET_FINGERPRINT_KEY": "benchmark"}  # the same plan text every run
    return Command(argv, cwd=tree or harness.CACHE, env=env, ok_codes=frozenset({0, 1}))


def _section(
    label: str, args: argparse.Namespace, sides: dict[str, Command], summaries: dict[str, Summary]
) -> str:
    sizes = args.objects
    walls = [summaries[f"{s:,}"].wall_s for s in sizes]
    cpus = [summaries[f"{s:,}"].cpu_s for s in sizes]
    rows = []
    for size in sizes:
        s = summaries[f"{size:,}"]
        rows.append(
            [
                f"{size:,}",
                f"{max(1, round(size * args.changed)):,}",
                f"**{s.wall_s:.2f}** ({s.wall_min_s:.2f}-{s.wall_max_s:.2f})",
                f"{s.cpu_s:.2f}",
                f"**{s.max_rss_mb:.0f}**",
                f"{s.load_1m:.2f}",
            ]
        )
    headers = ["objects", "changed", "wall s (min-max)", "CPU s", "peak RSS MB", "load 1m"]
    largest = summaries[f"{sizes[-1]:,}"]
    verdict = (
        f"goal at {sizes[-1]:,} objects: under {GOAL_SECONDS:.0f} s and {GOAL_MB:.0f} MB: "
        f"{'met' if largest.wall_s < GOAL_SECONDS and largest.max_rss_mb < GOAL_MB else 'MISSED'}"
    )
    lines = [
        f"### plan, {label}",
        "",
        harness.table(headers, rows),
        "",
        f"- fitted exponent (log-log least squares over all sizes): wall "
        f"**{harness.fit_exponent(sizes, walls):.2f}**, "
        f"CPU {harness.fit_exponent(sizes, cpus):.2f}",
    ]
    if len(sizes) >= 3:
        # The smallest size is nearly all start-up (imports, schemas, policies): the
        # time above it is what grows with the objects.
        above = [w - walls[0] for w in walls[1:]]
        if all(x > 0 for x in above):
            grown = harness.fit_exponent(sizes[1:], above)
            lines.append(
                f"- exponent of the time above the {sizes[0]:,}-object run (start-up taken "
                f"out), sizes {sizes[1]:,} to {sizes[-1]:,}: **{grown:.2f}**"
            )
    lines += [f"- {verdict}", f"- {largest.runs} runs per size after one warm-up, interleaved"]
    lines += [f"- command ({sizes[-1]:,} objects): `{sides[f'{sizes[-1]:,}'].shell()}`"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
