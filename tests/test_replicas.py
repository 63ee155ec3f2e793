"""Three `gitops-bot serve` replicas share one real PostgreSQL and one real kube-apiserver.

Over a thousand signed deliveries are spread across them, every one sent twice to two
different replicas at once: each is acknowledged once and processed once, applies of one
environment never overlap (the ledger records when each held the environment's lock),
old merges delivered again under new ids are not applied again, and the newest merge is
what each environment runs in the end.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from helpers.botprocess import (
    ROOT,
    BotProcess,
    Delivery,
    bot_environment,
    comment,
    deliver,
    origin_with_commits,
    push,
)
from helpers.controlplane import ControlPlane, kubectl
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.githubbot import deployment
from helpers.storetools import LEDGER_KEY, execute_sql, wait_until_idle

from bot.store.backends import store_for_url

REPLICAS = 3
REPOSITORIES = 3
MERGES = 60  # per repository, delivered in the order they were merged
STALE = 3  # per repository: old merges delivered again, with new ids, after the newest
COMMANDS = 320  # `/gitops help`, each from its own user
SEED = 20261122  # the spread of deliveries over replicas
DRAIN_GUARD_SECONDS = 900  # a guard against a hang, not a timing claim


def _tree(repository: int, namespace: str) -> Any:
    config = (
        "version: 1\nenvironments:\n"
        f"  shop-{repository}:\n    path: deploy\n    cluster: test\n"
        f"    namespace: {namespace}\n    apply_on_merge: true\n"
    )

    def tree(n: int) -> dict[str, str]:
        image = f"registry.example.com/web:1.{repository}.{n}"
        return {
            ".gitops-bot.yaml": config,
            "deploy/web.yaml": deployment(f"web-{repository}", image),
        }

    return tree


async def test_three_replicas_process_each_delivery_once_in_order(
    postgres_url: str,
    control_plane: ControlPlane,
    kube_namespace: str,
    tmp_path: Path,
    openapi: OpenAPIDescription,
    aiohttp_server: Any,
) -> None:
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = "ghp_" + uuid.uuid4().hex
    api = await aiohttp_server(fake.make_app())
    histories = {}
    for r in range(REPOSITORIES):
        origin, commits = origin_with_commits(
            tmp_path / f"origin-{r}", MERGES, _tree(r, kube_namespace)
        )
        histories[f"replicas/repo-{r}"] = (origin, commits)
    clusters = {
        "test": {
            "kubeconfig": str(control_plane.admin_kubeconfig),
            "context": "admin",
            "inventory_namespace": kube_namespace,
        }
    }
    bots = [
        BotProcess(
            bot_environment(
                postgres_url,
                str(api.make_url("")).rstrip("/"),
                fake.personal_token,
                tmp_path / f"data-{n}",
                clusters=json.dumps(clusters),
            ),
            tmp_path / f"bot-{n}.log",
        )
        for n in range(REPLICAS)
    ]
    users = [f"user-{n}" for n in range(COMMANDS)]
    fake.permissions.update(dict.fromkeys(users, "write"))
    chance = random.Random(SEED)
    answers: dict[str, list[int | None]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(bot.start(session) for bot in bots))  # migrations race here

        async def twice(item: Delivery) -> None:
            first, second = chance.sample(bots, 2)
            answers[item.id] = list(
                await asyncio.gather(deliver(session, first, item), deliver(session, second, item))
            )

        async def merges(slug: str) -> None:
            origin, commits = histories[slug]
            for commit in commits:
                await twice(push(origin, slug, commit))

        async def commands() -> None:
            origin, _ = histories["replicas/repo-0"]
            for n, user in enumerate(users):
                await twice(comment(origin, "replicas/repo-0", 100 + n % 7, user, "/gitops help"))

        await asyncio.gather(*(merges(slug) for slug in histories), commands())
        await wait_until_idle(postgres_url, DRAIN_GUARD_SECONDS)
        for slug, (origin, commits) in histories.items():  # old merges, new deliveries
            for commit in chance.sample(commits[:-1], STALE):
                await twice(push(origin, slug, commit))
        await wait_until_idle(postgres_url, DRAIN_GUARD_SECONDS)
        await asyncio.gather(*(bot.stop() for bot in bots))

    assert sum(len(statuses) for statuses in answers.values()) >= 1000
    _check_each_delivery_processed_once(postgres_url, answers)
    _check_each_command_answered_once(fake, users)
    records = _ledger(postgres_url)
    _check_applies_never_overlap(records)
    await _check_newest_merge_won(postgres_url, records, histories, control_plane, kube_namespace)
    assert not fake.violations, "\n".join(fake.violations)


def _check_each_delivery_processed_once(
    database_url: str, answers: dict[str, list[int | None]]
) -> None:
    for delivery_id, statuses in answers.items():
        assert sorted(statuses, key=str) == [200, 202], (delivery_id, statuses)
    rows = execute_sql(
        database_url,
        "SELECT d.id, j.kind, j.state, j.attempts FROM deliveries AS d "
        "JOIN jobs AS j ON j.delivery_id = d.id",
    )
    assert Counter(row[0] for row in rows) == dict.fromkeys(answers, 1)
    states = Counter((kind, state) for _, kind, state, _ in rows)
    assert set(states) <= {("command", "done"), ("apply", "done"), ("apply", "superseded")}
    assert {attempts for *_, state, attempts in rows if state == "done"} == {1}  # never twice
    print(f"jobs by kind and state: {dict(states)}")


def _check_each_command_answered_once(fake: FakeGitHub, users: list[str]) -> None:
    mentions = Counter(
        c["body"].split()[0] for c in fake.comments.values() if c["body"].startswith("@user-")
    )
    assert mentions == {f"@{user}": 1 for user in users}


def _ledger(database_url: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--format", "json"],
        env=_cli_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    verified = subprocess.run(
        [sys.executable, "-m", "bot", "audit", "--verify"],
        env=_cli_env(database_url),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stderr
    return list(json.loads(done.stdout))


def _check_applies_never_overlap(records: list[dict[str, Any]]) -> None:
    by_environment: dict[str, list[tuple[datetime.datetime, datetime.datetime]]] = {}
    for record in records:
        start, end = (_moment(record[k]) for k in ("started_at", "finished_at"))
        by_environment.setdefault(record["environment"], []).append((start, end))
    assert len(by_environment) == REPOSITORIES
    for environment, intervals in by_environment.items():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert end <= start, f"{environment}: two applies held its lock at once"


async def _check_newest_merge_won(
    database_url: str,
    records: list[dict[str, Any]],
    histories: dict[str, tuple[Any, list[str]]],
    control_plane: ControlPlane,
    namespace: str,
) -> None:
    store = store_for_url(database_url)
    await store.open()
    try:
        for r, (slug, (_, commits)) in enumerate(histories.items()):
            environment = f"shop-{r}"
            applied = await store.last_applied(f"github:{slug}:{environment}")
            assert applied is not None and applied.commit == commits[-1]
            mine = [rec for rec in records if rec["environment"] == environment]
            applied_in_order = [
                commits.index(rec["commit"]) for rec in mine if rec["result"] == "succeeded"
            ]
            assert applied_in_order == sorted(applied_in_order)  # never back to an older one
            assert applied_in_order[-1] == MERGES - 1
            # One record per merge: the old merges delivered again with new ids last were
            # applied (or superseded) once already, so they are neither applied nor recorded.
            assert Counter(rec["commit"] for rec in mine) == dict.fromkeys(commits, 1)
            assert (mine[-1]["commit"], mine[-1]["result"]) == (commits[-1], "succeeded")
            live = _deployment(control_plane, namespace, f"web-{r}")
            image = live["spec"]["template"]["spec"]["containers"][0]["image"]
            assert image == f"registry.example.com/web:1.{r}.{MERGES - 1}"
    finally:
        await store.close()


def _deployment(control_plane: ControlPlane, namespace: str, name: str) -> dict[str, Any]:
    binary = kubectl()
    assert binary is not None
    done = subprocess.run(
        [
            binary,
            f"--kubeconfig={control_plane.admin_kubeconfig}",
            "-n",
            namespace,
            "get",
            "deployment",
            name,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(done.stdout))


def _moment(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    return {**env, "GITOPS_BOT_DATABASE_URL": database_url, "GITOPS_BOT_LEDGER_KEY": LEDGER_KEY}
