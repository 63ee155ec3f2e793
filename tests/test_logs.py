"""Logs are JSON lines with the context of each event, and never carry a secret value."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.botprocess import ROOT, BotProcess, Delivery, bot_environment, push
from helpers.botprocess import origin_with_commits as make_origin
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.githubbot import example, sign

from bot.config.secrets import Secret
from bot.config.settings import Settings, SettingsError
from bot.store.backends import store_for_url
from bot.store.ports import JobState
from bot.telemetry.logs import (
    MASK,
    JsonLines,
    Redactor,
    configure_logging,
    log_context,
    secret_values,
)

GUARD_SECONDS = 120  # against a hang, never a timing claim
QUOTED_SECRET = 'quote"d\\secret'  # JSON escapes both the quote and the backslash


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose records are formatted as the server formats them, into a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonLines(Redactor(["s3cret-webhook-value", QUOTED_SECRET])))
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, buffer


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_one_json_object_per_line_with_the_context(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    with log_context(delivery="d-1", repo="acme/shop", pr=None):
        with log_context(job=7, environment="production"):
            logger.info("applied %s objects\nsecond line", 3, extra={"http": {"status": 202}})
        logger.warning("after the job")
    first, second = lines(buffer)
    assert first["message"] == "applied 3 objects\nsecond line"
    assert first["level"] == "info"
    assert (first["delivery"], first["repo"], first["job"], first["environment"]) == (
        "d-1",
        "acme/shop",
        7,
        "production",
    )
    assert first["http"] == {"status": 202}
    assert "pr" not in first  # unknown fields are left out, not written as null
    assert "job" not in second and second["delivery"] == "d-1"
    assert first["time"].endswith("+00:00")


def test_known_secret_values_are_masked_wherever_they_appear(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, buffer = captured
    with log_context(header="token s3cret-webhook-value"):
        try:
            raise RuntimeError(f"upstream said {QUOTED_SECRET} was wrong")
        except RuntimeError:
            logger.exception("call failed with %s", "s3cret-webhook-value")
    text = buffer.getvalue()
    assert "s3cret-webhook-value" not in text
    assert "secret was wrong" not in text  # the JSON-escaped form is masked too
    (line,) = lines(buffer)
    assert line["message"] == f"call failed with {MASK}"
    assert line["header"] == f"token {MASK}"
    assert f"upstream said {MASK} was wrong" in line["error"]


@pytest.mark.parametrize(
    "leak",
    [
        "ghs_" + "A1b2C3d4" * 5,  # an installation token, never in the settings
        *(f"gh{kind}_" + "A1b2C3d4" * 5 for kind in "pour"),  # the other GitHub tokens
        "github_pat_" + "x" * 30,
        "glpat-" + "y" * 20,
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiI0MjQyIn0.c2lnbmF0dXJl",  # an App JWT
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
    ],
)
def test_credential_shaped_values_are_masked_without_being_configured(leak: str) -> None:
    assert Redactor([]).mask(f"request failed: {leak}!") == f"request failed: {MASK}!"


def test_authorization_headers_are_masked_in_any_quoting() -> None:
    redactor = Redactor([])
    for text in (
        "Authorization: Bearer abc.def-ghi",
        "{'Authorization': 'token abcdef123'}",
        '{\\"authorization\\": \\"Basic dXNlcjpwYXNz\\"}',
    ):
        masked = redactor.mask(text)
        assert MASK in masked
        assert not any(v in masked for v in ("abc.def-ghi", "abcdef123", "dXNlcjpwYXNz"))


def test_a_private_key_is_masked_whole_and_line_by_line() -> None:
    body = ["MIIEowIBAAKCAQEAr" + "k" * 47, "Zm9vYmFyYmF6" + "q" * 52]
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(body) + "\n-----END RSA PRIVATE KEY-----"
    redactor = Redactor([key])
    assert redactor.mask(f"bad key {key}") == f"bad key {MASK}"
    assert body[1] not in redactor.mask(f"key line seen: {body[1]}")


def test_short_values_are_not_masked_as_they_would_mask_ordinary_words() -> None:
    assert Redactor(["abc"]).mask("abc abcdef") == "abc abcdef"


def test_secret_values_come_from_every_secret_setting_and_the_database_password() -> None:
    settings = Settings(
        database_url="postgresql://bot:db-password-123@db.example:5432/bot",
        github_webhook_secret=Secret("webhook-secret-1"),
        github_token=Secret("token-value-22"),
        gitlab_token=Secret("gitlab-token-333"),
        secret_fingerprint_key=Secret("fingerprint-4444"),
    )
    secrets = ["webhook-secret-1", "token-value-22", "gitlab-token-333", "fingerprint-4444"]
    from_the_url = "db-password-123"
    assert sorted(secret_values(settings)) == sorted([*secrets, from_the_url])


def test_an_unknown_log_level_says_what_to_use() -> None:
    with pytest.raises(SettingsError, match=r"GITOPS_BOT_LOG_LEVEL.*debug, info, warning"):
        configure_logging(Settings(log_level="chatty"))


async def test_serve_logs_json_lines_without_a_secret_value(
    tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    """A real server with real secret values: a job fails with an error that quotes them
    (as a misbehaving server or proxy might). The log, the comment on the PR and the
    dead-letter list all show the failure, and none shows a secret."""
    webhook_secret, token = f"whs-{uuid.uuid4().hex}", f"tok-{uuid.uuid4().hex}"
    fingerprint_key = f"fpk-{uuid.uuid4().hex}"
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = token  # not token-shaped: only the settings can tell it is secret
    api = await aiohttp_server(fake.make_app())
    origin, (commit,) = make_origin(tmp_path / "origin", 1)
    slug = "logs/shop"
    _merged_pull(fake, slug, commit)
    fake.fail(
        "GET",
        r"/deployments$",
        422,
        message=f"Validation failed for token {token} (webhook {webhook_secret})",
        times=100,
    )
    database_url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    settings = {
        "github_webhook_secret": webhook_secret,
        "secret_fingerprint_key": fingerprint_key,
        "job_max_attempts": "1",
    }
    environment = bot_environment(
        database_url, str(api.make_url("")).rstrip("/"), token, tmp_path / "data", **settings
    )
    bot = BotProcess(environment, tmp_path / "bot.log")
    merge = push(origin, slug, commit)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await bot.start(session)
        assert await _post(session, bot, merge, webhook_secret) == 202
        assert await _post(session, bot, merge, webhook_secret) == 200  # a redelivery
        assert await _post(session, bot, merge, "not-the-secret") == 401
        await _until_dead(database_url)
        bot.terminate()
        assert await bot.exit_code(GUARD_SECONDS) == 0
    text = bot.log.read_text()
    logged = [json.loads(line) for line in text.splitlines() if not line.startswith("--- ")]
    print("\n".join(json.dumps(line) for line in logged))  # the sample, for the reader
    stored = [line for line in logged if line.get("delivery") == merge.id]
    assert any("stored" in line["message"] and line["repo"] == slug for line in stored)
    assert any("received before" in line["message"] for line in stored)
    statuses = {line["http"]["status"] for line in stored if "http" in line}
    assert statuses == {202, 200, 401}, "each request is logged with the forge's delivery id"
    failed = [line for line in logged if "failed" in line["message"] and "job" in line]
    assert failed and all(line["commit"] == commit for line in failed)
    assert any(MASK in line["message"] for line in failed), "the failure is logged, masked"
    (comment,) = fake.comments_on(5)
    shown_mask = MASK.replace("*", "&#42;")  # the comment's Markdown escapes each asterisk
    assert "could not complete" in comment["body"] and shown_mask in comment["body"]
    dead_letters = _cli(database_url, "jobs", "--dead")
    for secret in (webhook_secret, token, fingerprint_key):
        assert secret not in text
        assert secret not in comment["body"]
        assert secret not in dead_letters


def _merged_pull(fake: FakeGitHub, slug: str, commit: str) -> None:
    pull = example("pull_request", "closed")["pull_request"]
    pull.update(number=5, merged_at="2026-01-01T00:00:00Z", merge_commit_sha=commit)
    pull["base"]["repo"]["full_name"] = pull["head"]["repo"]["full_name"] = slug
    fake.pulls[5] = pull


async def _post(
    session: aiohttp.ClientSession, bot: BotProcess, item: Delivery, secret: str
) -> int:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": item.event,
        "X-GitHub-Delivery": item.id,
        "X-Hub-Signature-256": sign(item.body, secret),
    }
    async with session.post(f"{bot.url}/webhooks/github", data=item.body, headers=headers) as r:
        return r.status


async def _until_dead(database_url: str) -> None:
    store = store_for_url(database_url)
    await store.open()
    deadline = time.monotonic() + GUARD_SECONDS
    try:
        while (await store.job_counts())[JobState.DEAD] < 1:
            assert time.monotonic() < deadline, "the job never failed"
            await asyncio.sleep(0.1)
    finally:
        await store.close()


def _cli(database_url: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**env, "GITOPS_BOT_DATABASE_URL": database_url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=GUARD_SECONDS,
        check=True,
    )
    return done.stdout
