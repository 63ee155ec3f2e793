"""The time limit of parsing and checks, as the error its callers catch.

Apart from the check pool (which re-exports it) so that `validate`, which forks its own
processes, catches it without importing the pool's asyncio.
"""

from __future__ import annotations


class ChecksTimedOut(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"checks did not finish within {seconds:g} s")
        self.seconds = seconds
