"""`gitops-bot github-app create` run as a subprocess and driven like a browser, on the fake
GitHub."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from helpers.fakeforge import FakeClock, assert_no_violations
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.readmeblocks import README, readme_block

from bot.cli.github_app import write_private
from bot.config.settings import load_settings
from bot.server.app import create_app

PERMISSIONS = {
    "contents": "read",
    "pull_requests": "read",
    "issues": "write",
    "checks": "write",
    "deployments": "write",
    "metadata": "read",
}
EVENTS = ["pull_request", "push", "issue_comment"]


class _Form(HTMLParser):
    """The page's form as a browser would submit it: its action and its hidden manifest."""

    def __init__(self) -> None:
        super().__init__()
        self.action, self.method, self.manifest = "", "", ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action, self.method = values["action"] or "", values["method"] or ""
        if tag == "input" and values.get("name") == "manifest":
            self.manifest = values["value"] or ""


def _command(out: Path, api_url: str) -> list[str]:
    """The README's command, run from this checkout, writing `out`, asking the fake."""
    words = shlex.split(readme_block("gitops-bot github-app create").strip().splitlines()[-1])
    assert words[:3] == ["gitops-bot", "github-app", "create"]
    at = words.index("--out")
    words[at + 1] = str(out)
    return [sys.executable, "-m", "bot", *words[1:], "--api-url", api_url]


async def _start(command: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    line = (await process.stdout.readline()).decode()
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert found, line + (await process.stderr.read()).decode()  # type: ignore[union-attr]
    return process, found.group()


async def _form(session: aiohttp.ClientSession, page_url: str) -> _Form:
    async with session.get(page_url) as response:
        assert response.status == 200
        form = _Form()
        form.feed(await response.text())
    return form


async def test_the_app_is_created_from_its_manifest_and_its_settings_serve(
    openapi: OpenAPIDescription, app_key: tuple[str, str], aiohttp_server: Any, tmp_path: Path
) -> None:
    fake = FakeGitHub(openapi, FakeClock(), manifest_pem=app_key[0])
    server = await aiohttp_server(fake.make_app())
    out = tmp_path / "gitops-bot.github-app.yaml"
    process, page_url = await _start(_command(out, str(server.make_url("")).rstrip("/")))

    async with aiohttp.ClientSession() as browser:
        form = await _form(browser, page_url)
        manifest = json.loads(form.manifest)
        action = urlsplit(form.action)
        assert form.method == "post"
        assert (action.scheme, action.netloc, action.path) == (
            "https",
            "github.com",
            "/organizations/acme/settings/apps/new",
        )
        assert manifest == {
            "name": "gitops-bot",
            "url": "https://gitops-bot.example.com",
            "hook_attributes": {
                "url": "https://gitops-bot.example.com/webhooks/github",
                "active": True,
            },
            "redirect_url": page_url + "callback",
            "public": False,
            "default_permissions": PERMISSIONS,
            "default_events": EVENTS,
        }
        state = parse_qs(action.query)["state"][0]
        forged = await browser.get(manifest["redirect_url"], params={"code": "c", "state": "x"})
        assert forged.status == 400 and not out.exists()
        fake.manifest_codes["7a0c2b"] = manifest  # GitHub created the App from what was posted
        redirect = {"code": "7a0c2b", "state": state}
        async with browser.get(manifest["redirect_url"], params=redirect) as done:
            assert done.status == 200 and "Wrote" in await done.text()

    assert await process.wait() == 0
    assert out.stat().st_mode & 0o777 == 0o600
    settings = load_settings({"GITOPS_BOT_CONFIG": str(out)})
    assert settings.github_app_id == fake.app_id
    assert settings.github_private_key
    assert settings.github_private_key.reveal().strip() == app_key[0].strip()
    assert settings.github_webhook_secret
    assert settings.github_webhook_secret.reveal() == "e340154128314309424b7c8e90325147d99fdafa"
    assert settings.github_api_url == str(server.make_url("")).rstrip("/")
    create_app(settings)  # what `gitops-bot serve` checks before it listens
    assert [c.path for c in fake.calls] == ["/app-manifests/7a0c2b/conversions"]
    assert_no_violations([fake], "GitHub's description")


async def test_a_code_github_refuses_ends_the_command_without_a_file(
    openapi: OpenAPIDescription, aiohttp_server: Any, tmp_path: Path
) -> None:
    fake = FakeGitHub(openapi, FakeClock())
    server = await aiohttp_server(fake.make_app())
    out = tmp_path / "app.yaml"
    process, page_url = await _start(_command(out, str(server.make_url("")).rstrip("/")))

    async with aiohttp.ClientSession() as browser:
        form = await _form(browser, page_url)
        state = parse_qs(urlsplit(form.action).query)["state"][0]
        query = {"code": "expired", "state": state}
        async with browser.get(page_url + "callback", params=query) as answer:
            assert answer.status == 502 and "run the command again" in await answer.text()

    assert await process.wait() == 3
    assert process.stderr is not None
    assert "GitHub refused the code (HTTP 404" in (await process.stderr.read()).decode()
    assert not out.exists()
    assert_no_violations([fake], "GitHub's description")


def test_an_existing_settings_file_is_kept_unless_forced(tmp_path: Path) -> None:
    out = tmp_path / "app.yaml"
    out.write_text("github_app_id: '1'\n")
    command = [sys.executable, "-m", "bot", "github-app", "create"]

    kept = subprocess.run(
        [*command, "--url", "https://bot.example.com", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    wrong = subprocess.run(
        [*command, "--url", "http://bot.example.com", "--out", str(tmp_path / "new.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert kept.returncode == 2 and "--force" in kept.stderr
    assert out.read_text() == "github_app_id: '1'\n"
    assert wrong.returncode == 2 and "give the https:// address" in wrong.stderr


def test_the_manifest_asks_for_exactly_what_the_readme_lists() -> None:
    text = re.sub(r"\s+", " ", README.read_text())
    permissions = re.search(r"- Repository permissions: (.*?) Collaborator", text)
    assert permissions
    listed = dict(re.findall(r"\*([A-Za-z ]+)\* (read-only|read & write)", permissions.group(1)))
    names = {key: key.replace("_", " ").capitalize() for key in PERMISSIONS}
    assert listed == {
        names[key]: "read-only" if access == "read" else "read & write"
        for key, access in PERMISSIONS.items()
    }
    events = re.search(r"- Subscribe to events: (.*?)\. ", text)
    assert events
    assert re.findall(r"\*([A-Za-z ]+)\*", events.group(1)) == [
        event.replace("_", " ").capitalize() for event in EVENTS
    ]


def test_force_replaces_the_file_without_a_moment_of_wider_access(tmp_path: Path) -> None:
    out = tmp_path / "app.yaml"
    out.write_text("old: settings\n")
    out.chmod(0o644)

    write_private(out, "github_app_id: '2'\n", force=True)

    assert out.read_text() == "github_app_id: '2'\n"
    assert out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["app.yaml"]  # no partial file left
    with pytest.raises(OSError, match="exists; nothing was written"):
        write_private(out, "github_app_id: '3'\n", force=False)
