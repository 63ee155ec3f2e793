"""Where a rollback or promotion job resumes when a retry finds its branch already made."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.core.rollbacks import ProposalRefused


@dataclass(frozen=True)
class BranchTip:
    """The commit a branch points at, with what tells a retry it is its own work."""

    commit: str
    parents: tuple[str, ...]
    message: str


class Resume(Enum):
    """The first step left to do: make the branch, commit on it, or open the pull request."""

    CREATE_BRANCH = "create branch"
    COMMIT = "commit"
    OPEN = "open pull request"


def resume_step(tip: BranchTip | None, branch: str, base: str, message: str) -> Resume:
    """No branch: start. The branch at `base`: an earlier try died before committing. One
    commit on `base` with this job's message: it died after. Anything else is not this
    job's to reuse (the default branch moved since, or someone pushed to the branch)."""
    if tip is None:
        return Resume.CREATE_BRANCH
    if tip.commit == base:
        return Resume.COMMIT
    if tip.parents == (base,) and tip.message.strip() == message.strip():
        return Resume.OPEN
    raise ProposalRefused(
        f"the branch {branch} already exists at {tip.commit[:12]}, which is neither "
        f"{base[:12]} nor this request's commit on it; delete the branch and ask again"
    )
