"""`serve` settles the cyclic garbage collector once started: what start-up built is
frozen, and a delivery's worth of objects no longer sets off a young pass."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from bot.server.serving import YOUNG_GENERATION_THRESHOLD, _settle_garbage_collector


@pytest.fixture
def passes() -> Iterator[list[int]]:
    """The generation of every collection started while the test runs; the collector is
    left as it was found."""
    saved, started = gc.get_threshold(), []

    def note(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    _settle_garbage_collector()
    gc.callbacks.append(note)
    try:
        yield started
    finally:
        gc.callbacks.remove(note)
        gc.unfreeze()
        gc.set_threshold(*saved)


def test_objects_of_many_deliveries_set_off_no_young_pass(passes: list[int]) -> None:
    assert gc.get_freeze_count() > 0
    alive = [[n] for n in range(YOUNG_GENERATION_THRESHOLD // 2)]  # Python's default: 700
    assert passes == []
    assert len(alive) > 700


def test_cycles_are_still_collected_once_the_young_generation_is_full(
    passes: list[int],
) -> None:
    for _ in range(YOUNG_GENERATION_THRESHOLD):
        cycle: list[object] = []
        cycle.append(cycle)
    assert 0 in passes
