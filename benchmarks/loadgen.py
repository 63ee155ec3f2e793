"""A load generator for signed GitHub webhook deliveries, loopback only, bounded.

    python -m benchmarks.loadgen --url http://127.0.0.1:18080/webhooks/github \\
        --payload PR.json --secret S --rate 500 --seconds 10
    python -m benchmarks.loadgen ... --connections 64 --seconds 10      # as fast as it goes

With --rate it is open-loop: request i is due at start + i/rate whatever happened to
the earlier ones, and its latency counts from when it was due, so a server that falls
behind shows it (no coordinated omission). Without --rate, --connections clients send
back to back (closed loop), which finds the sustained maximum. Every delivery has its
own X-GitHub-Delivery id and a valid X-Hub-Signature-256. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

REQUEST_TIMEOUT_S = 30.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # seconds, 2xx answers only
    statuses: dict[str, int] = field(default_factory=dict)
    last_answer: float = 0.0

    def record(self, outcome: str, latency: float | None) -> None:
        self.statuses[outcome] = self.statuses.get(outcome, 0) + 1
        if latency is not None:
            self.latencies.append(latency)
        self.last_answer = time.perf_counter()


class Deliveries:
    """Signed requests for one payload; only the delivery id changes between them."""

    def __init__(self, url: str, body: bytes, secret: str) -> None:
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"loopback only: {url}")
        self.url, self.body = url, body
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/benchmark",
            "X-GitHub-Event": "pull_request",
            "X-Hub-Signature-256": f"sha256={signature}",
        }
        self.run = uuid.uuid4().hex[:12]
        self.count = 0

    async def send(self, session: aiohttp.ClientSession, due: float, tally: Tally) -> None:
        self.count += 1
        headers = {**self.headers, "X-GitHub-Delivery": f"{self.run}-{self.count}"}
        try:
            async with session.post(self.url, data=self.body, headers=headers) as response:
                await response.read()
                ok = 200 <= response.status < 300
                tally.record(str(response.status), time.perf_counter() - due if ok else None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.record(type(exc).__name__, None)


async def open_loop(
    deliveries: Deliveries, rate: float, seconds: float, limit: int, warmup: float = 0.0
) -> Tally:
    """Send at `rate` for `warmup` + `seconds`; what is due in the warm-up is not counted
    (the client opens its connections then, and the server meets its first requests)."""
    tally, unseen, tasks = Tally(), Tally(), []
    connector = aiohttp.TCPConnector(limit=limit)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        first = time.perf_counter()
        start = first + warmup
        for i in range(int(rate * (warmup + seconds))):
            due = first + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            counted = tally if due >= start else unseen
            tasks.append(asyncio.create_task(deliveries.send(session, due, counted)))
        await asyncio.gather(*tasks)
    return _timed(tally, start)


async def closed_loop(deliveries: Deliveries, connections: int, seconds: float) -> Tally:
    tally = Tally()
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        end = start + seconds

        async def client() -> None:
            while time.perf_counter() < end:
                await deliveries.send(session, time.perf_counter(), tally)

        await asyncio.gather(*(client() for _ in range(connections)))
    return _timed(tally, start)


def _timed(tally: Tally, start: float) -> Tally:
    tally.last_answer -= start
    return tally


def summary(tally: Tally, mode: str, latencies: bool = False) -> dict[str, object]:
    ok = len(tally.latencies)
    ms = sorted(x * 1000 for x in tally.latencies)

    def pct(p: float) -> float | None:
        return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 2) if ms else None

    return {
        "mode": mode,
        "answered_2xx": ok,
        "statuses": tally.statuses,
        "seconds": round(tally.last_answer, 3),
        "per_second": round(ok / tally.last_answer, 1) if tally.last_answer else 0,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "max_ms": round(ms[-1], 2) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    } | ({"latencies_ms": [round(x, 3) for x in ms]} if latencies else {})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--payload", type=Path, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, help="deliveries per second (open loop)")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=0.0, help="open loop: seconds not counted")
    parser.add_argument("--latencies", action="store_true", help="print every 2xx latency too")
    args = parser.parse_args()
    total = args.seconds + args.warmup
    if total > 120 or (args.rate and args.rate * total > 200_000):
        raise SystemExit("bounded: at most 120 s and 200,000 deliveries per run")
    deliveries = Deliveries(args.url, args.payload.read_bytes(), args.secret)
    if args.rate:
        tally = asyncio.run(
            open_loop(deliveries, args.rate, args.seconds, args.connections, args.warmup)
        )
        mode = f"open loop, {args.rate:g}/s"
    else:
        tally = asyncio.run(closed_loop(deliveries, args.connections, args.seconds))
        mode = f"closed loop, {args.connections} connections"
    json.dump(summary(tally, mode, args.latencies), sys.stdout)
    print()


if __name__ == "__main__":
    main()
