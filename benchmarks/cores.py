"""Which cores benchmark 1 gives the server under test, and which everything else gets.

On a machine of few cores, a p99 taken while the load generator, the database server
and the server under test take turns on the same cores measures the scheduler as much
as the server. Pinned, the server under test (either side alike) has a core of its
own, and the load generator, the black hole and PostgreSQL share the others; other
work on the machine still lands anywhere, which is why the load average is reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Placement:
    """The CPUs of the server under test and of the rest; empty when not pinned."""

    server: frozenset[int] = frozenset()
    rest: frozenset[int] = frozenset()

    @property
    def pinned(self) -> bool:
        return bool(self.server)

    def pin_rest(self) -> None:
        """Move this process (and so whatever it starts from now on) to the other cores."""
        if self.pinned:
            os.sched_setaffinity(0, self.rest)

    def server_preexec(self) -> Callable[[], None] | None:
        """For Popen: put the child on the server's cores before it runs anything."""
        if not self.pinned:
            return None
        cpus = self.server
        return lambda: os.sched_setaffinity(0, cpus)

    def describe(self) -> str:
        if not self.pinned:
            return "not pinned: every process on every core"
        return (
            f"pinned: the server under test (bare or bot, alike) on CPU {_cpus(self.server)}; "
            f"the load generator, the black hole and any database server on CPU "
            f"{_cpus(self.rest)}"
        )


def placement(mode: str) -> Placement:
    """`auto`: the last usable CPU for the server, the others for the rest (two or more
    CPUs needed); `off`: no pinning."""
    usable = sorted(os.sched_getaffinity(0))
    if mode == "off" or len(usable) < 2:
        return Placement()
    return Placement(frozenset(usable[-1:]), frozenset(usable[:-1]))


def _cpus(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))
