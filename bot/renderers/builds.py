"""Tool outputs kept by a digest of everything the run reads: identical inputs build once.

An ApplicationSet that deploys one folder to several clusters, or a server planning a
pull request again after a push (its base side unchanged), asks for builds whose inputs
are byte for byte those of an earlier one. The digest covers the tool binary, its flags,
the bot's wrapping kustomization, the folder, and every file written for the run (path,
mode and blob id, which is a digest of the content); a run with network access may read
more than that, so it is never kept, and neither is a failed one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.git.repos import TreeEntry

KEPT_BYTES = 64 * 1024 * 1024  # outputs kept in all; one over a quarter of it is not kept


@dataclass(frozen=True)
class BuildInputs:
    """Everything one run reads or is bounded by, but the scratch folder it runs in."""

    argv: Sequence[str]  # the tool's absolute path and its flags
    wrapper: str  # the bot's own kustomization around the folder
    path: str
    components: Sequence[str]  # Flux's, added to the folder's kustomization
    entries: Sequence[TreeEntry]
    limits: tuple[float, int]  # the run's time and output limits: a kept output met them

    def key(self) -> str:
        tool = Path(self.argv[0]).stat()  # a tool replaced in place is another tool
        files = sorted((e.path, e.mode, e.oid) for e in self.entries)
        inputs = [self.argv[0], tool.st_size, tool.st_mtime_ns, list(self.argv[1:])]
        inputs += [self.wrapper, self.path, list(self.components), files, list(self.limits)]
        return hashlib.sha256(json.dumps(inputs).encode()).hexdigest()


class BuildOutputs:
    """Outputs by input digest, the least recently used dropped past `max_bytes`."""

    def __init__(self, max_bytes: int = KEPT_BYTES) -> None:
        self.max_bytes = max_bytes
        self._outputs: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._building: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    def get(self, key: str) -> bytes | None:
        output = self._outputs.get(key)
        if output is not None:
            self._outputs.move_to_end(key)
        return output

    def put(self, key: str, output: bytes) -> None:
        if len(output) > self.max_bytes // 4 or key in self._outputs:
            return
        self._outputs[key] = output
        self._bytes += len(output)
        while self._bytes > self.max_bytes:
            self._bytes -= len(self._outputs.popitem(last=False)[1])

    @asynccontextmanager
    async def building(self, key: str) -> AsyncIterator[None]:
        """One build of the same inputs at a time, so the second finds the first's output."""
        lock = self._building.get(key)
        if lock is None:
            lock = self._building.setdefault(key, asyncio.Lock())
        async with lock:
            yield


BUILDS = BuildOutputs()  # one per process: the server's plans share it
