"""Benchmarks 3 and 4: live preview and apply against a real API server, next to kubectl.

    python -m benchmarks.cluster                       # 100 and 1,000 objects, both
    python -m benchmarks.cluster --only preview --objects 100
    python -m benchmarks.cluster --only preview --objects --storefront  # 35 objects

Three control planes (etcd + kube-apiserver from testenv/build.sh, started by
tests/helpers/controlplane.py), one per side, so that each side previews and applies objects
it applied itself (server-side apply field ownership stays each tool's own). All use
the admin identity. The sides: the `gitops-bot` CLI, a new process per run as kubectl
is; the same command in a warm process (`benchmarks/warm.py`: timed after one untimed
run, as `gitops-bot serve` runs every preview and apply in one long-lived process);
and kubectl. Per size, the repository of benchmark 5 (base commit `main`, head
`change` with about 5% of the objects edited, deleted or added) is applied at `main`
by each tool first, untimed. `--storefront` adds the 35-object microservices repository
of benchmarks/storefront.py, with its release pull request as `change`. Then,
interleaved with the order flipping each round:

- preview: `gitops-bot plan --base main --head change` (its live layer: server-side
  dry-run applies) vs `kubectl diff --server-side -R -f <head files>`;
- apply: `gitops-bot apply --ref X` vs `kubectl apply --server-side -R -f <files of X>`,
  X alternating between `change` and `main`, so that every run has ~5% to change.
  kubectl runs without --prune (what users typically run); the bot prunes, as
  configured, so it does a little more.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import harness, manifests, profile, storefront
from benchmarks.harness import BenchmarkError, Command, Run, Summary
from benchmarks.plan_scaling import commit_repo

sys.path.insert(0, str(harness.ROOT / "tests"))
from helpers import controlplane  # type: ignore[import-not-found]

OURS, WARM, THEIRS = "gitops-bot", "gitops-bot, warm process", "kubectl"
BOT_SIDES = (OURS, WARM)


def main() -> None:
    args = _arguments()
    info = harness.machine()
    harness.compile_bytecode()
    print("\n".join(harness.machine_lines(info)), file=sys.stderr)
    kubectl = _kubectl()
    bin_dir = _binaries()
    sections, raw = [], {}
    with contextlib.ExitStack() as stack:
        planes = {
            side: stack.enter_context(
                controlplane.start_control_plane(bin_dir, harness.CACHE / f"plane-{side}")
            )
            for side in (OURS, WARM, THEIRS)
        }
        for scenario in _scenarios(args):
            bench = Bench(scenario, planes, kubectl)
            bench.set_up()
            for what in ("preview", "apply"):
                if args.only in (None, what):
                    runs = bench.measure(what, args.repetitions)
                    sections.append(_section(what, bench, runs))
                    raw[f"{what}-{scenario.slug}"] = {n: Summary.of(r) for n, r in runs.items()}
                    if args.profile:
                        sections.append(bench.profile(what))
    print(harness.report("Benchmarks 3 and 4: live preview and apply", "cluster", info, sections))
    harness.save(args.json, {"machine": info, "results": raw})


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="*", default=[100, 1000])
    parser.add_argument("--storefront", action="store_true", help="the 35-object repository")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=["preview", "apply"])
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--profile", action="store_true", help="py-spy the bot's side too")
    return parser.parse_args()


def _kubectl() -> str:
    """kubectl at the API server's version (testenv/build.sh kubectl), as the tests use."""
    if os.environ.get("GITOPS_BOT_KUBECTL_BIN"):
        return str(Path(os.environ["GITOPS_BOT_KUBECTL_BIN"]) / "kubectl")
    build = harness.ROOT / "testenv/build.sh"
    done = subprocess.run(["bash", str(build), "kubectl"], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"testenv/build.sh kubectl failed: {done.stderr.strip()[-500:]}")
    return str(Path(done.stdout.strip().splitlines()[-1]) / "kubectl")


def _binaries() -> Path:
    """The kube-apiserver and etcd the tests use, built by testenv/build.sh if need be."""
    if os.environ.get(controlplane.BIN_ENV_VAR):
        return Path(os.environ[controlplane.BIN_ENV_VAR])
    found: Path | None = controlplane.find_binaries()
    if found is None:
        done = subprocess.run(
            ["bash", str(controlplane.BUILD_SCRIPT)], capture_output=True, text=True, check=True
        )
        found = Path(done.stdout.strip().splitlines()[-1])
    return found


@dataclass(frozen=True)
class Scenario:
    """The objects at `main` and at `change`, and the goals of the comparison."""

    title: str
    slug: str  # names its files and databases
    base: list[manifests.ManifestFile]
    head: list[manifests.ManifestFile]
    preview_goal: float  # kubectl diff / bot
    apply_goal: float = 3.0


def _scenarios(args: argparse.Namespace) -> Iterator[Scenario]:
    if args.storefront:
        base, head = storefront.storefront(), storefront.storefront(release=True)
        yield Scenario("the 35-object storefront, its release PR", "storefront", base, head, 1.0)
    for size in args.objects:
        base = manifests.generate(size, args.seed)
        head = manifests.change(base, 0.05, args.seed + 1)
        yield Scenario(f"{size:,} generated objects", str(size), base, head, 5.0)


class Bench:
    """One scenario: the repository, each commit's files on disk, and the commands."""

    def __init__(
        self, scenario: Scenario, planes: dict[str, controlplane.ControlPlane], kubectl: str
    ) -> None:
        self.scenario, self.planes, self.kubectl = scenario, planes, kubectl
        self.repo = commit_repo(f"cluster-repo-{scenario.slug}", scenario.base, scenario.head)
        self.trees = {
            "main": _written(scenario.base, f"files-{scenario.slug}-main"),
            "change": _written(scenario.head, f"files-{scenario.slug}-change"),
        }
        self.envs = {side: self._bot_env(side) for side in BOT_SIDES}
        self.applied = "main"

    def _bot_env(self, side: str) -> dict[str, str]:
        clusters = {"production": {"kubeconfig": str(self.planes[side].admin_kubeconfig)}}
        return {
            "GITOPS_BOT_CLUSTERS": json.dumps(clusters),
            "GITOPS_BOT_SECRET_FINGERPRINT_KEY": "benchmark",
            "GITOPS_BOT_DATABASE_URL": f"sqlite:///{_fresh_database(self.scenario.slug, side)}",
            "PYTHONPATH": str(harness.ROOT),  # for `python -m benchmarks.warm`
        }

    def _kubectl(self, *args: str) -> list[str]:
        kubeconfig = self.planes[THEIRS].admin_kubeconfig
        return [self.kubectl, f"--kubeconfig={kubeconfig}", "--request-timeout=120s", *args]

    def _bot(self, side: str, args: list[str], warm_up: list[str] | None = None) -> Command:
        env = self.envs[side]
        if side == OURS:
            return Command(harness.python_command(*args), cwd=harness.CACHE, env=env)
        first = ["--warm-up", shlex.join(warm_up)] if warm_up else []
        argv = [sys.executable, "-m", "benchmarks.warm", *first, "--", *args]
        return Command(argv, cwd=harness.CACHE, env=env, timed_inside=True)

    def set_up(self) -> None:
        """Namespaces first (a bare API server has no namespace controller), then `main`."""
        namespaces = harness.CACHE / f"files-{self.scenario.slug}-namespaces.yaml"
        objects = [o for f in self.scenario.base for o in f.objects]
        namespaces.write_text(
            "---\n".join(manifests.dump(o) for o in objects if o["kind"] == "Namespace")
        )
        for side in (*BOT_SIDES, THEIRS):
            kubeconfig = self.planes[side].admin_kubeconfig
            argv = [self.kubectl, f"--kubeconfig={kubeconfig}", "apply", "--server-side"]
            if namespaces.read_text():
                subprocess.run([*argv, "-f", str(namespaces)], check=True, capture_output=True)
            harness.run(self._apply_command(side, "main"))

    def _apply_command(self, side: str, ref: str) -> Command:
        if side == THEIRS:
            argv = self._kubectl("apply", "--server-side", "-R", "-f", str(self.trees[ref]))
            return Command(argv)
        # Runs alternate between two commits, so every other one goes back: --allow-older.
        args = ["apply", "--env", "production", "--repository", "github:bench/shop"]
        args += ["--allow-older", "--repo", str(self.repo), "--ref"]
        other = "main" if ref == "change" else "change"  # applied now: a warm-up changes nothing
        return self._bot(side, [*args, ref], warm_up=[*args, other])

    def measure(self, what: str, repetitions: int) -> dict[str, list[Run]]:
        if what == "preview":
            plan = ["plan", "--repo", str(self.repo), "--base", "main", "--head", "change"]
            diff = self._kubectl("diff", "--server-side", "-R", "-f", str(self.trees["change"]))
            sides = {side: self._bot(side, plan) for side in BOT_SIDES}
            sides[THEIRS] = Command(diff)
            self.commands = sides
            return harness.alternate(
                {n: replace(c, ok_codes=frozenset({0, 1})) for n, c in sides.items()},
                repetitions,
                check=_previewed,
            )
        return self._measure_apply(repetitions)

    def profile(self, what: str) -> str:
        """Where the bot's side spends its time (one more run, under py-spy)."""
        command = self.commands[OURS]
        if what == "apply":
            ref = "change" if self.applied == "main" else "main"
            for side in (*BOT_SIDES, THEIRS):  # all sides stay on the same commit
                command = self._apply_command(side, ref)
                if side != OURS:
                    harness.run(command)
            command = self._apply_command(OURS, ref)
            self.applied = ref
        args = [str(a) for a in command.argv[3:]]  # after `python -m bot`
        samples = profile.record(args, 250, command.cwd, dict(command.env or {}))
        return profile.report(args, samples, 12) + "\n"

    def _measure_apply(self, repetitions: int) -> dict[str, list[Run]]:
        """Each round applies the other commit on every side, so each run changes ~5%."""
        sides = (*BOT_SIDES, THEIRS)
        kept: dict[str, list[Run]] = {side: [] for side in sides}
        for round_ in range(repetitions + 1):
            ref = "change" if self.applied == "main" else "main"
            for side in sides if round_ % 2 == 0 else sides[::-1]:
                result = harness.run(self._apply_command(side, ref))
                if round_ > 0:  # the first round warms up
                    kept[side].append(result)
                    print(f"  apply {side} -> {ref}: {result.wall_s:.2f} s", file=sys.stderr)
            self.applied = ref
        # Shown for `change`; every other run applies `main` the same way.
        self.commands = {side: self._apply_command(side, "change") for side in sides}
        return kept


def _fresh_database(slug: str, side: str) -> Path:
    """The bot's store (audit ledger, locks) for one side and scenario of a session, empty."""
    database = harness.CACHE / f"cluster-bench-{slug}-{side.split(',')[-1].strip()}.sqlite3"
    for leftover in database.parent.glob(database.name + "*"):  # -wal, -shm too
        leftover.unlink()
    return database


def _written(files: list[manifests.ManifestFile], name: str) -> Path:
    folder = harness.CACHE / name
    manifests.write(files, folder)
    return folder


def _previewed(name: str, run: Run) -> None:
    """The bot's plan must really have compared with the cluster."""
    for sign in ("not compared", "cannot preview", "not previewed"):
        if name in BOT_SIDES and sign in run.stdout:
            raise BenchmarkError(f"the bot's plan did not preview every object: {sign!r}")
    if name == THEIRS and run.exit_code == 1 and not run.stdout.strip():
        raise BenchmarkError(f"kubectl diff failed: {run.stderr[-500:]}")


def _section(what: str, bench: Bench, runs: dict[str, list[Run]]) -> str:
    summaries = {name: Summary.of(r) for name, r in runs.items()}
    scenario = bench.scenario
    goal = scenario.preview_goal if what == "preview" else scenario.apply_goal
    rows = [
        [
            f"`{name}`",
            f"**{s.wall_s:.2f}** ({s.wall_min_s:.2f}-{s.wall_max_s:.2f})",
            f"{s.cpu_s:.2f}",
            f"{s.max_rss_mb:.0f}",
            f"{s.load_1m:.2f}",
        ]
        for name, s in summaries.items()
    ]
    headers = ["side", "wall s (min-max)", "CPU s (client)", "peak RSS MB", "load 1m"]
    commands = [f"- `{name}`: `{c.shell()}`" for name, c in bench.commands.items()]
    return "\n".join(
        [
            f"### {what}, {scenario.title}",
            "",
            harness.table(headers, rows),
            "",
            *(_ratio(summaries, side, goal) for side in BOT_SIDES),
            f"- {summaries[OURS].runs} runs per side; the warm process's times are taken "
            "inside it (its CPU is the timed run's, its peak RSS the whole process's)",
            *commands,
        ]
    )


def _ratio(summaries: dict[str, Summary], side: str, goal: float) -> str:
    ratio = summaries[THEIRS].wall_s / summaries[side].wall_s
    verdict = "met" if ratio >= goal else "MISSED"
    return f"- kubectl / `{side}` wall time: **{ratio:.2f}x** (goal: at least {goal:g}x: {verdict})"


if __name__ == "__main__":
    main()
