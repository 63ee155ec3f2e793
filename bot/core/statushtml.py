"""The status page as one HTML document: no script, one inline style, every text escaped."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from html import escape

from bot.core.statuspage import (
    ApplyLine,
    Commit,
    DeadJob,
    EnvironmentStatus,
    LedgerCheck,
    Pull,
    StatusPage,
)

STYLE = """
:root{color-scheme:light dark;--line:#8884;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem;font:15px/1.45 system-ui,sans-serif}
h1{font-size:1.4rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
p{margin:.25rem 0}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;vertical-align:top;padding:.35rem .5rem;border-bottom:1px solid var(--line)}
td{overflow-wrap:anywhere}
code{font:13px ui-monospace,monospace}
.state{font-weight:600}
.succeeded,.in-sync,.intact{color:var(--ok)}
.failed,.drifted,.broken,.dead{color:var(--bad)}
.unknown,.dry-run,.superseded,.checking{color:var(--warn)}
.empty{color:GrayText}
@media (max-width:40rem){
 table,tbody,tr,td{display:block;width:100%}
 thead{display:none}
 tr{border:1px solid var(--line);border-radius:.4rem;margin:0 0 .75rem;padding:.25rem .5rem}
 td{border:0;padding:.15rem 0;display:grid;grid-template-columns:7.5rem minmax(0,1fr);gap:.5rem}
 td::before{content:attr(data-label);font-weight:600}
}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# Sent with the page: nothing runs, nothing loads; the one style is allowed by its hash.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def render_status_page(page: StatusPage) -> str:
    """The whole document."""
    body = "".join(
        [
            "<header><h1>gitops-bot status</h1>",
            f"<p>as of {_text(page.generated_at)}</p></header><main>",
            *(f'<p class="state broken problem">{_text(p)}</p>' for p in page.problems),
            _ledger_section(page.ledger),
            _environments_section(page.environments),
            _applies_section(page.applies),
            _dead_jobs_section(page.dead_jobs, page.dead_total),
            "</main>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>gitops-bot status</title><style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _ledger_section(ledger: LedgerCheck) -> str:
    if ledger.problem is not None:
        state, text = "broken", f"BROKEN at {ledger.problem}"
        hint = (
            "run <code>gitops-bot audit --verify</code> and compare the database with its backups"
        )
    elif ledger.complete:
        state, text = "intact", f"intact: all {ledger.verified} records verified"
        hint = f"check started {_text(ledger.checked_at)}"
    else:
        state, text = "checking", f"being checked: {ledger.verified} records verified so far"
        hint = f"check started {_text(ledger.checked_at)}; it goes on at the next view"
    return (
        '<section id="ledger"><h2>Audit ledger</h2>'
        f'<p class="state {state}" data-ledger="{state}">{_text(text)}</p><p>{hint}</p></section>'
    )


def _environments_section(rows: Sequence[EnvironmentStatus]) -> str:
    headings = ("Repository", "Environment", "Commit", "Pull request", "Applied", "Drift", "Lock")
    body = [_environment_row(row) for row in rows]
    return _section("environments", "Environments", headings, body, "no environment known yet")


def _environment_row(row: EnvironmentStatus) -> str:
    attributes = _attributes(repository=row.repository, environment=row.environment)
    commit = _commit(row.commit) if row.commit else _empty("nothing applied")
    if row.result:
        commit += f' <span class="state {_class(row.result)}">{_text(row.result)}</span>'
    cells = [
        ("Repository", _text(row.repository) or _empty("(not recorded)")),
        ("Environment", f"<strong>{_text(row.environment)}</strong>"),
        ("Commit", commit),
        ("Pull request", _pull(row.pull)),
        ("Applied", _text(row.applied_at) or _empty("never")),
        ("Drift", _drift(row)),
        ("Lock", _lock(row)),
    ]
    return f'<tr class="environment"{attributes}>{_cells(cells)}</tr>'


def _drift(row: EnvironmentStatus) -> str:
    drift = row.drift
    if drift is None:
        return _empty("not checked")
    text = f'<span class="state {_class(drift.state)}">{_text(drift.state)}</span>'
    if drift.drifted_objects:
        count = drift.drifted_objects
        text += f" ({count} object{'' if count == 1 else 's'})"
    if drift.failure:
        text += f"<br>{_text(drift.failure)}"
    return text + f"<br>checked {_text(drift.checked_at)}"


def _lock(row: EnvironmentStatus) -> str:
    if row.lock_holder is None:
        return _empty("free")
    return f"held by <code>{_text(row.lock_holder)}</code><br>until {_text(row.lock_until)}"


def _applies_section(lines: Sequence[ApplyLine]) -> str:
    headings = ("#", "Repository", "Environment", "Commit", "Result", "Trigger", "Pull request")
    body = [_apply_row(line) for line in lines]
    return _section("applies", "Last applies", headings, body, "the ledger is empty")


def _apply_row(line: ApplyLine) -> str:
    result = f'<span class="state {_class(line.result)}">{_text(line.result)}</span>'
    if line.message:
        result += f"<br>{_text(line.message)}"
    cells = [
        ("#", str(line.sequence)),
        ("Repository", _text(line.repository) or _empty("(not recorded)")),
        ("Environment", _text(line.environment)),
        ("Commit", _commit(line.commit) + f"<br>{_text(line.finished_at)}"),
        ("Result", result),
        ("Trigger", _text(line.trigger)),
        ("Pull request", _pull(line.pull)),
    ]
    attributes = _attributes(sequence=str(line.sequence), result=line.result)
    return f'<tr class="apply"{attributes}>{_cells(cells)}</tr>'


def _dead_jobs_section(jobs: Sequence[DeadJob], total: int) -> str:
    headings = ("Job", "Kind", "About", "Attempts", "Last error")
    body = [_dead_job_row(job) for job in jobs]
    shown = f"the newest {len(jobs)} of {total}; " if total > len(jobs) else ""
    hint = f"<p>{shown}re-queue one with <code>gitops-bot retry JOB_ID</code>.</p>"
    return _section(
        "dead-jobs", "Dead-lettered jobs", headings, body, "no dead-lettered jobs", hint
    )


def _dead_job_row(job: DeadJob) -> str:
    cells = [
        ("Job", str(job.id)),
        ("Kind", _text(job.kind)),
        ("About", _text(job.subject) or _empty("not known")),
        ("Attempts", str(job.attempts)),
        ("Last error", _text(job.error) or _empty("no error kept")),
    ]
    return f'<tr class="dead-job"{_attributes(job=str(job.id))}>{_cells(cells)}</tr>'


def _section(
    name: str,
    title: str,
    headings: Sequence[str],
    rows: Sequence[str],
    empty: str,
    after: str = "",
) -> str:
    """A titled table of `rows`, then `after`; or what `empty` says when there is no row."""
    if not rows:
        return f'<section id="{name}"><h2>{title}</h2><p class="empty">{empty}</p></section>'
    head = "".join(f"<th>{_text(h)}</th>" for h in headings)
    return (
        f'<section id="{name}"><h2>{title}</h2><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>{after}</section>"
    )


def _cells(cells: Iterable[tuple[str, str]]) -> str:
    # One block per cell: on a phone the cell is a grid of its label and this block.
    return "".join(
        f'<td data-label="{_text(label)}"><div>{html}</div></td>' for label, html in cells
    )


def _commit(commit: Commit) -> str:
    short = f"<code>{_text(commit.sha[:12])}</code>"
    if commit.url is None:
        return short
    return f'<a href="{_text(commit.url)}" title="{_text(commit.sha)}">{short}</a>'


def _pull(pull: Pull) -> str:
    if pull.number is None:
        return _empty("none")
    link = f"#{pull.number}"
    if pull.url:
        link = f'<a href="{_text(pull.url)}">{link}</a>'
    return link + (f" by {_text(pull.author)}" if pull.author else "")


def _attributes(**values: str) -> str:
    return "".join(f' data-{name}="{_text(value)}"' for name, value in values.items())


def _class(state: str) -> str:
    """A state as a class name: only the known words, so a stored text never adds markup."""
    known = {"succeeded", "failed", "superseded", "dry-run", "in-sync", "drifted", "unknown"}
    return state if state in known else "unknown"


def _empty(text: str) -> str:
    return f'<span class="empty">{_text(text)}</span>'


def _text(value: str | None) -> str:
    return escape(value or "", quote=True)
