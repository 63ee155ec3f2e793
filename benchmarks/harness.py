"""The shared benchmark harness: timed child processes, alternating A/B runs, medians.

Every figure comes from a child process measured from outside: wall time around it,
and its CPU time and peak RSS from `wait4` (the same numbers `/usr/bin/time -v`
prints; they include the child's own children, such as git).
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GITOPS_BOT_CACHE", Path.home() / ".cache" / "gitops-bot")) / "bench"
PACKAGES = (
    "PyYAML",
    "jsonschema",
    "jsonschema-rs",
    "referencing",
    "kubernetes-validate",
    "aiohttp",
)


class BenchmarkError(RuntimeError):
    """A run did not do what the benchmark measures (it failed, or checked the wrong thing)."""


@dataclass(frozen=True)
class Run:
    """One execution of one command."""

    wall_s: float
    cpu_s: float  # user + system, children included
    max_rss_mb: float
    exit_code: int
    load_1m: float  # 1-minute load average just before the run
    stdout: str = field(repr=False, default="")
    stderr: str = field(repr=False, default="")


@dataclass(frozen=True)
class Command:
    """A command to measure, and which exit codes mean it did its job."""

    argv: Sequence[str]
    cwd: Path = ROOT
    env: Mapping[str, str] | None = None
    ok_codes: frozenset[int] = frozenset({0})
    # The child times itself (benchmarks/warm.py) and prints {"wall_s", "cpu_s"} last.
    timed_inside: bool = False

    def shell(self) -> str:
        """The command as one could paste it into a shell (for RESULTS.md)."""
        return " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    return arg if arg and all(c.isalnum() or c in "-_./=:@%+," for c in arg) else repr(arg)


def run(command: Command) -> Run:
    """Run once; wall time from outside, CPU and peak RSS of the child from wait4."""
    load = os.getloadavg()[0]
    # The bot's own settings come only from the command: none leak in from this shell.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env = {**inherited, **(command.env or {})}
    # Per process: two benchmarks running at once must not write each other's output.
    out_path, err_path = CACHE / f".stdout-{os.getpid()}", CACHE / f".stderr-{os.getpid()}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with out_path.open("wb") as out, err_path.open("wb") as err:
        start = time.perf_counter()
        process = subprocess.Popen(command.argv, cwd=command.cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    result = Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # Linux reports kilobytes
        exit_code=process.returncode,
        load_1m=load,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
    )
    out_path.unlink()
    err_path.unlink()
    if result.exit_code not in command.ok_codes:
        raise BenchmarkError(
            f"{command.shell()} exited {result.exit_code}:\n{result.stderr[-2000:]}"
        )
    if command.timed_inside:
        inside = json.loads(result.stdout.strip().splitlines()[-1])
        return replace(result, wall_s=inside["wall_s"], cpu_s=inside["cpu_s"])
    return result


@dataclass(frozen=True)
class Summary:
    """Medians (and spread) over the repetitions of one side."""

    runs: int
    wall_s: float
    wall_min_s: float
    wall_max_s: float
    cpu_s: float
    max_rss_mb: float
    load_1m: float

    @classmethod
    def of(cls, runs: Sequence[Run]) -> Summary:
        walls = [r.wall_s for r in runs]
        return cls(
            runs=len(runs),
            wall_s=statistics.median(walls),
            wall_min_s=min(walls),
            wall_max_s=max(walls),
            cpu_s=statistics.median(r.cpu_s for r in runs),
            max_rss_mb=statistics.median(r.max_rss_mb for r in runs),
            load_1m=statistics.median(r.load_1m for r in runs),
        )


def alternate(
    sides: Mapping[str, Command],
    repetitions: int,
    warmup: int = 1,
    check: Callable[[str, Run], None] | None = None,
    progress: bool = True,
) -> dict[str, list[Run]]:
    """Run every side `repetitions` times, interleaved, the order flipping each round.

    Interleaving spreads any drift in machine load over all sides alike; flipping the
    order keeps one side from always running on a cache the other just warmed. The
    warm-up rounds (page cache, compiled bytecode) are not kept. `check` may raise
    BenchmarkError when a run's output shows it did not do the work.
    """
    names = list(sides)
    kept: dict[str, list[Run]] = {name: [] for name in names}
    for round_ in range(warmup + repetitions):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            result = run(sides[name])
            if check:
                check(name, result)
            if round_ >= warmup:
                kept[name].append(result)
                if progress:
                    print(
                        f"  {name}: {result.wall_s:.3f} s, {result.max_rss_mb:.0f} MB "
                        f"(load {result.load_1m:.2f})",
                        file=sys.stderr,
                    )
    return kept


def fit_exponent(sizes: Sequence[float], times: Sequence[float]) -> float:
    """Slope of log(time) over log(size), least squares: 1.0 means linear."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(t) for t in times]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    num = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return num / sum((x - mean_x) ** 2 for x in xs)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memory_gb": round(_meminfo_kb("MemTotal") / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": {p: _package_version(p) for p in PACKAGES},
        "git": _first_line(["git", "--version"]),
        "commit": _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "dirty": bool(_first_line(["git", "-C", str(ROOT), "status", "--porcelain", "bot"])),
        "loadavg": os.getloadavg(),
    }


def report(title: str, module: str, info: Mapping[str, Any], sections: list[str]) -> str:
    """A benchmark's Markdown: its title, the command as it was run, the machine, results."""
    command = f"python -m benchmarks.{module} " + " ".join(sys.argv[1:])
    return "\n".join(
        [
            f"## {title}",
            "",
            f"Command: `{command.strip()}`",
            "",
            *machine_lines(info),
            "",
            *[s + "\n" for s in sections],
        ]
    )


def machine_lines(info: Mapping[str, Any]) -> list[str]:
    """The machine as Markdown bullet points."""
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
    dirty = " + uncommitted changes under bot/" if info["dirty"] else ""
    return [
        f"- date: {info['date']}",
        f"- machine: {info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM, "
        f"Linux {info['kernel']}",
        f"- software: Python {info['python']}, {packages}, {info['git']}",
        f"- gitops-bot: commit {info['commit']}{dirty}",
        f"- load average at start: {' / '.join(f'{x:.2f}' for x in info['loadavg'])}",
    ]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def save(path: Path | None, payload: Mapping[str, Any]) -> None:
    """Keep the raw numbers next to the Markdown, when asked to."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")


def _plain(value: object) -> object:
    if isinstance(value, Run | Summary):
        data = asdict(value)
        data.pop("stdout", None)
        data.pop("stderr", None)
        return data
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value))


def python_command(*args: str) -> list[str]:
    """`gitops-bot ...` with this interpreter, whichever one runs the benchmark."""
    return [sys.executable, "-m", "bot", *args]


def compile_bytecode(tree: Path = ROOT) -> Path:
    """The tree with its `bot` package's bytecode written, as `pip install` leaves an
    installed copy. Without it (a checkout run with PYTHONDONTWRITEBYTECODE set, as in
    containers and this machine's shells) every new process compiles the bot's ~90
    modules from source, a third of its import CPU, which no installed user pays."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "bot")], check=True)
    return tree


def tree_at(ref: str) -> Path:
    """The tree of commit `ref`, extracted with `git archive` (no worktree, no checkout)."""
    commit = _first_line(["git", "-C", str(ROOT), "rev-parse", "--short", f"{ref}^{{commit}}"])
    if not commit:
        raise BenchmarkError(f"{ref!r} names no commit in {ROOT}")
    target = CACHE / f"tree-{commit}"
    if not target.is_dir():
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
            check=True,
            capture_output=True,
        ).stdout
        scratch = CACHE / f".tree-{commit}.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(scratch, filter="data")
        scratch.rename(target)
    return compile_bytecode(target)


def tree_with(ref: str, paths: Sequence[str]) -> Path:
    """The working tree's bot/ and policies/, but `paths` as they are at commit `ref`.

    The before/after of a change to a few files while the rest of the tree moves on:
    only those files differ between the two sides.
    """
    target = CACHE / "tree-worktree-with-reverted-files"
    shutil.rmtree(target, ignore_errors=True)
    for folder in ("bot", "policies"):
        shutil.copytree(
            ROOT / folder, target / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    for path in paths:
        old = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{path}"], check=True, capture_output=True
        ).stdout
        (target / path).write_bytes(old)
    return compile_bytecode(target)


def require(tool: str, hint: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise BenchmarkError(f"{tool} not found: {hint}")
    return found


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _meminfo_kb(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _first_line(argv: Sequence[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return (done.stdout.strip().splitlines() or [""])[0]
