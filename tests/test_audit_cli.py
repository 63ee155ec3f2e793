"""`gitops-bot audit` and `gitops-bot jobs --dead` as subprocesses, on both store
backends: listing, filters, the chain check, tampering found and named, break-glass
applies recorded, and the dead-letter count on /metrics."""

from __future__ import annotations

import asyncio
import datetime
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.githubbot import BotFactory, FakeClock
from helpers.livecluster import CLUSTER, ENV, LiveEnv, configmap
from helpers.storetools import execute_sql

from bot.core.audit import AuditEntry
from bot.store.backends import store_for_url
from bot.store.ports import NewJob

ROOT = Path(__file__).resolve().parent.parent
JANUARY = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).timestamp()
FEBRUARY = datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC).timestamp()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


def _bot(database_url: str, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env["GITOPS_BOT_DATABASE_URL"] = database_url
    env |= {f"GITOPS_BOT_{k.upper()}": v for k, v in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _entry(environment: str, commit: str, approver: str = "alice") -> AuditEntry:
    return AuditEntry(
        environment=environment,
        cluster="main",
        commit=commit,
        result="succeeded",
        trigger="merge",
        started_at="2026-01-01T10:00:00.000000Z",
        finished_at="2026-01-01T10:00:02.000000Z",
        bot_version="0.1.0",
        pr_number=7,
        pr_url="https://github.com/o/r/pull/7",
        author="octocat",
        approvers=(approver,),
        objects=(
            {
                "object": "Deployment.apps shop/web",
                "action": "update",
                "outcome": "applied",
                "digest": "sha256:" + "ab" * 32,
            },
        ),
        repository="github:o/r",
    )


async def _ledger(database_url: str, *entries: tuple[float, AuditEntry]) -> None:
    clock = FakeClock()
    store = store_for_url(database_url, clock)
    await store.open()
    for when, entry in entries:
        clock.now = when
        record = await store.add_audit(entry)
        if not database_url.startswith("sqlite:"):  # its time is the server's: back-date it
            sql = "UPDATE audit_ledger SET recorded_at = %s WHERE sequence = %s"
            execute_sql(database_url, sql, (when, record.sequence))
    await store.close()


async def test_the_ledger_is_listed_filtered_and_verified(database_url: str) -> None:
    await _ledger(
        database_url,
        (JANUARY, _entry("staging", "a" * 40)),
        (FEBRUARY, _entry("production", "b" * 40)),
        (FEBRUARY, _entry("staging", "c" * 40)),
    )

    listed = _bot(database_url, "audit", "--format", "json", "--env", "staging")
    recent = _bot(database_url, "audit", "--since", "2026-01-15", "--env", "staging")
    verified = _bot(database_url, "audit", "--verify")

    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert [(r["sequence"], r["commit"]) for r in data] == [(1, "a" * 40), (3, "c" * 40)]
    assert len(data[1]["previous_hash"]) == len(data[1]["hash"]) == 64
    assert recent.returncode == 0, recent.stderr
    assert recent.stdout.startswith("#3 2026-01-01T10:00:00.000000Z github:o/r staging")
    assert "cccccccccccc succeeded [merge] PR #7 by octocat, approved by alice" in recent.stdout
    assert "update Deployment.apps shop/web: applied sha256:abab" in recent.stdout
    assert "#1 " not in recent.stdout
    assert verified.returncode == 0, verified.stderr
    assert "3 records, every link verified" in verified.stdout


@pytest.mark.parametrize(
    ("tampering", "named"),
    [
        ("UPDATE audit_ledger SET entry = REPLACE(entry, 'alice', 'mallory') WHERE sequence = 2",
         "record 2: its content was changed after it was written"),
        ("UPDATE audit_ledger SET environment = 'staging' WHERE sequence = 2",
         "record 2: its content was changed after it was written"),
        ("DELETE FROM audit_ledger WHERE sequence = 2",
         "record 3: expected record 2 here: a record is missing"),
    ],
)  # fmt: skip
async def test_an_edited_ledger_fails_verify_and_names_the_row(
    database_url: str, tampering: str, named: str
) -> None:
    await _ledger(
        database_url,
        *((JANUARY, _entry("production", f"{n:040x}")) for n in range(4)),
    )
    execute_sql(database_url, tampering)

    done = _bot(database_url, "audit", "--verify")

    assert done.returncode == 1
    assert named in done.stderr
    assert done.stdout == ""


def test_a_bad_since_date_is_a_usage_error(tmp_path: Path) -> None:
    done = _bot(f"sqlite:///{tmp_path / 'x.sqlite3'}", "audit", "--since", "last tuesday")
    assert done.returncode == 2
    assert "--since 'last tuesday' is not an ISO date" in done.stderr


async def test_jobs_dead_lists_the_dead_letters(database_url: str) -> None:
    store = store_for_url(database_url)
    await store.open()
    await store.add_job(NewJob("apply", "{}", "apply:github:o/r"))
    await store.add_job(NewJob("plan", "{}"))
    job = await store.claim_job("worker", 60)
    assert job is not None
    await store.fail_job(job, "GitHub answered 502 five times", None)
    await store.close()

    done = _bot(database_url, "jobs", "--dead")

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"job {job.id} (apply, 1 attempts): GitHub answered 502 five times",
        "re-queue one with `gitops-bot retry JOB_ID` once the cause is fixed",
    ]


async def test_the_dead_letter_count_is_a_metric(make_bot: BotFactory) -> None:
    bot = await make_bot()
    store = bot.services.store
    await store.add_job(NewJob("plan", "{}"))
    job = await store.claim_job("worker", 60)
    assert job is not None
    await store.fail_job(job, "gave up", None)

    text = await (await bot.client.get("/metrics")).text()

    assert "gitops_bot_dead_letter_jobs 1.0" in text
    assert 'gitops_bot_jobs{state="dead"} 1.0' in text


def _break_glass_args(live_env: LiveEnv, commit: str) -> tuple[tuple[str, ...], str]:
    clusters = {
        CLUSTER: {
            "kubeconfig": str(live_env.plane.admin_kubeconfig),
            "context": "admin",
            "inventory_namespace": live_env.namespace,
        }
    }
    repo = str(live_env.repo.path)
    return ("apply", "--env", ENV, "--repo", repo, "--ref", commit), json.dumps(clusters)


def test_a_break_glass_apply_waits_for_no_one_holding_the_environment(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    """Break-glass takes the same environment lock as the server's merges: while a job
    holds it, nothing is applied and nothing is recorded."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    commit = live_env.commit({"a.yaml": configmap("a", x="1")})
    args, clusters = _break_glass_args(live_env, commit)

    async def hold() -> None:
        store = store_for_url(url)
        await store.open()
        await store.lock_environment(f"github:acme/shop:{ENV}", "job-7", 600)
        await store.close()

    asyncio.run(hold())
    refused = _bot(url, *args, "--repository", "github:acme/shop", clusters=clusters)
    listed = _bot(url, "audit", "--format", "json")

    assert refused.returncode == 3, refused.stderr
    assert "being applied by another job" in refused.stderr
    assert "nothing was applied" in refused.stderr
    assert json.loads(listed.stdout) == []


def test_a_break_glass_apply_is_in_the_ledger(live_env: LiveEnv, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    commit = live_env.commit({"a.yaml": configmap("a", x="1")})
    args, clusters = _break_glass_args(live_env, commit)

    applied = _bot(url, *args, "--repository", "github:acme/shop", clusters=clusters)
    listed = _bot(url, "audit", "--format", "json")

    assert applied.returncode == 0, applied.stderr
    assert "recorded as audit record 1 (break-glass)" in applied.stderr
    [record] = json.loads(listed.stdout)
    assert (record["trigger"], record["result"], record["commit"]) == (
        "break-glass",
        "succeeded",
        commit,
    )
    assert record["author"] == getpass.getuser()
    assert record["repository"] == "github:acme/shop"
    assert record["started_at"] <= record["finished_at"]
    assert [(o["object"], o["outcome"]) for o in record["objects"]] == [
        (f"ConfigMap {live_env.namespace}/a", "applied")
    ]
