"""The log formatter's shortcuts give what their references give: a line's time, worked
out from a per-second cache, is what `datetime` writes for the same moment."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime

from bot.telemetry.logs import line_time

FRACTIONS = (0.0, 0.0005, 0.0009995, 0.5, 0.9995, 0.999999, 0.9999995, 0.9999996, 5e-7, 1.5e-6)


def _reference(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


def _moments() -> list[float]:
    """Random moments around now, and fractions where rounding to the microsecond (halves
    to even) can carry into the millisecond or the next second, with their neighbours."""
    chosen = random.Random(20)
    moments = [1_764_800_000 + chosen.uniform(-1e8, 1e8) for _ in range(50_000)]
    for second in (0, 1, 1_764_800_000, 1_764_800_059, 1_767_225_599, 4_102_444_799):
        for fraction in FRACTIONS:
            exact = second + fraction
            moments += [exact, math.nextafter(exact, 0), math.nextafter(exact, math.inf)]
    return [*moments, -0.5, -1e-7, -1.0000005]


def test_a_line_time_is_what_datetime_writes() -> None:
    moments = _moments()
    assert [line_time(m) for m in moments] == [_reference(m) for m in moments]


def test_lines_in_one_second_and_across_seconds_keep_their_own_time() -> None:
    # The per-second cache must never hand one second's date to another.
    moments = [1_764_800_000 + step * 0.25 for step in range(40)]
    moments += [1_764_800_000 - step * 86_399.75 for step in range(40)]
    assert [line_time(m) for m in moments] == [_reference(m) for m in moments]
