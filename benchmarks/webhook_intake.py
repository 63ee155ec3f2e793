"""Benchmark 1: webhook intake of `gitops-bot serve` vs a bare aiohttp 202 handler.

    python -m benchmarks.webhook_intake                 # 500/s open loop, then flat out
    python -m benchmarks.webhook_intake --store postgres

Both servers get the same signed `pull_request` (synchronize) deliveries, a real
example payload from @octokit/webhooks-examples, on loopback. The bot runs as users
run it (`python -m bot serve`: SQLite store, WAL, synchronous=FULL, so every 2xx
means the delivery is on disk; access log on; one job worker). With `--store postgres`
the bot stores into a real PostgreSQL server started for the run with its default
durability (fsync and synchronous_commit on), a fresh database per round. Its GitHub API and
clone URLs point at a loopback black hole, so the worker waits on the network, as it
mostly does for real, instead of spinning on failures. After each run the deliveries
table must hold every delivery that got a 2xx, or the run is refused.

Per repetition, the sides alternate (order flipping each round); each side gets a
fresh server and database, then an open-loop run at --rate and a closed-loop run with
--connections clients. Bounded: --seconds per run (120 at most), loopback only. The
first --warmup seconds of each open-loop run are sent but not counted (connections
opening, the server's first requests). The report gives the median p99 of the rounds,
its spread over the rounds, the bot / bare ratio of each round (the two sides of a
round ran back to back), and the p99 of every round's requests pooled.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import cores, harness, loadgens, profile
from benchmarks.harness import BenchmarkError

SECRET = "benchmark-webhook-secret"  # noqa: S105 - signs loopback test deliveries
EXAMPLES = harness.ROOT / "build/npm/node_modules/@octokit/webhooks-examples/api.github.com"
BARE, BOT = "bare aiohttp 202 handler", "gitops-bot serve"
PROFILES: list[str] = []  # py-spy tables of the bot under closed-loop load, with --profile
POOLED: dict[str, list[float]] = {BARE: [], BOT: []}  # every open-loop 2xx latency, ms


def main() -> None:
    args = _arguments()
    info = harness.machine()
    harness.compile_bytecode()
    print("\n".join(harness.machine_lines(info)), file=sys.stderr)
    hole_port = _free_port()
    payload = _payload(hole_port)
    loadgens.command(args.loadgen)  # built before anything is measured
    args.placement.pin_rest()  # the black hole, PostgreSQL and the load generator
    if args.nice:  # inherited by every process started from here on, both sides alike
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    hole = subprocess.Popen(_python("benchmarks.servers", "black-hole", "--port", str(hole_port)))
    results: dict[str, list[dict[str, Any]]] = {BARE: [], BOT: []}
    try:
        with _store(args.store) as databases:
            for round_ in range(args.repetitions):
                store = databases(round_)
                for side in (BARE, BOT) if round_ % 2 == 0 else (BOT, BARE):
                    results[side].append(_measure(side, args, payload, hole_port, store))
    finally:
        hole.terminate()
        hole.wait()
    print(_report(args, info, results))
    harness.save(args.json, {"machine": info, "results": results})


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="seconds of each open-loop run not counted"
    )
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    parser.add_argument("--profile", action="store_true", help="py-spy the bot under load")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--loadgen",
        choices=("go", "python"),
        default="go",
        help="go: benchmarks/intakeload, built on first use; python: benchmarks/loadgen.py",
    )
    parser.add_argument(
        "--pin",
        choices=("auto", "off"),
        default="auto",
        help="auto: the server under test on one core, everything else on the others "
        "(SQLite store only; with PostgreSQL nothing is pinned); off: nothing is pinned",
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the benchmark's processes (both servers, the load generator, the black "
        "hole, PostgreSQL) at this nice value, -20 to 19: below 0 (root only) the "
        "machine's other work waits for them",
    )
    args = parser.parse_args()
    # PostgreSQL needs a core as much as the bot does: with both servers of the bot's side
    # on one core and the load generator, it starved (RESULTS.md, "Intake (intake)").
    auto_off = args.pin == "auto" and args.store == "postgres"
    args.placement = cores.placement("off" if auto_off else args.pin)
    return args


Databases = Callable[[int], "Store"]


@dataclass(frozen=True)
class Store:
    """Where the bot of one round stores: a SQLite file in its scratch folder, or a URL."""

    round_: int
    postgres_url: str | None = None

    def url(self, scratch: Path) -> str:
        return self.postgres_url or f"sqlite:///{scratch / 'bench.sqlite3'}"

    def stored(self, scratch: Path) -> int:
        query = "SELECT count(*) FROM deliveries"
        if self.postgres_url is None:
            with sqlite3.connect(f"file:{scratch / 'bench.sqlite3'}?mode=ro", uri=True) as db:
                return int(db.execute(query).fetchone()[0])
        import psycopg

        with psycopg.connect(self.postgres_url) as db:
            row = db.execute(query).fetchone()
            return int(row[0]) if row else 0


@contextlib.contextmanager
def _store(kind: str) -> Iterator[Databases]:
    """Per round: a SQLite file, or a new database on one durable PostgreSQL server."""
    if kind == "sqlite":
        yield lambda round_: Store(round_)
        return
    sys.path.insert(0, str(harness.ROOT / "tests"))
    from helpers import postgres  # type: ignore[import-not-found]

    # Not under the cache: the server runs as the postgres account, which root's home bars.
    workdir = Path(tempfile.mkdtemp(prefix="gitops-bot-intake-"))
    with postgres.start_postgres(postgres.find_bin_dir(), workdir, durable=True) as server:
        yield lambda round_: Store(round_, postgres.create_database(server, f"intake{round_}"))
    shutil.rmtree(workdir, ignore_errors=True)


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _payload(hole_port: int) -> Path:
    """The first real pull_request synchronize example, its GitHub URLs sent to the hole."""
    index = EXAMPLES / "index.json"
    if not index.is_file():
        subprocess.run(["bash", str(harness.ROOT / "tests/openapi/install.sh")], check=True)
    entries = json.loads(index.read_text())
    examples = next(e["examples"] for e in entries if e["name"] == "pull_request")
    payload = next(e for e in examples if e.get("action") == "synchronize")
    text = json.dumps(payload)
    for origin in ("https://api.github.com", "https://github.com"):
        text = text.replace(origin, f"http://127.0.0.1:{hole_port}")
    target = harness.CACHE / "pull_request.synchronize.json"
    target.parent.mkdir(parents=True, exist_ok=True)  # the first benchmark run of a machine
    target.write_text(text)
    return target


def _measure(
    side: str, args: argparse.Namespace, payload: Path, hole_port: int, store: Store
) -> dict[str, Any]:
    port = _free_port()
    scratch = harness.CACHE / f"intake-{store.round_}-{'bot' if side == BOT else 'bare'}"
    if scratch.exists():
        subprocess.run(["rm", "-rf", str(scratch)], check=True)
    scratch.mkdir(parents=True)
    server = _start(side, port, hole_port, scratch, store.url(scratch), args.placement)
    try:
        _wait_healthy(port, server)
        url = f"http://127.0.0.1:{port}/webhooks/github"
        load = [_load(url, payload, args, server.pid, rate=args.rate)]
        POOLED[side].extend(load[0].pop("latencies_ms"))
        load.append(_load(url, payload, args, server.pid, rate=None))
        if args.profile and side == BOT:
            # A run of its own, not in the figures: py-spy pauses the process for each
            # sample, which cost the bot 15-30% of its sustained rate in the measured run.
            spy = profile.spy_on(server.pid, args.seconds)
            load.append(_load(url, payload, args, server.pid, rate=None))
            PROFILES.append(profile.report(["serve"], profile.collect(spy), 15))
    finally:
        usage = _stop(server)
    if side == BOT:
        _check_durable(store.stored(scratch), sum(r["answered_2xx"] for r in load))
    print(f"  {side}: {json.dumps(load)}", file=sys.stderr)
    return {"open": load[0], "closed": load[1], "server": usage}


def _start(
    side: str,
    port: int,
    hole_port: int,
    scratch: Path,
    database_url: str,
    placement: cores.Placement,
) -> subprocess.Popen[bytes]:
    log = (scratch / "server.log").open("wb")
    pin = placement.server_preexec()
    if side == BARE:
        argv = _python("benchmarks.servers", "bare", "--port", str(port))
        return subprocess.Popen(argv, cwd=harness.ROOT, stdout=log, stderr=log, preexec_fn=pin)
    hole = f"http://127.0.0.1:{hole_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env |= {
        "GITOPS_BOT_HOST": "127.0.0.1",
        "GITOPS_BOT_PORT": str(port),
        "GITOPS_BOT_DATABASE_URL": database_url,
        "GITOPS_BOT_DATA_DIR": str(scratch / "data"),
        "GITOPS_BOT_GITHUB_WEBHOOK_SECRET": SECRET,
        "GITOPS_BOT_GITHUB_TOKEN": "not-a-real-token",
        "GITOPS_BOT_GITHUB_BOT_LOGIN": "gitops-bot[bot]",
        "GITOPS_BOT_GITHUB_API_URL": hole,
        "GITOPS_BOT_WORKER_COUNT": "1",
    }
    argv = _python("bot", "serve")
    return subprocess.Popen(argv, cwd=scratch, env=env, stdout=log, stderr=log, preexec_fn=pin)


def _wait_healthy(port: int, server: subprocess.Popen[bytes], limit_s: float = 60.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchmarkError(f"server exited with {server.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise BenchmarkError(f"server on port {port} not healthy after {limit_s:.0f} s")


def _load(
    url: str, payload: Path, args: argparse.Namespace, pid: int, rate: float | None
) -> dict[str, Any]:
    argv = loadgens.command(args.loadgen) + loadgens.options(
        url=url,
        payload=payload,
        secret=SECRET,
        seconds=args.seconds,
        connections=args.connections,
    )
    if rate:
        argv += loadgens.options(rate=rate, warmup=args.warmup, latencies=True)
    load, cpu = os.getloadavg()[0], _cpu_seconds(pid)
    done = subprocess.run(argv, cwd=harness.ROOT, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    result["load_1m"] = load
    # The warm-up's requests are sent but not in the statuses: count them for the CPU.
    sent = sum(result["statuses"].values()) + (int(rate * args.warmup) if rate else 0)
    result["server_cpu_ms"] = round((_cpu_seconds(pid) - cpu) * 1000 / max(1, sent), 3)
    return result


def _cpu_seconds(pid: int) -> float:
    """The server's CPU time so far (all its threads, not its children), from /proc:
    unlike wait4 at the end, it leaves out start-up and shutdown."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(server: subprocess.Popen[bytes]) -> dict[str, float]:
    """Interrupt the server as a user would; its CPU time and peak RSS from wait4."""
    server.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(server.pid, os.WNOHANG)
        if pid:
            server.returncode = os.waitstatus_to_exitcode(status)
            return {"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}
        time.sleep(0.1)
    server.kill()
    _, _, usage = os.wait4(server.pid, 0)
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_mb": usage.ru_maxrss / 1024}


def _check_durable(stored: int, answered: int) -> None:
    if stored < answered:
        raise BenchmarkError(f"{answered} deliveries answered 2xx but only {stored} stored")


_LOADGENS = {
    "go": "`benchmarks/intakeload` (Go, requests signed ahead of time)",
    "python": "`benchmarks/loadgen.py` (Python, aiohttp)",
}


def _cpu(runs: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{_median(runs, mode, 'server_cpu_ms'):.3f} ms" for mode in ("open", "closed")
    )


def _median(runs: list[dict[str, Any]], mode: str, key: str) -> float:
    return statistics.median(float(r[mode][key]) for r in runs)


def _spread(runs: list[dict[str, Any]]) -> str:
    values = [float(r["open"]["p99_ms"]) for r in runs]
    return f"{min(values):.2f}-{max(values):.2f}"


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def _report(
    args: argparse.Namespace, info: dict[str, Any], results: dict[str, list[dict[str, Any]]]
) -> str:
    rows = []
    for side, runs in results.items():
        rows.append(
            [
                f"`{side}`",
                f"{_median(runs, 'open', 'per_second'):,.0f}",
                f"{_median(runs, 'open', 'p50_ms'):.2f}",
                f"**{_median(runs, 'open', 'p99_ms'):.2f}**",
                f"**{_median(runs, 'closed', 'per_second'):,.0f}**",
                f"{_median(runs, 'closed', 'p50_ms'):.2f}",
                f"{_median(runs, 'closed', 'p99_ms'):.2f}",
                f"{statistics.median(r['open']['load_1m'] for r in runs):.2f}",
            ]
        )
    headers = [
        "server",
        f"answered/s at {args.rate:g}/s",
        "p50 ms",
        "p99 ms",
        f"sustained/s ({args.connections} conns)",
        "p50 ms",
        "p99 ms",
        "load 1m",
    ]
    p99_ratio = _median(results[BOT], "open", "p99_ms") / _median(results[BARE], "open", "p99_ms")
    ratios = [
        bot["open"]["p99_ms"] / bare["open"]["p99_ms"]
        for bot, bare in zip(results[BOT], results[BARE], strict=True)
    ]
    sustained = _median(results[BOT], "closed", "per_second")
    command = "python -m benchmarks.webhook_intake " + " ".join(sys.argv[1:])
    return "\n".join(
        [
            f"## Benchmark 1: webhook intake ({args.store} store)",
            "",
            f"Command: `{command.strip()}`",
            "",
            *harness.machine_lines(info),
            f"- load generator: {_LOADGENS[args.loadgen]}",
            f"- cores: {args.placement.describe()}",
            f"- priority: nice {args.nice} for every process of the benchmark, both sides "
            "alike" + ("" if args.nice else " (the default: other work competes equally)"),
            "",
            harness.table(headers, rows),
            "",
            f"- p99 at {args.rate:g}/s, bot / bare: **{p99_ratio:.2f}x** "
            f"(goal: within 2x: {'met' if p99_ratio <= 2 else 'MISSED'})",
            f"- p99 at {args.rate:g}/s, spread over the rounds: bot {_spread(results[BOT])} ms, "
            f"bare {_spread(results[BARE])} ms; bot / bare in each round "
            f"{min(ratios):.2f}x-{max(ratios):.2f}x",
            f"- p99 of all {len(POOLED[BOT]):,} open-loop requests of the bot pooled: "
            f"{_p99(POOLED[BOT]):.2f} ms; of the bare handler's {len(POOLED[BARE]):,}: "
            f"{_p99(POOLED[BARE]):.2f} ms ({_p99(POOLED[BOT]) / _p99(POOLED[BARE]):.2f}x); "
            f"the first {args.warmup:g} s of each open-loop run are not counted",
            f"- server CPU per request, start-up left out (medians; open loop, closed loop): "
            f"bot {_cpu(results[BOT])}, bare {_cpu(results[BARE])} (far less moved by the "
            "machine's load than the latencies)",
            f"- sustained durable deliveries/s: **{sustained:,.0f}** "
            f"(goal: at least 1,000: {'met' if sustained >= 1000 else 'MISSED'})",
            f"- medians of {args.repetitions} rounds, {args.seconds:g} s per run, sides "
            f"alternating; every 2xx of the bot was found in its {args.store} deliveries table",
            *(f"\n{table}" for table in PROFILES),
        ]
    )


if __name__ == "__main__":
    main()
