"""The webhook edge: signatures, size cap, durable storage before 202, duplicates, probes."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from helpers.githubbot import BotFactory, BotHarness, base_tree, example, sign

from bot.store.ports import JobState


def _stored(bot: BotHarness) -> tuple[int, int]:
    """(deliveries, jobs) as committed on disk, read through a separate connection."""
    with sqlite3.connect(bot.database) as db:
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return deliveries, jobs


async def _pull_request(bot: BotHarness) -> dict[str, object]:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "README.md": "docs only"})
    return bot.pull_request("opened", 3, base, head)


async def test_a_forged_or_missing_signature_is_refused_and_nothing_stored(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    payload = await _pull_request(bot)
    body = json.dumps(payload).encode()

    forged = await bot.deliver("pull_request", payload, signature=sign(body, "wrong-secret"))
    missing = await bot.client.post(
        "/webhooks/github",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "pull_request",
            "X-GitHub-Delivery": "d-1",
        },
    )
    tampered = await bot.deliver("pull_request", {**payload, "number": 4}, signature=sign(body))

    assert [forged.status, missing.status, tampered.status] == [401, 401, 401]
    assert _stored(bot) == (0, 0)
    assert not bot.fake.calls


async def test_an_accepted_delivery_is_on_disk_before_the_answer(make_bot: BotFactory) -> None:
    bot = await make_bot()
    response = await bot.deliver("pull_request", await _pull_request(bot), delivery_id="d-2")

    assert response.status == 202
    assert _stored(bot) == (1, 1)


async def test_a_duplicate_delivery_is_processed_once(make_bot: BotFactory) -> None:
    bot = await make_bot()
    payload = await _pull_request(bot)

    first = await bot.deliver("pull_request", payload, delivery_id="same-id")
    again = await bot.deliver("pull_request", payload, delivery_id="same-id")

    assert (first.status, again.status) == (202, 200)
    assert _stored(bot) == (1, 1)
    assert await bot.drain() == 1
    assert len(bot.fake.comments_on(3)) == 1


async def test_unknown_events_and_actions_are_acknowledged_and_ignored(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    ping = await bot.deliver("ping", example("ping"))
    labeled = await bot.deliver("pull_request", example("pull_request", "labeled"))
    deleted = await bot.deliver("issue_comment", example("issue_comment", "deleted"))

    assert [ping.status, labeled.status, deleted.status] == [200, 200, 200]
    assert _stored(bot) == (3, 0)
    assert await bot.drain() == 0


async def test_bodies_over_25_mb_are_refused_before_parsing(make_bot: BotFactory) -> None:
    bot = await make_bot()
    body = b"{" + b" " * (25 * 1024 * 1024) + b"}"
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": "big",
        "X-Hub-Signature-256": sign(body),
    }

    response = await bot.client.post("/webhooks/github", data=body, headers=headers)

    assert response.status == 413
    assert _stored(bot) == (0, 0)


DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # deeper than json's recursion


@pytest.mark.parametrize("event", ["push", "pull_request"])
@pytest.mark.parametrize(
    "body",
    [b"not json", b"[]", b"null", b"1", b'"text"', b"", pytest.param(DEEP, id="deep")],
)
async def test_a_signed_body_that_is_not_a_json_object_is_a_bad_request(
    make_bot: BotFactory, body: bytes, event: str
) -> None:
    bot = await make_bot()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "bad",
        "X-Hub-Signature-256": sign(body),
    }

    response = await bot.client.post("/webhooks/github", data=body, headers=headers)

    assert response.status == 400
    assert _stored(bot) == (0, 0)


async def test_a_signed_header_that_is_not_utf8_is_refused_and_nothing_stored(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    body = json.dumps(await _pull_request(bot)).encode()
    head = (  # raw bytes: a client library would not send a header that is not UTF-8
        b"POST /webhooks/github HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nX-GitHub-Event: pull_request\r\n"
        b"X-GitHub-Delivery: d-\xff\xfe\r\nX-Hub-Signature-256: %s\r\n"
        b"Content-Length: %d\r\n\r\n" % (sign(body).encode(), len(body))
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", bot.client.port)
    writer.write(head + body)
    answer = await reader.read()
    writer.close()

    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(b"is not UTF-8 text\n")
    assert _stored(bot) == (0, 0)


async def test_a_repository_name_with_a_lone_surrogate_is_refused_and_nothing_stored(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    payload = await _pull_request(bot)
    payload["repository"]["full_name"] += "\ud800"  # type: ignore[index]  # JSON keeps "\\ud800"

    response = await bot.deliver("pull_request", payload)

    assert response.status == 400
    assert _stored(bot) == (0, 0)


async def test_probes_and_metrics(make_bot: BotFactory) -> None:
    bot = await make_bot()
    await bot.deliver("pull_request", await _pull_request(bot))
    await bot.deliver("pull_request", await _pull_request(bot), signature="sha256=00")
    await bot.drain()

    assert (await bot.client.get("/healthz")).status == 200
    assert (await bot.client.get("/readyz")).status == 200
    metrics = await bot.client.get("/metrics")
    text = await metrics.text()
    assert metrics.headers["Content-Type"].startswith("text/plain")
    queued = 'event="pull_request",forge="github",outcome="queued"'
    for line in (
        f"gitops_bot_webhook_deliveries_total{{{queued}}} 1.0",
        'gitops_bot_webhook_deliveries_total{event="-",forge="github",outcome="forged"} 1.0',
        'gitops_bot_plans_total{result="ready"} 1.0',
        'gitops_bot_jobs{state="done"} 1.0',
        'gitops_bot_github_rate_limit_remaining{installation="7788"} 4999.0',
    ):
        assert line in text
    assert 'gitops_bot_job_duration_seconds_count{kind="plan",result="ready"} 1.0' in text
    assert 'gitops_bot_github_api_calls_total{method="POST",status="201"}' in text


async def test_background_workers_pick_up_a_delivery(make_bot: BotFactory) -> None:
    bot = await make_bot(workers=True)
    await bot.deliver("pull_request", await _pull_request(bot))

    async def finished() -> None:
        while (await bot.services.store.job_counts())[JobState.DONE] != 1:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(finished(), 60)  # a guard against hanging, not a timing claim
    assert len(bot.fake.comments_on(3)) == 1
    assert (await bot.client.get("/readyz")).status == 200
