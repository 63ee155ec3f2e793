"""Apply results: what happened to each object when an environment was applied."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.core.diffs import Action
from bot.core.manifests import ObjectKey


class Outcome(StrEnum):
    APPLIED = "applied"  # created or updated as planned
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    PLANNED = "planned"  # dry apply: what a real apply would do, nothing sent
    FAILED = "failed"
    SKIPPED = "skipped"  # not attempted, e.g. prune held back after a failure


@dataclass(frozen=True)
class ObjectResult:
    key: ObjectKey
    action: Action
    outcome: Outcome
    digest: str = ""  # of the desired object as applied (secret values are only hashed)
    message: str = ""


@dataclass(frozen=True)
class ApplyResult:
    environment: str
    cluster: str
    commit: str
    dry_run: bool
    objects: tuple[ObjectResult, ...] = ()
    failure: str | None = None  # why the apply as a whole did not happen or stopped

    @property
    def succeeded(self) -> bool:
        return self.failure is None and all(o.outcome is not Outcome.FAILED for o in self.objects)


def object_digest(body: Mapping[str, Any]) -> str:
    """A stable digest of an object, so the audit trail can prove what was applied."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
