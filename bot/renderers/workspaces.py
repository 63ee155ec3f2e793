"""One render's scratch space: the checkout, the tool's empty home, and the sandboxed run."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from bot.core.findings import Finding
from bot.renderers.checkouts import CheckoutError
from bot.renderers.protocol import RenderOptions, render_error
from bot.renderers.sandbox import (
    ToolError,
    ToolMissing,
    ToolOutputTooLarge,
    ToolTimedOut,
    prepare_home,
    run_tool,
    sandbox_environment,
)

_RULES: tuple[tuple[type[Exception], str], ...] = (
    (ToolMissing, "tool-missing"),
    (ToolTimedOut, "timeout"),
    (ToolOutputTooLarge, "output-too-large"),
    (ToolError, "failed"),
    (CheckoutError, "checkout"),
)
# A render creates and removes a few dozen files and folders (the checkout, the tool's
# home): in memory that costs a sixth of what it costs on a journaling disk, which shows
# when a plan renders hundreds of Argo CD or Flux units.
MEMORY_SCRATCH = "/dev/shm"  # noqa: S108 - mkdtemp makes a private folder in it
_ROOM_PER_CHECKOUT = 4  # free space wanted in memory, in checkouts of the largest size


def scratch_parent(checkout_bytes: int) -> str | None:
    """Where a workspace goes: MEMORY_SCRATCH when it is writable with room for a few of
    the largest checkouts, else None (the system's temporary folder, or TMPDIR's when
    the operator names one)."""
    if os.environ.get("TMPDIR"):
        return None
    try:
        stats = os.statvfs(MEMORY_SCRATCH)
    except OSError:
        return None
    room = stats.f_bavail * stats.f_frsize >= _ROOM_PER_CHECKOUT * checkout_bytes
    return MEMORY_SCRATCH if room and os.access(MEMORY_SCRATCH, os.W_OK | os.X_OK) else None


class Workspace:
    """`checkout` holds the commit's files, `work` the bot's own inputs, `home` nothing."""

    def __init__(self, options: RenderOptions) -> None:
        self.options = options
        parent = scratch_parent(options.max_checkout_bytes)
        self.root = Path(tempfile.mkdtemp(prefix="gitops-bot-render-", dir=parent)).resolve()
        self.checkout = self.root / "repo"
        self.work = self.root / "work"
        self.home = self.root / "home"

    async def __aenter__(self) -> Workspace:
        for folder in (self.checkout, self.work, self.home):
            folder.mkdir()
        prepare_home(self.home)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(shutil.rmtree, self.root, ignore_errors=True)

    async def run(self, argv: Sequence[str]) -> bytes:
        """Run a tool inside the sandbox, from the checkout; ToolError when it fails."""
        return await run_tool(
            argv,
            self.checkout,
            sandbox_environment(self.home, self.options.allow_network),
            self.options.timeout_seconds,
            self.options.max_output_bytes,
        )

    def error(self, exc: ToolError | CheckoutError, path: str) -> Finding:
        """The finding for a render that failed, its message in repository paths."""
        rule = next(rule for kind, rule in _RULES if isinstance(exc, kind))
        return render_error(rule, self.scrub(str(exc)), path)

    def scrub(self, text: str) -> str:
        """Tool messages name files by their scratch path; say the repository path instead."""
        for prefix, replacement in (
            (f"{self.checkout}/", ""),
            (str(self.checkout), "."),
            (str(self.root), "(scratch)"),
        ):
            text = text.replace(prefix, replacement)
        return text
