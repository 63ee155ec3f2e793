"""The status page without a browser: who may read it, what its HTML holds, the ledger check.

The page in a real Chromium, with real applies: tests/test_status_chromium.py."""

from __future__ import annotations

from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers.fakeforge import bot_settings
from helpers.githubbot import SECRET, BotFactory
from helpers.storetools import TEST_KEY, TEST_KEYS, execute_sql
from test_store import _entry

from bot.config.secrets import Secret
from bot.config.settings import SettingsError, load_settings
from bot.core.ledgerchain import ChainCursor, verify_chain, verify_rows
from bot.core.statushtml import CONTENT_SECURITY_POLICY, render_status_page
from bot.core.statuspage import (
    ApplyLine,
    Commit,
    DeadJob,
    EnvironmentStatus,
    LedgerCheck,
    Pull,
    StatusPage,
    commit_of,
)
from bot.server.app import create_app
from bot.stages.status import LedgerWatch, StatusLimits
from bot.store.sqlite import SQLiteStore

TOKEN = "a-long-random-status-token"
HOSTILE = '<script>alert("x")</script>"\'&'


class _Collect(HTMLParser):
    """The elements and the text of a document, as a browser's parser splits them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def _page(**changes: object) -> StatusPage:
    environment = EnvironmentStatus(
        HOSTILE,
        HOSTILE,
        Commit("abc1234", "javascript:alert(1)"),
        "succeeded",
        "now",
        Pull(7, None, HOSTILE),
        lock_holder=HOSTILE,
        lock_until="later",
    )
    apply = ApplyLine(
        1,
        HOSTILE,
        HOSTILE,
        Commit("abc1234"),
        HOSTILE,
        HOSTILE,
        "now",
        Pull(7, "https://github.com/o/r/pull/7", HOSTILE),
        HOSTILE,
    )
    page = StatusPage(
        "now",
        (environment,),
        (apply,),
        (DeadJob(3, HOSTILE, 5, HOSTILE),),
        1,
        LedgerCheck(1, True, "now"),
    )
    return replace(page, **changes)  # type: ignore[arg-type]


def test_every_stored_text_is_inert_in_the_page() -> None:
    html = render_status_page(_page())
    parsed = _Collect()
    parsed.feed(html)

    assert "script" not in parsed.tags and "<script>" not in html
    assert parsed.text.count(HOSTILE) >= 8  # each hostile text shown as it was written
    assert 'class="state unknown"' in html  # a stored result never becomes a class name


def test_a_link_is_only_ever_an_http_address() -> None:
    github = {"github": "https://github.com", "gitlab": "https://gitlab.example.com"}
    sha = "0123456789abcdef0123456789abcdef01234567"
    assert commit_of("github:o/r", sha, None, github).url == f"https://github.com/o/r/commit/{sha}"
    assert commit_of("gitlab:g/sub/p", sha, None, github).url == (
        f"https://gitlab.example.com/g/sub/p/-/commit/{sha}"
    )
    assert commit_of("github:o/r", sha, "https://ghe.example.com/o/r/pull/4", github).url == (
        f"https://ghe.example.com/o/r/commit/{sha}"
    )
    assert commit_of("github:o/r", sha, "javascript:alert(1)//pull/1", github).url == (
        f"https://github.com/o/r/commit/{sha}"
    )
    assert commit_of('github:o/"><x', sha, None, github).url is None
    assert commit_of("github:o/r", "not-a-sha", None, github).url is None


def test_the_page_says_when_the_ledger_is_broken_or_still_being_checked() -> None:
    broken = render_status_page(_page(ledger=LedgerCheck(4, False, "now", "record 5: edited")))
    assert 'data-ledger="broken"' in broken and "BROKEN at record 5: edited" in broken
    checking = render_status_page(_page(ledger=LedgerCheck(4, False, "now")))
    assert "4 records verified so far" in checking
    empty = render_status_page(_page(environments=(), applies=(), dead_jobs=(), dead_total=0))
    assert "no environment known yet" in empty and "no dead-lettered jobs" in empty


def test_the_policy_allows_the_page_style_and_nothing_else() -> None:
    assert "script-src" not in CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'; style-src 'sha256-")


async def test_checking_page_by_page_finds_what_one_pass_finds(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        for n in range(7):
            await store.add_audit(_entry(commit=f"c{n}"), sealing=TEST_KEY)
        whole = await store.audit_rows()
        pages = ChainCursor()
        for start in range(0, 7, 2):
            pages = verify_rows(whole[start : start + 2], TEST_KEYS, pages)
        assert (pages.checked, pages.problem) == (7, None)

        edited = [*whole[:4], replace(whole[4], entry_text='{"other": 1}'), *whole[5:]]
        relinked = [*whole[:4], replace(whole[4], previous_hash="f" * 64), *whole[5:]]
        missing = [*whole[:2], *whole[3:]]
        for rows in (edited, relinked, missing):
            progress = verify_rows(rows[3:], TEST_KEYS, verify_rows(rows[:3], TEST_KEYS))
            assert progress.problem is not None
            assert progress.problem == verify_chain(rows, TEST_KEYS)
    finally:
        await store.close()


async def test_the_ledger_check_goes_on_over_views_and_starts_over_later(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    await store.open()
    try:
        for n in range(5):
            await store.add_audit(_entry(commit=f"c{n}"), sealing=TEST_KEY)
        watch = LedgerWatch(recheck_seconds=100, keys=TEST_KEYS)
        small = StatusLimits(ledger_page=2, ledger_pages_per_view=1)
        first = await watch.check(store, small, now=1000)
        assert (first.verified, first.complete) == (2, False)
        await watch.check(store, small, now=1001)
        done = await watch.check(store, small, now=1002)
        assert (done.verified, done.complete, done.problem) == (5, True, None)

        await store.add_audit(_entry(commit="c5"), sealing=TEST_KEY)
        assert (await watch.check(store, small, now=1003)).verified == 6  # only the new one
        restarted = await watch.check(store, small, now=1200)  # a fresh pass from record 1
        assert (restarted.verified, restarted.complete) == (6, True)  # the last full result
    finally:
        await store.close()


async def test_the_page_needs_its_token(make_bot: BotFactory) -> None:
    bot = await make_bot(status_page=True, status_page_token=Secret(TOKEN))

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = await bot.client.get("/", headers=headers)
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="gitops-bot status"'
        assert "Status page" in await refused.text() and TOKEN not in await refused.text()

    shown = await bot.client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert shown.status == 200 and shown.content_type == "text/html"
    assert shown.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "no environment known yet" in await shown.text()


async def test_a_trusted_proxy_vouches_for_its_user_and_no_one_else_does(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot(status_page=True, status_page_trusted_proxies="127.0.0.1/32")
    assert (await bot.client.get("/", headers={"X-Forwarded-User": "alice"})).status == 200
    unsigned = await bot.client.get("/")
    assert unsigned.status == 401 and "X-Forwarded-User" in await unsigned.text()

    elsewhere = await make_bot(status_page=True, status_page_trusted_proxies="10.0.0.0/8")
    spoofed = await elsewhere.client.get("/", headers={"X-Forwarded-User": "alice"})
    assert spoofed.status == 401  # the loopback client is not the proxy


async def test_the_page_is_off_unless_enabled(make_bot: BotFactory) -> None:
    bot = await make_bot(status_page_token=Secret(TOKEN))
    response = await bot.client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 404


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "neither GITOPS_BOT_STATUS_PAGE_TOKEN nor"),
        ({"status_page_trusted_proxies": "10.0.0.0/8, proxy.local"}, "TRUSTED_PROXIES"),
    ],
)
def test_an_unusable_status_page_setting_is_refused_clearly(
    tmp_path: Path, changes: dict[str, str], message: str
) -> None:
    settings = bot_settings(
        tmp_path,
        github_webhook_secret=Secret(SECRET),
        github_token=Secret("ghp_x"),
        status_page=True,
        **changes,
    )
    with pytest.raises(SettingsError, match=message):
        create_app(settings)


def test_the_status_settings_come_from_variables() -> None:
    settings = load_settings(
        {
            "GITOPS_BOT_STATUS_PAGE": "true",
            "GITOPS_BOT_STATUS_PAGE_TOKEN": TOKEN,
            "GITOPS_BOT_STATUS_PAGE_TRUSTED_PROXIES": "127.0.0.1",
        }
    )
    assert settings.status_page and settings.status_page_token == Secret(TOKEN)
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(
    ("edit", "shown"),
    [
        (
            """UPDATE audit_ledger SET entry = '{"result": "succ' WHERE sequence = 2""",
            "BROKEN at record 2: its entry is not a readable record",
        ),
        (
            "UPDATE audit_ledger SET entry = REPLACE(entry, 'octocat', 'mallory') "
            "WHERE sequence = 2",
            "BROKEN at record 2: its content was changed",
        ),
    ],
)
async def test_a_ledger_edited_behind_the_bots_back_shows_as_broken(
    make_bot: BotFactory, tmp_path: Path, edit: str, shown: str
) -> None:
    bot = await make_bot(status_page=True, status_page_token=Secret(TOKEN))
    for n in range(3):
        await bot.services.store.add_audit(_entry(commit=f"c{n}"), sealing=TEST_KEY)
    database = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    execute_sql(database, edit)

    response = await bot.client.get("/", headers={"Authorization": f"Bearer {TOKEN}"})
    page = await response.text()
    assert response.status == 200
    assert 'data-ledger="broken"' in page and shown in page
