"""The words of the pull requests the bot opens itself: rollback and promotion titles and bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.audit import AuditRecord
from bot.core.markdown import code, escape
from bot.core.promotions import ImageChange
from bot.core.rollbacks import RollbackTarget

CRD_WARNING = (
    "**Warning: this rollback crosses a schema change.** CustomResourceDefinitions differ "
    "between the two commits ({paths}). Going back does not remove fields or versions the "
    "cluster's CRDs already serve, and custom resources written for the newer schema may "
    "not apply; check the plan before merging."
)


@dataclass(frozen=True)
class Introduced:
    """Where a promoted value came from: the PR that put it in the source, when known."""

    number: int | None
    url: str | None


def crd_note(paths: Sequence[str]) -> str:
    """The warning as plain text, for the preview's notes (which escape what they show)."""
    return (
        "This rollback crosses a schema change: CustomResourceDefinitions differ between "
        f"the two commits ({', '.join(paths)}). Going back does not remove fields or versions "
        "the cluster's CRDs already serve, and custom resources written for the newer schema "
        "may not apply."
    )


def crd_warning(paths: Sequence[str]) -> str:
    return CRD_WARNING.format(paths=", ".join(code(p) for p in paths))


def rollback_title(target: RollbackTarget) -> str:
    return f"Roll back {target.environment} to {target.target.entry.commit[:12]}"


def rollback_body(target: RollbackTarget, paths: Sequence[str], crd_paths: Sequence[str]) -> str:
    """Which applies this goes back to and undoes (ledger records, PRs), and what it restores."""
    lines = [
        f"Restores {code(target.environment)} to commit {code(target.target.entry.commit)}, "
        f"which it last ran successfully (audit record {_record(target.target)}), from "
        f"{code(target.current.entry.commit)} (audit record {_record(target.current)}).",
        "",
    ]
    if crd_paths:
        lines += [crd_warning(crd_paths), ""]
    lines += ["It undoes:", *[f"- {_undone(r)}" for r in target.undone], ""]
    lines += ["Files restored (everything else stays as on the default branch):"]
    lines += [f"- {code(p)}" for p in paths]
    lines += ["", "Merging applies the environment as any merge does."]
    return "\n".join(lines) + "\n"


def _record(record: AuditRecord) -> str:
    return f"#{record.sequence} ({escape(record.entry.finished_at)})"


def _undone(record: AuditRecord) -> str:
    entry = record.entry
    pull = _pull_link(entry.pr_number, entry.pr_url) if entry.pr_number else "no pull request"
    return f"{code(entry.commit[:12])}, audit record #{record.sequence}, {pull}"


def _pull_link(number: int | None, url: str | None) -> str:
    if number is None:
        return "no pull request found"
    return f"[#{number}]({url})" if url else f"#{number}"


def promotion_title(source: str, target: str) -> str:
    return f"Promote images from {source} to {target}"


def promotion_body(
    source: str,
    target: str,
    changes: Sequence[ImageChange],
    origins: Mapping[str, Introduced],
    ambiguous: Sequence[str],
) -> str:
    """Each reference from -> to, with the PR that introduced it in the source."""
    lines = [
        f"Carries the image references of {code(source)} into {code(target)}; nothing else "
        "changes.",
        "",
        "| file | from | to | introduced by |",
        "|---|---|---|---|",
    ]
    for change in changes:
        origin = origins.get(change.new, Introduced(None, None))
        site = change.site
        lines.append(
            f"| {code(f'{site.path}:{site.line + 1}', True)} | {code(site.value, True)} "
            f"| {code(change.new, True)} | {_pull_link(origin.number, origin.url)} |"
        )
    if ambiguous:
        names = ", ".join(code(key) for key in ambiguous)
        lines += ["", f"Not promoted: {source} writes these with more than one value: {names}."]
    return "\n".join(lines) + "\n"
