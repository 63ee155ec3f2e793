"""Load manifests with the cyclic garbage collector paused: process state, kept out of the core."""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.documents import DEFAULT_LIMITS, Limits
from bot.core.manifests import LoadResult, SourceFile, load_manifests
from bot.gcpause import cyclic_gc_paused as cyclic_gc_paused


def load_paused(
    files: Iterable[SourceFile], default_namespace: str = "default", limits: Limits = DEFAULT_LIMITS
) -> LoadResult:
    """The core's load_manifests, with no cyclic collection while it parses."""
    with cyclic_gc_paused():
        return load_manifests(files, default_namespace, limits)
