"""Which heads of a pull request a plan supersedes, and what their checks then say."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Supersession:
    """A check left open on an older head, concluded as overtaken by the current one."""

    title: str
    summary: str


def stale_heads(current: str, *seen: str) -> tuple[str, ...]:
    """The heads other than `current` (each once, in order) whose open checks the plan of
    `current` concludes: the delivery's own head when it is stale, the head it replaced."""
    return tuple(head for head in dict.fromkeys(seen) if head and head != current)


def superseded(old: str, current: str) -> Supersession:
    return Supersession(
        f"Superseded by {current[:12]}",
        f"{old[:12]} is no longer the head of the pull request: the plan of {current[:12]} "
        "replaces this one.",
    )
