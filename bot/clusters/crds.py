"""The CRDs a cluster serves, read through its API as schemas: cached per cluster, refreshed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot.clusters.errors import ClusterError
from bot.clusters.ports import Cluster
from bot.core.customschemas import CustomSchema, Kind, schemas_of_crd

DEFAULT_REFRESH_SECONDS = 300
_CRDS = ("apiextensions.k8s.io/v1", "CustomResourceDefinition")


@dataclass(frozen=True)
class ClusterSchemas:
    """What one read of a cluster's CRDs gave; `failure` says why it could not be read."""

    schemas: Mapping[Kind, CustomSchema] = field(default_factory=dict)
    failure: str = ""


@dataclass
class _Read:
    at: float
    result: ClusterSchemas


class ClusterCrds:
    """Schemas from the CRDs installed in each cluster, read at most once per interval.

    A failed read is not kept: the next plan tries again, and until a read succeeds the
    schemas of the last good read (if any) are used, with the failure said beside them.
    """

    def __init__(
        self,
        connect: Callable[[str], Awaitable[Cluster]],
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect, self._refresh, self._clock = connect, refresh_seconds, clock
        self._reads: dict[str, _Read] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def schemas(self, name: str) -> ClusterSchemas:
        """The schemas of cluster `name`'s CRDs (`name` must be a configured cluster)."""
        async with self._locks.setdefault(name, asyncio.Lock()):  # one read at a time
            kept = self._reads.get(name)
            if kept is not None and self._clock() - kept.at < self._refresh:
                return kept.result
            result = await self._read(name)
            if not result.failure:
                self._reads[name] = _Read(self._clock(), result)
            elif kept is not None:
                return ClusterSchemas(kept.result.schemas, result.failure)
            return result

    async def _read(self, name: str) -> ClusterSchemas:
        try:
            cluster = await self._connect(name)
            crds = await cluster.list_labelled(*_CRDS, "", "")
        except ClusterError as exc:
            return ClusterSchemas(failure=f"cluster {name!r} could not be read ({exc})")
        schemas: dict[Kind, CustomSchema] = {}
        for crd in crds:
            schemas |= schemas_of_crd(crd, f"cluster {name}")
        return ClusterSchemas(schemas)
