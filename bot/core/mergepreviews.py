"""What a pull request's preview renders: the forge's merge result, or its head and why."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mergeability(StrEnum):
    """What the forge says of merging the pull request into its base branch."""

    MERGEABLE = "mergeable"  # the forge keeps a merge result at the pull request's merge ref
    CONFLICT = "conflict"  # no merge result: the head conflicts with the base branch
    UNKNOWN = "unknown"  # the forge is still computing it (GitHub: `mergeable: null`)


@dataclass(frozen=True)
class MergeResult:
    """The commit the forge's merge ref points at, with its parents (base first)."""

    commit: str
    parents: tuple[str, ...]


@dataclass(frozen=True)
class PreviewTarget:
    """The two commits a preview compares, and what the reader is told about them."""

    base: str  # configuration, policies and the "before" side come from here
    rendered: str  # the "after" side: the merge result, or the head
    note: str
    merged: bool  # whether `rendered` is the merge result


def preview_target(
    head: str, base: str, state: Mergeability, result: MergeResult | None, forge: str
) -> PreviewTarget:
    """The merge result when the forge has one for `head`; otherwise the head, visibly."""
    if state is Mergeability.CONFLICT:
        return _head(head, base, f"the head conflicts with the base branch on {forge}")
    if state is Mergeability.UNKNOWN:
        return _head(head, base, f"{forge} has not computed the merge result yet")
    if result is None:
        return _head(head, base, f"{forge} keeps no merge result for this pull request")
    if len(result.parents) != 2 or result.parents[1] != head:
        return _head(head, base, f"{forge}'s merge result is of an older head")
    note = (
        f"previewing the merge result {result.commit[:12]}: head {head[:12]} merged into "
        f"the base branch at {result.parents[0][:12]}"
    )
    return PreviewTarget(result.parents[0], result.commit, note, merged=True)


def _head(head: str, base: str, why: str) -> PreviewTarget:
    note = (
        f"previewing the head {head[:12]} against {base[:12]}, not the merge result: {why}. "
        "Changes merged to the base branch since may show as reverted; the next push or "
        "/gitops plan plans again"
    )
    return PreviewTarget(base, head, note, merged=False)
