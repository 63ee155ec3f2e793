"""The GitLab webhook edge: token, signature, durable storage before 2xx, duplicates, 5xx."""

from __future__ import annotations

import base64
import json
import sqlite3

import pytest
from helpers.githubbot import base_tree
from helpers.gitlabbot import HOOK_TOKEN, GitLabBot, GitLabBotFactory, payload, sign

from bot.config.secrets import Secret
from bot.config.settings import Settings, SettingsError
from bot.server.app import create_app

SIGNING_KEY = b"k" * 32
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()


def _stored(bot: GitLabBot) -> tuple[int, int]:
    """(deliveries, jobs) as committed on disk, read through a separate connection."""
    with sqlite3.connect(bot.database) as db:
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return deliveries, jobs


def _opened(bot: GitLabBot, iid: int = 3) -> dict[str, object]:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "README.md": "docs only"})
    return bot.merge_request("open", iid, base, head)


async def test_a_wrong_or_missing_token_is_refused_and_nothing_stored(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    hook = _opened(bot)

    wrong = await bot.deliver("Merge Request Hook", hook, token="not-the-token")
    missing = await bot.deliver("Merge Request Hook", hook, token=None)
    longer = await bot.deliver("Merge Request Hook", hook, token=HOOK_TOKEN + "x")

    assert [wrong.status, missing.status, longer.status] == [401, 401, 401]
    assert _stored(bot) == (0, 0)
    assert not bot.fake.calls


async def test_an_accepted_delivery_is_on_disk_before_the_answer(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()

    response = await bot.deliver("Merge Request Hook", _opened(bot))

    assert response.status == 202
    assert _stored(bot) == (1, 1)


async def test_a_resent_delivery_is_processed_once(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    hook = _opened(bot)
    key = {"Idempotency-Key": "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"}

    first = await bot.deliver("Merge Request Hook", hook, headers=key)
    again = await bot.deliver("Merge Request Hook", hook, headers=key)  # a new event UUID

    assert (first.status, again.status) == (202, 200)
    assert _stored(bot) == (1, 1)
    assert await bot.drain() == 1
    assert len(bot.fake.notes_on(3)) == 1


async def test_without_an_idempotency_key_the_event_uuid_identifies_a_delivery(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    hook = _opened(bot)
    uuid = {"X-Gitlab-Event-UUID": "13792a34-cac6-4fda-95a8-c58e00a3954e"}

    first = await bot.deliver("Merge Request Hook", hook, headers=uuid)
    again = await bot.deliver("Merge Request Hook", hook, headers=uuid)

    assert (first.status, again.status) == (202, 200)
    assert _stored(bot) == (1, 1)


async def test_the_store_being_unavailable_is_a_5xx_and_nothing_is_kept(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    """GitLab disables a hook for good after 4xx answers; a bot fault must be a 5xx."""
    bot = await make_gitlab_bot()
    hook = _opened(bot)
    with sqlite3.connect(bot.database) as db:  # the store's disk refuses every write
        db.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON deliveries "
            "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
        )

    refused = await bot.deliver("Merge Request Hook", hook)

    assert refused.status == 503
    assert _stored(bot) == (0, 0)
    with sqlite3.connect(bot.database) as db:
        db.execute("DROP TRIGGER refuse")
    assert (await bot.deliver("Merge Request Hook", hook)).status == 202  # GitLab's retry
    assert _stored(bot) == (1, 1)


async def test_events_the_bot_does_not_use_are_acknowledged_and_ignored(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "README.md": "docs"})
    system_note = bot.note(3, "/gitops plan", "dana")
    system_note["object_attributes"]["system"] = True
    edited_note = bot.note(3, "/gitops plan", "dana")
    edited_note["object_attributes"]["action"] = "update"
    deliveries = [
        ("Note Hook", payload("note_issue")),
        ("Note Hook", system_note),
        ("Note Hook", edited_note),
        ("Note Hook", bot.note(3, "looks good to me", "dana")),
        ("Push Hook", bot.push("refs/heads/cart-service", base, head)),
        ("Push Hook", bot.push("refs/heads/main", head, "0" * 40)),  # the branch was deleted
        ("Merge Request Hook", bot.merge_request("merge", 3, base, head)),
        ("Pipeline Hook", {"object_kind": "pipeline"}),
    ]

    responses = [await bot.deliver(event, body) for event, body in deliveries]

    assert [r.status for r in responses] == [200] * len(deliveries)
    assert _stored(bot) == (len(deliveries), 0)
    assert await bot.drain() == 0


async def test_a_body_that_is_not_a_payload_is_a_bad_request(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    broken = _opened(bot)
    del broken["object_attributes"]["last_commit"]  # type: ignore[attr-defined]

    responses = [
        await bot.deliver("Merge Request Hook", b"not json"),
        await bot.deliver("Merge Request Hook", b"[1, 2]"),
        await bot.deliver("Merge Request Hook", broken),
        await bot.deliver("Merge Request Hook", b"[" * 100_000 + b"]" * 100_000),  # too deep
    ]

    assert [r.status for r in responses] == [400, 400, 400, 400]
    assert "last_commit" in await responses[2].text()
    assert _stored(bot) == (0, 0)


async def test_a_signing_token_is_checked_on_top_of_the_secret_token(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot(gitlab_webhook_signing_token=Secret(SIGNING_TOKEN))
    body = json.dumps(_opened(bot)).encode()
    now = int(bot.clock())

    def signed(message_id: str, timestamp: int, signature: str | None = None) -> dict[str, str]:
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature or sign(SIGNING_KEY, message_id, timestamp, body),
        }

    unsigned = await bot.deliver("Merge Request Hook", body)
    forged = await bot.deliver(
        "Merge Request Hook", body, headers=signed("m-1", now, sign(b"x" * 32, "m-1", now, body))
    )
    replayed = await bot.deliver("Merge Request Hook", body, headers=signed("m-2", now - 3600))
    tampered = await bot.deliver("Merge Request Hook", body + b" ", headers=signed("m-3", now))
    assert [r.status for r in (unsigned, forged, replayed, tampered)] == [401] * 4
    assert "5 minutes" in await replayed.text()
    assert _stored(bot) == (0, 0)

    rotated = f"v1,{base64.b64encode(b'old' * 11).decode()} " + sign(SIGNING_KEY, "m-4", now, body)
    accepted = await bot.deliver("Merge Request Hook", body, headers=signed("m-4", now, rotated))
    no_token = await bot.deliver("Merge Request Hook", body, token=None, headers=signed("m-5", now))
    assert (accepted.status, no_token.status) == (202, 401)
    assert _stored(bot) == (1, 1)


async def test_only_the_forges_that_are_configured_are_served(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()

    github = await bot.client.post("/webhooks/github", data=b"{}")
    metrics = await (await bot.client.get("/metrics")).text()

    assert github.status == 404
    assert (await bot.client.get("/readyz")).status == 200
    assert 'forge="gitlab"' not in metrics  # nothing delivered yet
    await bot.deliver("Merge Request Hook", _opened(bot))
    metrics = await (await bot.client.get("/metrics")).text()
    assert (
        'gitops_bot_webhook_deliveries_total{event="Merge Request Hook",forge="gitlab",'
        'outcome="queued"} 1.0'
    ) in metrics


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"gitlab_webhook_secret": Secret("s")},
            "GITOPS_BOT_GITLAB_TOKEN is not",
        ),
        (
            {
                "gitlab_webhook_secret": Secret("s"),
                "gitlab_token": Secret("t"),
                "gitlab_webhook_signing_token": Secret("whsec_not*base64"),
            },
            "copy the whsec_",
        ),
        ({}, "GITOPS_BOT_GITHUB_WEBHOOK_SECRET is not set (nor GITOPS_BOT_GITLAB_WEBHOOK_SECRET)"),
    ],
)
def test_incomplete_gitlab_settings_say_what_to_set(
    settings: dict[str, Secret], message: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        create_app(Settings(**settings))  # type: ignore[arg-type]
    assert message in str(refused.value)
    assert "'s'" not in str(refused.value) and "'t'" not in str(refused.value)
