"""Environments whose changes are the same, folded into one section of a plan comment.

Applications generated from one template over a shared base often change in exactly the
same way; the comment shows that change once, with the names of every application it
is in, instead of the same diffs once per application.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.diffs import Action
from bot.core.plans import EnvironmentPlan

Signature = tuple[tuple[str, str, str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class Section:
    """One section of the comment: the first environment shown, and all it stands for."""

    shown: EnvironmentPlan
    same: tuple[EnvironmentPlan, ...]  # every environment with this change, `shown` first


def fold(environments: Iterable[EnvironmentPlan]) -> tuple[Section, ...]:
    """Sections in the order of their first environment; only plain changes are folded.

    Two environments fold when they change the same kinds of objects with the same changed
    lines, and neither has a failure, a finding or a live layer (those stay per section).
    """
    groups: dict[Signature | int, list[EnvironmentPlan]] = {}
    for position, env in enumerate(environments):
        key: Signature | int = _signature(env) or position
        groups.setdefault(key, []).append(env)
    return tuple(Section(group[0], tuple(group)) for group in groups.values())


def _signature(env: EnvironmentPlan) -> Signature:
    if env.failure or env.findings or env.live is not None or env.skipped:
        return ()
    changed = [c for c in env.changes if c.action is not Action.UNCHANGED]
    return tuple(
        sorted((c.action.value, c.key.group, c.key.kind, _changed_lines(c.diff)) for c in changed)
    )


def _changed_lines(diff: str) -> tuple[str, ...]:
    """The added and removed lines of a unified diff, without its file headers."""
    return tuple(
        line
        for line in diff.splitlines()
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    )
