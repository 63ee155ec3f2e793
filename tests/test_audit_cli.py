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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.githubbot import BotFactory, FakeClock
from helpers.livecluster import CLUSTER, ENV, LiveEnv, configmap
from helpers.storetools import LEDGER_KEY, TEST_KEY, execute_sql

from bot.core.audit import AuditEntry
from bot.core.ledgerchain import LedgerKey, seal
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
    env["GITOPS_BOT_LEDGER_KEY"] = LEDGER_KEY
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


async def _ledger(database_url: str, *entries: tuple[float, AuditEntry]) -> list[float]:
    """The entries in the ledger; the store's time just before each was recorded (SQLite
    records at `when`; PostgreSQL at its own time, which the HMAC seals)."""
    clock = FakeClock()
    store = store_for_url(database_url, clock)
    await store.open()
    times: list[float] = []
    for when, entry in entries:
        clock.now = when
        times.append(await store.now())  # on PostgreSQL the server's, not `when`
        await store.add_audit(entry, sealing=TEST_KEY)
    await store.close()
    return times


async def test_the_ledger_is_listed_filtered_and_verified(database_url: str) -> None:
    times = await _ledger(
        database_url,
        (JANUARY, _entry("staging", "a" * 40)),
        (FEBRUARY, _entry("production", "b" * 40)),
        (FEBRUARY, _entry("staging", "c" * 40)),
    )

    listed = _bot(database_url, "audit", "--format", "json", "--env", "staging")
    cut = datetime.datetime.fromtimestamp(times[1], datetime.UTC).isoformat()
    recent = _bot(database_url, "audit", "--since", cut, "--env", "staging")
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
         "record 2: it is missing (record 3 comes next)"),
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


# An informed attacker: database access and the code, but not the ledger key.
ATTACKER = LedgerKey("k1", b"the attacker's best guess at it")
_ROW = (
    "sequence, environment, commit_sha, entry, previous_hash, hash, idempotency_key, "
    "recorded_at, key_id"
)


def _rows(url: str) -> list[list[Any]]:
    return [list(r) for r in execute_sql(url, f"SELECT {_ROW} FROM audit_ledger ORDER BY sequence")]  # noqa: S608


def _rewrite(url: str, rows: list[list[Any]]) -> None:
    execute_sql(url, "DELETE FROM audit_ledger")
    insert = f"INSERT INTO audit_ledger ({_ROW}) VALUES ({', '.join(['%s'] * 9)})"  # noqa: S608
    for row in rows:
        execute_sql(url, insert, tuple(row))


def _forged(row: list[Any], sequence: int, link: str) -> list[Any]:
    """`row` moved to `sequence` after `link`, its hash recomputed as the bot would, but
    with a key that is not the bot's."""
    data = {**json.loads(row[3]), "environment": row[1], "commit": row[2]}
    digest = seal(sequence, link, data, row[7], ATTACKER)
    return [sequence, row[1], row[2], row[3], link, digest, None, row[7], ATTACKER.key_id]


def _delete_and_rehash(url: str) -> None:
    rows = _rows(url)
    del rows[2]
    for index in range(2, len(rows)):
        rows[index] = _forged(rows[index], index + 1, rows[index - 1][5])
    _rewrite(url, rows)


def _insert_at_4(url: str) -> None:
    rows = _rows(url)
    intruder = _forged([*rows[3][:2], "f" * 40, *rows[3][3:]], 4, rows[2][5])
    _rewrite(url, [*rows[:3], intruder, *([r[0] + 1, *r[1:]] for r in rows[3:])])


def _append(url: str) -> None:
    rows = _rows(url)
    _rewrite(url, [*rows, _forged([*rows[-1][:2], "e" * 40, *rows[-1][3:]], 7, rows[-1][5])])


def _sql(statement: str) -> Callable[[str], None]:
    return lambda url: execute_sql(url, statement) and None


@pytest.mark.parametrize(
    ("attack", "named"),
    [
        (_append, "record 7: its content was changed after it was written (or it was forged)"),
        (_delete_and_rehash, "record 3: its content was changed"),
        (_insert_at_4, "record 4: its content was changed"),
        (_sql("UPDATE audit_ledger SET recorded_at = recorded_at + 86400 WHERE sequence = 2"),
         "record 2: its content was changed"),
        (_sql("UPDATE audit_ledger SET entry = REPLACE(entry, '{', '{\"extra\": 1, ') "
              "WHERE sequence = 5"),
         "record 5: its content was changed"),
        (_sql("UPDATE audit_ledger SET key_id = 'k9' WHERE sequence = 3"),
         "record 3: it names ledger key id 'k9', which is neither the current key nor a "
         "retired one"),
    ],
    ids=["append", "delete-and-rehash", "insert-at-4", "recorded-at", "unknown-field",
         "unknown-key-id"],
)  # fmt: skip
async def test_an_informed_attacker_is_found_and_the_first_untrusted_record_named(
    database_url: str, attack: Callable[[str], None], named: str
) -> None:
    await _ledger(
        database_url, *((JANUARY + n, _entry("production", f"{n:040x}")) for n in range(6))
    )
    attack(database_url)

    done = _bot(database_url, "audit", "--verify")

    assert done.returncode == 1, done.stderr
    assert f"audit ledger NOT TRUSTWORTHY from {named}" in done.stderr
    assert done.stdout == ""


async def test_deleting_the_last_records_is_found_against_an_anchor(database_url: str) -> None:
    await _ledger(
        database_url, *((JANUARY + n, _entry("production", f"{n:040x}")) for n in range(6))
    )
    [(head,)] = execute_sql(database_url, "SELECT hash FROM audit_ledger WHERE sequence = 6")
    execute_sql(database_url, "DELETE FROM audit_ledger WHERE sequence >= 5")

    alone = _bot(database_url, "audit", "--verify")
    anchored = _bot(database_url, "audit", "--verify", "--anchor", f"6:{head}")

    assert alone.returncode == 0, alone.stderr  # a clean cut leaves nothing in the database
    assert "records deleted from the end cannot be detected" in alone.stdout
    assert anchored.returncode == 1
    assert (
        f"NOT TRUSTWORTHY from record 5: it is missing: the forge holds anchor 6:{head}"
        in anchored.stderr
    )


async def test_records_of_a_retired_key_verify_and_a_dropped_key_does_not(
    database_url: str,
) -> None:
    """Rotation: records sealed with k1 still verify once k1 is retired and k2 is current."""
    await _ledger(database_url, (JANUARY, _entry("production", "a" * 40)))
    rotated = {"ledger_key": "a-new-ledger-key-0123456789", "ledger_key_id": "k2"}

    with_retired = _bot(
        database_url, "audit", "--verify", ledger_retired_keys=f"k1:{LEDGER_KEY}", **rotated
    )
    without = _bot(database_url, "audit", "--verify", **rotated)

    assert with_retired.returncode == 0, with_retired.stderr
    assert "keys: k1" in with_retired.stdout
    assert without.returncode == 1
    assert "record 1: it names ledger key id 'k1'" in without.stderr


async def test_unkeyed_records_need_the_operator_to_name_the_legacy_head(
    database_url: str,
) -> None:
    """Records written before the ledger was keyed: refused until the operator names the
    last of them, then trusted up to it and no further."""
    store = store_for_url(database_url, FakeClock())
    await store.open()
    legacy = [await store.add_audit(_entry("production", f"{n:040x}")) for n in range(2)]
    await store.add_audit(_entry("production", "c" * 40), sealing=TEST_KEY)
    await store.close()
    head = f"2:{legacy[1].hash}"

    refused = _bot(database_url, "audit", "--verify")
    vouched = _bot(database_url, "audit", "--verify", ledger_legacy_head=head)
    too_short = _bot(database_url, "audit", "--verify", ledger_legacy_head=f"1:{legacy[0].hash}")

    assert refused.returncode == 1
    assert "NOT TRUSTWORTHY from record 1: it is not keyed" in refused.stderr
    assert vouched.returncode == 0, vouched.stderr
    assert "unkeyed legacy records: 2" in vouched.stdout
    assert too_short.returncode == 1
    assert "from record 2: it is not keyed" in too_short.stderr


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"ledger_key": "short"}, "shorter than 16 characters; generate one with `openssl"),
        ({"ledger_retired_keys": f"k1:{LEDGER_KEY}"}, "ledger key ids repeat (k1, k1)"),
        ({"ledger_retired_keys": "no-id-here"}, "write each retired key as ID:SECRET"),
        ({"ledger_key_id": "k 1"}, "key id 'k 1' must be 1 to 40 letters"),
        ({"ledger_legacy_head": "12"}, "'12' is not SEQUENCE:HASH"),
    ],
)
def test_unusable_ledger_key_settings_are_refused_clearly(
    tmp_path: Path, settings: dict[str, str], said: str
) -> None:
    done = _bot(f"sqlite:///{tmp_path / 'bot.sqlite3'}", "audit", "--verify", **settings)
    assert done.returncode == 3
    assert said in done.stderr
    assert "Traceback" not in done.stderr
