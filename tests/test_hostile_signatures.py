"""Hostile webhook signatures: only `X-Hub-Signature-256: sha256=<hex>` authenticates a
GitHub delivery; every other form is a 401 with nothing stored and nothing called."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import sqlite3
import uuid
from pathlib import Path

import pytest
from helpers.githubbot import SECRET, BotFactory, BotHarness, base_tree
from helpers.gitlabbot import GitLabBotFactory, sign

from bot.config.secrets import Secret
from bot.config.settings import SettingsError, load_settings

SIGNING_KEY = b"s" * 32
SIGNING_TOKEN = "whsec_" + base64.b64encode(SIGNING_KEY).decode()
BOUND_SECONDS = 30  # a guard against a hang, not a timing claim


def _digest(body: bytes, algorithm: str, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, algorithm).hexdigest()


def _stored(database: Path) -> tuple[int, int]:
    with sqlite3.connect(database) as db:
        deliveries = db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
        jobs = db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    return deliveries, jobs


async def _post(bot: BotHarness, body: bytes, signatures: dict[str, str]) -> tuple[int, str]:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **signatures,
    }
    async with asyncio.timeout(BOUND_SECONDS):
        response = await bot.client.post("/webhooks/github", data=body, headers=headers)
        return response.status, await response.text()


def _hostile_signatures(body: bytes) -> dict[str, dict[str, str]]:
    sha1, sha256 = _digest(body, "sha1"), _digest(body, "sha256")
    return {
        "sha1 only, in the old header": {"X-Hub-Signature": f"sha1={sha1}"},
        "sha1 inside the sha256 header": {"X-Hub-Signature-256": f"sha1={sha1}"},
        "valid sha1 beside a wrong sha256": {
            "X-Hub-Signature": f"sha1={sha1}",
            "X-Hub-Signature-256": "sha256=" + "0" * 64,
        },
        "upper-case scheme": {"X-Hub-Signature-256": f"SHA256={sha256}"},
        "no scheme": {"X-Hub-Signature-256": sha256},
        "truncated digest": {"X-Hub-Signature-256": f"sha256={sha256[:40]}"},
        "digest with a tail": {"X-Hub-Signature-256": f"sha256={sha256}00"},
        "two signatures in one header": {"X-Hub-Signature-256": f"sha256={sha256},sha1={sha1}"},
        "empty-secret digest": {"X-Hub-Signature-256": "sha256=" + _digest(body, "sha256", "")},
        "empty header": {"X-Hub-Signature-256": ""},
    }


async def test_only_a_sha256_signature_in_githubs_form_authenticates(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "README.md": "docs only"})
    body = json.dumps(bot.pull_request("opened", 3, base, head)).encode()

    for case, signatures in _hostile_signatures(body).items():
        status, text = await _post(bot, body, signatures)
        assert status == 401, case
        assert "X-Hub-Signature-256" in text, case  # says which header to fix
        assert _stored(bot.database) == (0, 0), case
    assert not bot.fake.calls

    good = {"X-Hub-Signature-256": "sha256=" + _digest(body, "sha256")}
    assert (await _post(bot, body, good))[0] == 202  # the same body, properly signed
    assert _stored(bot.database) == (1, 1)


@pytest.mark.parametrize("name", ["GITHUB_WEBHOOK_SECRET", "GITLAB_WEBHOOK_SECRET"])
def test_a_blank_webhook_secret_is_refused_at_startup(name: str) -> None:
    with pytest.raises(SettingsError, match=f"GITOPS_BOT_{name} is blank") as caught:
        load_settings({f"GITOPS_BOT_{name}": "   "})
    assert "'   '" not in str(caught.value)


async def test_odd_gitlab_signature_headers_are_refused_not_crashed_on(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot(gitlab_webhook_signing_token=Secret(SIGNING_TOKEN))
    body = json.dumps({"object_kind": "merge_request"}).encode()
    now = int(bot.clock())
    good = sign(SIGNING_KEY, "m-1", now, body)
    cases = {
        "a unicode digit as the timestamp": ("m-1", "²", good),
        "a huge timestamp": ("m-1", "9" * 400, good),
        "the scheme in upper case": ("m-1", str(now), good.replace("v1,", "V1,")),
        "an empty signature entry": ("m-1", str(now), "v1,"),
    }
    for case, (message_id, timestamp, signature) in cases.items():
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature,
        }
        async with asyncio.timeout(BOUND_SECONDS):
            response = await bot.deliver("Merge Request Hook", body, headers=headers)
        assert response.status == 401, case
        assert _stored(bot.database) == (0, 0), case
