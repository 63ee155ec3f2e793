"""The fake GitHub itself: it must reject what the description rejects, or it proves nothing."""

from __future__ import annotations

import pytest
from helpers.fakegithub import OpenAPIDescription
from helpers.githubbot import BotFactory


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "problem"),
    [
        ("GET", "/repos/o/r/no-such-thing", {}, b"", "no such operation"),
        ("PUT", "/repos/o/r/check-runs", {}, b"{}", "no such operation"),
        ("GET", "/repos/o/r/issues/7/comments", {"perpage": "9"}, b"", "not described"),
        ("GET", "/repos/o/r/issues/seven/comments", {}, b"", "'seven' is not of type"),
        ("POST", "/repos/o/r/statuses/abc", {}, b"", "body is required"),
        ("POST", "/repos/o/r/statuses/abc", {}, b'{"state": "ok"}', "'ok' is not one of"),
        ("POST", "/repos/o/r/check-runs", {}, b'{"name": "x"}', "'head_sha' is a required"),
        ("PATCH", "/repos/o/r/issues/comments/1", {}, b'{"body": 5}', "5 is not of type"),
    ],
)
def test_the_description_rejects_bad_requests(
    openapi: OpenAPIDescription,
    method: str,
    path: str,
    query: dict[str, str],
    body: bytes,
    problem: str,
) -> None:
    problems = openapi.problems(method, path, query, body)
    assert any(problem in p for p in problems), problems


def test_the_description_accepts_a_good_request(openapi: OpenAPIDescription) -> None:
    body = b'{"state": "success", "context": "gitops-bot", "description": "ok"}'
    assert openapi.problems("POST", "/repos/o/r/statuses/abc", {}, body) == []


async def test_the_fake_answers_a_rejected_request_with_422_and_remembers_it(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot(mode="token")
    client = bot.client.session
    url = bot.services.settings.github_api_url + "/repos/o/r/statuses/abc"
    headers = {"Authorization": f"token {bot.fake.personal_token}"}

    async with client.post(url, json={"state": "ok"}, headers=headers) as response:
        assert response.status == 422

    assert len(bot.fake.violations) == 1
    bot.fake.violations.clear()  # expected here; any other test fails on a violation
