"""Benchmark 2: `gitops-bot validate` vs kubeconform, same corpus, same schemas, strict.

    python -m benchmarks.validate                      # 1,000 and 10,000 generated objects
    python -m benchmarks.validate --corpus DIR         # any folder of manifests instead
    python -m benchmarks.validate --before HEAD~3      # add the bot as of an older commit

Each size runs every side in the same session, interleaved, the order flipping each
round, after one warm-up round; the figures are medians. Throughput is objects found
divided by wall time, start-up included: that is what a user waits for.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import harness, kubeconform, manifests
from benchmarks.harness import BenchmarkError, Command, Run, Summary

KUBERNETES_VERSION = "1.33"
OURS = "gitops-bot validate"
BEFORE = "gitops-bot validate @ {ref}"
THEIRS = "kubeconform"
THEIRS_ONE = "kubeconform -n 1"
_OURS_COUNT = re.compile(r"(\d+) objects in (\d+) files checked, (\d+) findings")
_THEIRS_COUNT = re.compile(
    r"Summary: (\d+) resources? found in (\d+) files? - Valid: (\d+), Invalid: (\d+), "
    r"Errors: (\d+), Skipped: (\d+)"
)


def main() -> None:
    args = _arguments()
    info = harness.machine()
    harness.compile_bytecode()
    binary, location = kubeconform.binary(), kubeconform.schema_location(KUBERNETES_VERSION)
    before = _before_tree(args)
    inputs = _inputs(args)
    print("\n".join(harness.machine_lines(info)), file=sys.stderr)
    sections, raw = [], {}
    for label, folder, expected in inputs:
        print(f"{label}: {folder}", file=sys.stderr)
        label_before = f"{args.before} ({', '.join(args.revert)})" if args.revert else args.before
        sides = _sides(folder, binary, location, before, label_before)
        runs = harness.alternate(sides, args.repetitions, check=_checker(expected))
        sections.append(_section(label, sides, runs, before))
        raw[label] = {name: Summary.of(r) for name, r in runs.items()}
    print(harness.report("Benchmark 2: validation throughput", "validate", info, sections))
    harness.save(args.json, {"machine": info, "results": raw})


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--corpus", type=Path, help="measure this folder instead of generating")
    parser.add_argument("--before", help="also measure the bot as of this git commit")
    parser.add_argument(
        "--revert",
        nargs="+",
        metavar="PATH",
        help="with --before: the working tree with only these files as of that commit",
    )
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    return parser.parse_args()


def _before_tree(args: argparse.Namespace) -> Path | None:
    if not args.before:
        return None
    if args.revert:
        return harness.tree_with(args.before, args.revert)
    return harness.tree_at(args.before)


def _inputs(args: argparse.Namespace) -> list[tuple[str, Path, int | None]]:
    """(label, folder, objects every side must find and pass) per corpus measured."""
    if args.corpus:
        return [(f"corpus {args.corpus}", args.corpus.resolve(), None)]
    found = []
    for count in args.objects:
        folder = harness.CACHE / f"corpus-{count}-seed{args.seed}"
        manifests.write(manifests.generate(count, args.seed), folder)
        found.append((f"{count:,} generated objects", folder, count))
    return found


def _sides(
    folder: Path, binary: Path, location: str, before: Path | None, ref: str | None
) -> dict[str, Command]:
    theirs = [str(binary), "-strict", "-summary", "-kubernetes-version", "1.33.0"]
    theirs += ["-schema-location", location]
    ours = ["validate", "--kubernetes-version", KUBERNETES_VERSION, str(folder)]
    sides = {
        OURS: Command(harness.python_command(*ours), ok_codes=frozenset({0, 1})),
        THEIRS: Command([*theirs, str(folder)], ok_codes=frozenset({0, 1})),
        THEIRS_ONE: Command([*theirs, "-n", "1", str(folder)], ok_codes=frozenset({0, 1})),
    }
    if before is not None:
        # Run from the old tree so that `python -m bot` imports the old code.
        old = Command(harness.python_command(*ours), cwd=before, ok_codes=frozenset({0, 1}))
        sides[BEFORE.format(ref=ref)] = old
    return sides


def _checker(expected: int | None) -> Callable[[str, Run], None]:
    """Refuse a run that did not find and pass exactly the objects generated."""

    def check(name: str, run: Run) -> None:
        found, clean = _counts(name, run)
        if expected is not None and (found != expected or not clean):
            raise BenchmarkError(f"{name} found {found} objects, clean={clean}; want {expected}")

    return check


def _counts(name: str, run: Run) -> tuple[int, bool]:
    if name.startswith("kubeconform"):
        match = _THEIRS_COUNT.search(run.stdout)
        if not match:
            raise BenchmarkError(f"{name}: no summary in its output: {run.stdout[-500:]}")
        total, _, valid = (int(g) for g in match.groups()[:3])
        return total, valid == total
    match = _OURS_COUNT.search(run.stderr)
    if not match:
        raise BenchmarkError(f"{name}: no summary in its output: {run.stderr[-500:]}")
    return int(match.group(1)), int(match.group(3)) == 0


def _section(
    label: str, sides: dict[str, Command], runs: dict[str, list[Run]], before: Path | None
) -> str:
    summaries = {name: Summary.of(r) for name, r in runs.items()}
    objects = {name: _counts(name, r[0])[0] for name, r in runs.items()}
    rate = {name: objects[name] / s.wall_s for name, s in summaries.items()}
    rows = [
        [
            f"`{name}`",
            f"{objects[name]:,}",
            f"**{rate[name]:,.0f}**",
            f"{s.wall_s:.2f} ({s.wall_min_s:.2f}-{s.wall_max_s:.2f})",
            f"{s.cpu_s:.2f}",
            f"{s.max_rss_mb:.0f}",
            f"{s.load_1m:.2f}",
            f"{rate[name] / rate[THEIRS]:.2f}",
        ]
        for name, s in summaries.items()
    ]
    headers = ["side", "objects", "objects/s", "wall s (min-max)", "CPU s", "peak RSS MB"]
    headers += ["load 1m", "ratio to kubeconform"]
    commands = [f"- `{name}`: `{command.shell()}`" for name, command in sides.items()]
    if before is not None:
        commands.append(f"  (the `@` side runs `python -m bot` from {before})")
    runs_line = f"{summaries[OURS].runs} runs per side after one warm-up, interleaved"
    return "\n".join(
        [f"### {label}", "", harness.table(headers, rows), "", runs_line, "", *commands]
    )


if __name__ == "__main__":
    main()
