"""The status page in a real headless Chromium: the real app on loopback, real applies to
the real API server through the fake GitHub, drift checks, and hostile store contents.

Screenshots go to build/test-output/ (printed by the test)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers.chromium import OUTPUT, browser_page, dump_dom
from helpers.githubbot import SLUG, BotFactory, BotHarness
from helpers.livecluster import LiveEnv
from helpers.storetools import TEST_KEY
from test_drift_bot import _bot, _check, _edit, _merge, _tree

from bot.config.secrets import Secret
from bot.core.audit import AuditEntry
from bot.store.ports import NewJob

TOKEN = "status-page-token-0123456789"
HOSTILE_REPO = 'github:evil/<script>alert("repo")</script>'
HOSTILE_ENV = '"><img src=x onerror=alert(1)>'
HOSTILE_MESSAGE = "</td></tr></table><marquee>injected</marquee>"
HOSTILE_HOLDER = "break-glass:<iframe src=javascript:alert(1)>@host"
HOSTILE_ERROR = "Traceback: <b onmouseover=alert(1)>branch feature/<x>"
HOSTILE_EVENT = {
    "repo": {"forge": "github", "slug": "evil/<h1>x</h1>", "default_branch": "<u>main</u>"},
    "number": 66,
}

ROWS = """JSON.stringify([...document.querySelectorAll('tr.%s')].map(r => ({
  data: {...r.dataset},
  text: r.innerText,
  links: [...r.querySelectorAll('a')].map(a => a.href)})))"""


async def _hostile_contents(bot: BotHarness) -> None:
    """What a hostile repository, pull request or branch could leave in the store."""
    store = bot.services.store
    entry = AuditEntry(
        environment=HOSTILE_ENV,
        cluster="test",
        commit="0123456789abcdef0123456789abcdef01234567",
        result="failed",
        trigger="merge",
        started_at="2026-01-01T10:00:00.000000Z",
        finished_at="2026-01-01T10:00:05.000000Z",
        bot_version="0.1.0",
        pr_number=66,
        pr_url="javascript:alert(1)",
        author="<svg onload=alert(1)>",
        message=HOSTILE_MESSAGE,
        repository=HOSTILE_REPO,
    )
    await store.add_audit(entry, sealing=TEST_KEY)
    assert await store.lock_environment(f"{HOSTILE_REPO}:{HOSTILE_ENV}", HOSTILE_HOLDER, 3600)
    await store.add_job(NewJob("plan", json.dumps(HOSTILE_EVENT), None))
    job = await store.claim_job("worker-x", 60)
    assert job is not None
    await store.fail_job(job, HOSTILE_ERROR, None)


async def _rows(page: Any, kind: str) -> list[dict[str, Any]]:
    return list(json.loads(await page.evaluate(ROWS % kind)))


async def test_the_status_page_shows_every_environment_apply_and_dead_job_in_chromium(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await _bot(
        make_bot, tmp_path, live_env.cluster, status_page=True, status_page_token=Secret(TOKEN)
    )
    first = await _merge(bot, 21, _tree(live_env, "1"))
    merge = await _merge(bot, 22, _tree(live_env, "2"))
    _edit(live_env, "9")
    await _check(bot)  # the hand edit is drift
    await _hostile_contents(bot)
    url = str(bot.client.make_url("/"))

    refused = await dump_dom(url)  # no token: the page is not shown
    assert "401 Unauthorized: send the status page token" in refused
    assert "Environments" not in refused

    async with browser_page() as page:
        assert await page.open(url, {"Authorization": f"Bearer {TOKEN}"}) == 200
        environments = {
            (r["data"]["repository"], r["data"]["environment"]): r
            for r in await _rows(page, "environment")
        }
        assert set(environments) == {(f"github:{SLUG}", "prod"), (HOSTILE_REPO, HOSTILE_ENV)}
        prod = environments[(f"github:{SLUG}", "prod")]
        assert merge[:12] in prod["text"] and first[:12] not in prod["text"]
        assert f"https://github.com/{SLUG}/commit/{merge}" in prod["links"]
        assert f"https://github.com/{SLUG}/pull/22" in prod["links"]
        assert "#22 by Codertocat" in prod["text"] and "succeeded" in prod["text"]
        assert "drifted (1 object)" in prod["text"] and "free" in prod["text"]

        hostile = environments[(HOSTILE_REPO, HOSTILE_ENV)]
        assert HOSTILE_HOLDER in hostile["text"]  # the lock holder, as text
        assert hostile["links"] == []  # a javascript: address never becomes a link

        applies = await _rows(page, "apply")
        assert [a["data"]["result"] for a in applies] == ["failed", "succeeded", "succeeded"]
        assert (
            HOSTILE_MESSAGE in applies[0]["text"] and "<svg onload=alert(1)>" in applies[0]["text"]
        )
        assert merge[:12] in applies[1]["text"] and first[:12] in applies[2]["text"]

        [dead] = await _rows(page, "dead-job")
        assert HOSTILE_ERROR in dead["text"]
        assert "github:evil/<h1>x</h1> #66 (branch <u>main</u>)" in dead["text"]

        ledger = await page.evaluate("document.querySelector('[data-ledger]').innerText")
        assert ledger == "intact: all 3 records verified"
        injected = (
            "document.querySelectorAll('script,img,svg,iframe,marquee,b[onmouseover],td h1,u')"
        )
        assert await page.evaluate(f"{injected}.length") == 0
        aligned = (
            "[...document.querySelectorAll('table')].every(t => [...t.querySelectorAll('tr')]"
            ".every(r => r.children.length === t.querySelectorAll('thead th').length))"
        )
        assert await page.evaluate(aligned)  # every cell under its heading
        desktop = await page.screenshot(OUTPUT / "status-page-desktop.png")

        await page.resize(390, 844, mobile=True)
        await page.open(url, {"Authorization": f"Bearer {TOKEN}"})
        width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width == [390, 390], f"horizontal overflow on a phone: {width}"
        cells = await page.evaluate(
            "[...document.querySelectorAll('td')].filter("
            "td => td.getBoundingClientRect().right > window.innerWidth + 0.5).length"
        )
        assert cells == 0
        phone = await page.screenshot(OUTPUT / "status-page-phone.png")
    print(f"status page screenshots: {desktop} {phone}")
