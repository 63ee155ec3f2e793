"""GitHub API faults: waits as GitHub tells, retries, visible failure, token refresh."""

from __future__ import annotations

import asyncio

from helpers.githubbot import SLUG, BotFactory, BotHarness, base_tree

from bot.store.ports import JobState

SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes."
COMMENTS = rf"^/repos/{SLUG}/issues/\d+/comments$"


async def _open(bot: BotHarness, number: int = 5) -> str:
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "notes.txt": f"change {number}"})
    payload = bot.pull_request("opened", number, base, head)
    bot.fake.compute_test_merge(number)  # no poll for it: the waits below are the limits'
    assert (await bot.deliver("pull_request", payload)).status == 202
    return head


async def test_429_waits_as_long_as_retry_after_says(make_bot: BotFactory) -> None:
    bot = await make_bot()
    bot.fake.fail("POST", COMMENTS, 429, {"retry-after": "7"}, "Too Many Requests")
    await _open(bot)
    await bot.drain()

    assert bot.sleeps == [7.0]
    assert len(bot.fake.comments_on(5)) == 1
    assert len(bot.fake.calls_to("POST", COMMENTS)) == 2


async def test_secondary_limits_wait_a_minute_then_longer(make_bot: BotFactory) -> None:
    bot = await make_bot()
    bot.fake.fail("POST", COMMENTS, 403, message=SECONDARY, times=2)
    await _open(bot)
    await bot.drain()

    assert bot.sleeps == [60.0, 120.0]
    assert len(bot.fake.comments_on(5)) == 1


async def test_an_exhausted_rate_limit_waits_until_the_reset(make_bot: BotFactory) -> None:
    bot = await make_bot()
    reset = str(int(bot.clock()) + 42)
    headers = {
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": reset,
        "x-ratelimit-limit": "5000",
    }
    bot.fake.fail("POST", COMMENTS, 403, headers, "API rate limit exceeded")
    await _open(bot)
    await bot.drain()

    assert len(bot.sleeps) == 1 and 41.0 <= bot.sleeps[0] <= 42.0
    assert len(bot.fake.comments_on(5)) == 1


async def test_server_errors_are_retried_with_backoff(make_bot: BotFactory) -> None:
    bot = await make_bot()
    bot.fake.fail("POST", COMMENTS, 502, message="Bad Gateway", times=2)
    await _open(bot)
    await bot.drain()

    assert bot.sleeps == [2.0, 4.0]
    assert len(bot.fake.comments_on(5)) == 1


async def test_a_job_that_keeps_failing_says_so_and_never_succeeds(make_bot: BotFactory) -> None:
    bot = await make_bot()
    bot.fake.fail("POST", COMMENTS, 500, message="Internal Server Error", times=10**6)
    head = await _open(bot)

    await bot.drain()
    retrying = [r for r in bot.fake.check_runs.values() if r.get("status") == "in_progress"]
    assert retrying[-1]["output"]["title"] == "Could not complete yet, will retry"
    assert (await bot.services.store.job_counts())[JobState.READY] == 1

    for _ in range(2):  # the queue's own backoff, then the last attempt
        bot.clock.advance(3600)
        await bot.drain()

    counts = await bot.services.store.job_counts()
    assert counts[JobState.DEAD] == 1 and counts[JobState.READY] == 0
    runs = [r for r in bot.fake.check_runs.values() if r["head_sha"] == head]
    assert all(r.get("conclusion") != "success" for r in runs)
    final = runs[-1]
    assert final["conclusion"] == "failure"
    assert final["output"]["title"] == "Could not complete"
    assert "/gitops plan" in final["output"]["summary"]
    assert "500" in final["output"]["summary"]


async def test_installation_tokens_are_cached_and_refreshed_before_expiry(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    tokens = r"^/app/installations/7788/access_tokens$"
    await _open(bot, 5)
    await bot.drain()
    bot.clock.advance(30 * 60)
    await _open(bot, 6)
    await bot.drain()
    assert len(bot.fake.calls_to("POST", tokens)) == 1

    bot.clock.advance(26 * 60)  # 4 minutes before the first token expires
    await _open(bot, 7)
    await bot.drain()

    assert len(bot.fake.calls_to("POST", tokens)) == 2
    assert len(bot.fake.comments_on(7)) == 1


async def test_content_creating_requests_go_one_at_a_time(make_bot: BotFactory) -> None:
    bot = await make_bot()
    for number in (31, 32, 33):
        await _open(bot, number)

    await asyncio.gather(*(bot.drain() for _ in range(3)))

    assert all(len(bot.fake.comments_on(n)) == 1 for n in (31, 32, 33))
    assert bot.fake.most_parallel_writes == 1
