"""Render workspaces go to memory-backed scratch when it has room, else where they went."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from bot.renderers import RenderOptions, workspaces
from bot.renderers.workspaces import Workspace, scratch_parent
from bot.stages.plan import together


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in for /dev/shm, so the choice is tested whatever this machine has."""
    folder = tmp_path / "shm"
    folder.mkdir()
    monkeypatch.setattr(workspaces, "MEMORY_SCRATCH", str(folder))
    monkeypatch.delenv("TMPDIR", raising=False)
    return folder


async def test_a_workspace_is_made_and_removed_in_memory_scratch_with_room(memory: Path) -> None:
    async with Workspace(RenderOptions(max_checkout_bytes=1024)) as space:
        assert space.root.parent == memory.resolve()
        assert {p.name for p in space.root.iterdir()} == {"repo", "work", "home"}
    assert list(memory.iterdir()) == []


def test_without_room_for_four_of_the_largest_checkouts_the_system_temp_folder_is_used(
    memory: Path,
) -> None:
    assert scratch_parent(1024) == str(memory)
    assert scratch_parent(2**62) is None
    space = Workspace(RenderOptions(max_checkout_bytes=2**62))
    try:
        assert space.root.parent == Path(tempfile.gettempdir()).resolve()
    finally:
        space.root.rmdir()


def test_an_operator_s_tmpdir_or_a_missing_memory_folder_keeps_the_temp_folder(
    memory: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert scratch_parent(1024) is None
    monkeypatch.delenv("TMPDIR")
    memory.rmdir()
    assert scratch_parent(1024) is None


async def test_together_gives_both_results_and_a_failure_stops_the_other() -> None:
    assert await together(asyncio.sleep(0, "base"), asyncio.sleep(0, 2)) == ("base", 2)
    stopped = asyncio.Event()

    async def slow() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            stopped.set()
            raise

    async def broken() -> None:
        raise LookupError("the base cannot be read")

    with pytest.raises(LookupError, match="cannot be read"):  # as raised, not wrapped
        await together(slow(), broken())
    assert stopped.is_set()
