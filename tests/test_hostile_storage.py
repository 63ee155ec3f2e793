"""Hostile values at rest and on the terminal: a token in a payload is masked before the
store writes it (checked in the database file's bytes), and control characters from
records, jobs and repositories never reach the operator's terminal as they are."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

from helpers.githubbot import BotFactory, FakeClock, base_tree, sign
from helpers.gitrepos import Repo
from helpers.hostile import BOUND_SECONDS, run_bot

from bot.core.audit import AuditEntry
from bot.store.backends import store_for_url
from bot.store.ports import NewJob

TOKEN = "ghp_" + "Z9" * 18
PAT = "glpat-" + "q" * 24
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m\rfake line\u202e"


def _database_bytes(database: Path) -> bytes:
    """The SQLite file and its write-ahead log, as they are on disk."""
    files = [database, database.with_name(database.name + "-wal")]
    return b"".join(path.read_bytes() for path in files if path.exists())


async def test_a_token_in_a_payload_is_never_written_to_the_store(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "README.md": "docs"})
    payload = bot.pull_request("opened", 3, base, head)
    payload["repository"]["clone_url"] = f"https://x-access-token:{TOKEN}@github.com/o/r.git"
    payload["pull_request"]["title"] = f"uses {PAT}"
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": f"{uuid.uuid4()}-{PAT}",
        "X-Hub-Signature-256": sign(body),
    }

    async with asyncio.timeout(BOUND_SECONDS):
        response = await bot.client.post("/webhooks/github", data=body, headers=headers)
        assert response.status == 202
        await bot.drain()  # the plan job runs, fails on the URL, and its error is stored too

    stored = _database_bytes(bot.database)
    assert TOKEN.encode() not in stored and PAT.encode() not in stored
    assert b"https://redacted@github.com/o/r.git" in stored
    summaries = [c["output"]["summary"] for c in bot.fake.check_runs.values() if "output" in c]
    assert any("must not carry credentials" in summary for summary in summaries)
    assert not any(TOKEN in summary for summary in summaries)


def _entry(text: str) -> AuditEntry:
    return AuditEntry(
        environment="prod",
        cluster="main",
        commit="a" * 40,
        result="succeeded",
        trigger="merge",
        started_at="2026-01-01T10:00:00.000000Z",
        finished_at="2026-01-01T10:00:02.000000Z",
        bot_version="0.1.0",
        pr_number=7,
        pr_url="https://github.com/o/r/pull/7",
        author=text,
        approvers=(text,),
        objects=({"object": text, "action": "update", "outcome": "applied", "digest": text},),
        repository=f"github:o/{text}",
    )


async def _hostile_store(url: str) -> None:
    store = store_for_url(url, FakeClock())
    await store.open()
    await store.add_audit(_entry(ESCAPES))
    await store.add_job(NewJob("plan", "{}"))
    job = await store.claim_job("worker", 60)
    assert job is not None
    await store.fail_job(job, f"git said: {ESCAPES}", None)  # dead-lettered
    await store.close()


def _assert_inert(output: str) -> None:
    assert not set(output) & {"\x1b", "\x07", "\r", "\u202e"}, repr(output)
    assert "␛]0;owned␇␛[2J" in output  # shown, visibly, not obeyed


async def test_audit_and_dead_jobs_print_no_control_characters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    await _hostile_store(url)

    audit = run_bot("audit", cwd=tmp_path, database_url=url)
    dead = run_bot("jobs", "--dead", cwd=tmp_path, database_url=url)

    assert audit.returncode == 0 and dead.returncode == 0, audit.stderr + dead.stderr
    _assert_inert(audit.stdout)
    _assert_inert(dead.stdout)
    assert "by ␛]0;owned" in audit.stdout and "git said: ␛]0;owned" in dead.stdout
    assert "⟨U+202E⟩" in audit.stdout


def test_file_names_from_a_repository_print_no_control_characters(tmp_path: Path) -> None:
    config = "version: 1\nenvironments:\n  prod:\n    path: deploy\n    cluster: c\n"
    bad = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  a: 1\n"
    repo = Repo(tmp_path / "repo")
    base = repo.commit({".gitops-bot.yaml": config})
    head = repo.commit({".gitops-bot.yaml": config, f"deploy/x{ESCAPES}.yaml": bad})

    text = run_bot(
        "plan",
        "--repo",
        str(repo.path),
        "--base",
        base,
        "--head",
        head,
        "--format",
        "text",
        cwd=tmp_path,
    )
    validate = run_bot("validate", str(repo.path / "deploy"), cwd=tmp_path)

    assert text.returncode == 1 and validate.returncode == 1, text.stderr + validate.stderr
    for output in (text.stdout, text.stderr, validate.stdout, validate.stderr):
        assert not set(output) & {"\x1b", "\x07", "\r", "\u202e"}, repr(output)
    assert "deploy/x␛]0;owned␇" in text.stdout and "x␛]0;owned␇" in validate.stdout
