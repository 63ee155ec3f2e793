"""API server error answers -> the bot's cluster errors: what they carry is deterministic."""

from __future__ import annotations

from typing import Any

from bot.clusters.errors import Conflict
from bot.clusters.kubeapi import error_for

HPA = {
    "reason": "FieldManagerConflict",
    "message": 'conflict with "hpa"',
    "field": ".spec.replicas",
}
EDIT = {"reason": "FieldManagerConflict", "message": 'conflict with "edit"', "field": ".data.level"}


def _conflict(*causes: dict[str, str]) -> dict[str, Any]:
    return {"message": "Apply failed with 2 conflicts", "details": {"causes": list(causes)}}


def test_conflict_owners_do_not_follow_the_servers_order() -> None:
    """The API server lists the causes of one conflict in varying order between identical
    dry runs; drift issues and PR comments built from them must not change with it."""
    one = error_for(409, _conflict(HPA, EDIT), "staging")
    other = error_for(409, _conflict(EDIT, HPA), "staging")
    assert isinstance(one, Conflict) and isinstance(other, Conflict)
    assert one.owners == other.owners
    assert one.owners == (
        'conflict with "edit": .data.level',
        'conflict with "hpa": .spec.replicas',
    )
