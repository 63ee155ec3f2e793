"""Rollback decisions: the applied commit an environment goes back to, and the files it restores."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.audit import AuditRecord, Result

_COMMIT_PREFIX = re.compile(r"^[0-9a-f]{7,40}$")
_CRD_KIND = re.compile(rb"^kind:[ \t]*[\"']?CustomResourceDefinition[\"']?[ \t]*$", re.MULTILINE)


_TRAILER = "Gitops-Bot-Rollback"
_TRAILER_LINE = re.compile(rf"^{_TRAILER}: ([a-z0-9][-a-z0-9_.]*) ([0-9a-f]{{40}})$", re.MULTILINE)


class ProposalRefused(ValueError):
    """No rollback (or promotion) pull request can be made; the message says why."""


@dataclass(frozen=True)
class RollbackTarget:
    """Where an environment goes back to: the applies it runs now and returns to, and the
    successful applies in between that the rollback undoes (oldest first)."""

    environment: str
    current: AuditRecord
    target: AuditRecord
    undone: tuple[AuditRecord, ...]


@dataclass(frozen=True)
class FileRestore:
    """One file the rollback writes back: its blob at the target commit, or None to delete it."""

    path: str
    oid: str | None


def rollback_target(
    records: Sequence[AuditRecord], environment: str, repository: str, to: str | None = None
) -> RollbackTarget:
    """The commit `environment` of `repository` last ran successfully before the one it runs
    now, or the successful apply `to` names (a commit id or its prefix)."""
    applied = _successes(records, environment, repository)
    if not applied:
        raise ProposalRefused(
            f"the ledger holds no successful apply of {environment!r}; there is nothing to go "
            "back to"
        )
    current = applied[-1]
    earlier = [r for r in applied[:-1] if r.entry.commit != current.entry.commit]
    target = _named(earlier, current, to) if to else (earlier[-1] if earlier else None)
    if target is None:
        raise ProposalRefused(
            f"{environment!r} has run only commit {current.entry.commit[:12]} successfully; "
            "there is no earlier commit to go back to"
        )
    later = [r for r in applied if r.sequence > target.sequence]
    undone = {r.entry.commit: r for r in later if r.entry.commit != target.entry.commit}
    return RollbackTarget(environment, current, target, tuple(undone.values()))


def _successes(
    records: Sequence[AuditRecord], environment: str, repository: str
) -> list[AuditRecord]:
    return [
        r
        for r in sorted(records, key=lambda r: r.sequence)
        if r.entry.environment == environment
        and r.entry.repository == repository
        and r.entry.result == Result.SUCCEEDED
    ]


def _named(earlier: list[AuditRecord], current: AuditRecord, to: str) -> AuditRecord:
    prefix = to.strip().lower()
    if not _COMMIT_PREFIX.match(prefix):
        raise ProposalRefused(f"{to!r} is not a commit id (7 to 40 hexadecimal digits)")
    if current.entry.commit.startswith(prefix):
        raise ProposalRefused(f"the environment already runs {current.entry.commit[:12]}")
    found = [r for r in earlier if r.entry.commit.startswith(prefix)]
    if not found:
        known = ", ".join(dict.fromkeys(r.entry.commit[:12] for r in reversed(earlier)))
        raise ProposalRefused(
            f"commit {prefix} is not one the environment ran successfully; it can go back to: "
            f"{known or 'none'}"
        )
    if len({r.entry.commit for r in found}) > 1:
        raise ProposalRefused(f"{prefix} names more than one applied commit; give more digits")
    return found[-1]


def restored_files(now: Mapping[str, str], then: Mapping[str, str]) -> tuple[FileRestore, ...]:
    """What makes the files `now` (path -> blob) read as `then`: writes and deletions."""
    writes = [FileRestore(p, oid) for p, oid in sorted(then.items()) if now.get(p) != oid]
    deletions = [FileRestore(p, None) for p in sorted(now) if p not in then]
    return tuple(writes + deletions)


def changed_paths(
    now: Mapping[str, str], then: Mapping[str, str], roots: Sequence[str]
) -> tuple[str, ...]:
    """The paths below `roots` whose blob differs between two commits."""
    paths = sorted(set(now) | set(then))
    return tuple(p for p in paths if now.get(p) != then.get(p) and _below(p, roots))


def _below(path: str, roots: Sequence[str]) -> bool:
    return any(root in ("", ".") or path == root or path.startswith(root + "/") for root in roots)


def rollback_trailer(environment: str, commit: str) -> str:
    """The commit-message trailer that marks a rollback commit for the preview."""
    return f"{_TRAILER}: {environment} {commit}"


def read_rollback_trailer(message: bytes) -> tuple[str, str] | None:
    """(environment, commit) from a rollback commit's message, or None."""
    found = _TRAILER_LINE.search(message.decode("utf-8", "replace"))
    return (found.group(1), found.group(2)) if found else None


def defines_crds(content: bytes) -> bool:
    """Whether a manifest holds a CustomResourceDefinition (a top-level `kind:` line)."""
    return bool(_CRD_KIND.search(content))
