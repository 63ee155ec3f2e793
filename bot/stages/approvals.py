"""Who approved the pull request behind an apply, or why that could not be read."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.events import Repository
from bot.forges.ports import Forge, ForgeError, PullRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Approvals:
    """The approvers, or (when the forge would not say) why they are unknown."""

    approvers: tuple[str, ...] = ()
    unknown: str | None = None  # why they could not be read; None when they were


async def read_approvals(forge: Forge, repo: Repository, pull: PullRequest | None) -> Approvals:
    """The PR's approvers. Approvals are audit information, not a gate (the forge's branch
    protection is): a failed lookup is recorded as unknown and the apply goes on."""
    if pull is None:
        return Approvals()
    try:
        return Approvals(await forge.approvers(repo, pull.number))
    except ForgeError as exc:
        log.warning("approvals of #%s could not be read: %s", pull.number, exc)
        return Approvals(unknown=f"the forge did not answer: {exc}"[:300])
