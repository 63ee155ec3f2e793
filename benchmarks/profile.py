"""Where the bot spends its time: sample a CLI run with py-spy, rank functions in bot/.

    python -m benchmarks.profile -- plan --repo REPO --base main --head change
    python -m benchmarks.profile -- validate DIR

py-spy samples every thread (the CPU work of `plan` runs in worker threads, out of
reach of in-process profilers that watch the main thread). Each sample is charged to
the innermost function of bot/ on its stack, so a library call counts towards the bot
function that made it; the table lists those shares, and the inclusive share of each.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

from benchmarks import harness

_FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^():]+):\d+\)$")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--cwd", type=Path, default=harness.CACHE)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="gitops-bot arguments")
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"]
    samples = record(command, args.rate, args.cwd)
    print(report(command, samples, args.top))


def record(
    command: list[str], rate: int, cwd: Path, env: dict[str, str] | None = None
) -> Counter[tuple[str, ...]]:
    """Collapsed stacks (outermost first) of every active thread, with sample counts."""
    return _py_spy(["--", *harness.python_command(*command)], rate, cwd, env)


def spy_on(pid: int, seconds: float, rate: int = 250) -> subprocess.Popen[bytes]:
    """Start sampling a running process for `seconds`; `collect` reads the result."""
    spy = harness.require("py-spy", "pip install '.[bench]' (it brings py-spy)")
    argv = [spy, "record", "--threads", "--format", "raw", "--rate", str(rate)]
    argv += ["--duration", str(max(1, int(seconds))), "--pid", str(pid)]
    argv += ["-o", str(harness.CACHE / "py-spy.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def collect(spy: subprocess.Popen[bytes]) -> Counter[tuple[str, ...]]:
    spy.wait()
    return _samples(harness.CACHE / "py-spy.txt")


def _py_spy(
    target: list[str], rate: int, cwd: Path, env: dict[str, str] | None = None
) -> Counter[tuple[str, ...]]:
    spy = harness.require("py-spy", "pip install '.[bench]' (it brings py-spy)")
    raw = harness.CACHE / "py-spy.txt"
    argv = [spy, "record", "--threads", "--format", "raw", "--rate", str(rate), "-o", str(raw)]
    subprocess.run(
        [*argv, *target],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _samples(raw)


def _samples(raw: Path) -> Counter[tuple[str, ...]]:
    samples: Counter[tuple[str, ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = tuple(f for f in stack.split(";") if not f.startswith("thread ("))
        if frames and not _waiting(frames[-1]):
            samples[frames] += int(count)
    return samples


def _waiting(frame: str) -> bool:
    """A thread blocked in a poll or a lock: py-spy counts some of those as active."""
    file, function = _where(frame)
    return (file, function.rpartition(".")[2]) in _WAITS


_WAITS = {
    ("selectors.py", "select"),
    ("threading.py", "wait"),
    ("threading.py", "_wait_for_tstate_lock"),
    ("concurrent/futures/thread.py", "_worker"),
}


def _where(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    return (match["file"], match["function"]) if match else ("?", frame)


def report(command: list[str], samples: Counter[tuple[str, ...]], top: int) -> str:
    total = sum(samples.values())
    innermost: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in samples.items():
        ours = [f"{file}:{function}" for file, function in map(_where, frames)]
        ours = [name for name in ours if name.startswith("bot/")]
        innermost[ours[-1] if ours else "(outside bot/: start-up, imports, event loop)"] += count
        for name in set(ours):
            inclusive[name] += count
    rows = [
        [f"`{name}`", f"{count / total:.1%}", f"{inclusive.get(name, count) / total:.1%}"]
        for name, count in innermost.most_common(top)
    ]
    headers = ["innermost bot/ function (file:function)", "share (self + libraries)", "inclusive"]
    return "\n".join(
        [
            f"Profile of `gitops-bot {' '.join(command)}`: {total} samples",
            "",
            harness.table(headers, rows),
        ]
    )


if __name__ == "__main__":
    main()
