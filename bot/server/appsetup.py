"""The local page of `gitops-bot github-app create`: post the manifest, take GitHub's code back.

It listens on loopback only, for one App: the page's form posts the manifest to GitHub
with a random `state`; GitHub sends the browser back to /callback with a one-time `code`
and that state, and only a callback carrying it is exchanged for the App's credentials.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from bot.core.appmanifests import AppRequest, app_manifest, creation_url, manifest_page
from bot.forges.github.manifests import AppCredentials, convert_manifest
from bot.forges.ports import ForgeError

LOOPBACK = "127.0.0.1"
Save = Callable[[AppCredentials], str]  # writes the settings; returns what to tell the person


@dataclass(frozen=True)
class Setup:
    """One run of the command: what to create, where the API is, how to keep the result."""

    request: AppRequest
    api_url: str
    save: Save
    port: int = 0  # 0: any free port


class SetupFailed(RuntimeError):
    """The App was created on GitHub but its credentials could not be fetched or saved."""


async def create_app_interactively(setup: Setup, announce: Callable[[str], None]) -> str:
    """Serve the page until GitHub's redirect is handled; returns what `save` said."""
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    state = secrets.token_urlsafe(24)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        app = web.Application()
        app.router.add_get("/", _page(setup.request, state))
        app.router.add_get("/callback", _callback(setup, state, session, done))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, LOOPBACK, setup.port)
            await site.start()
            announce(f"http://{LOOPBACK}:{_bound_port(runner)}/")
            return await done
        finally:
            await runner.cleanup()


def _bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


def _page(request: AppRequest, state: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def page(http: web.Request) -> web.Response:
        port = http.transport.get_extra_info("sockname")[1] if http.transport else 0
        redirect = f"http://{LOOPBACK}:{port}/callback"  # the socket's, not the Host header's
        text = manifest_page(app_manifest(request, redirect), creation_url(request, state))
        return web.Response(text=text, content_type="text/html")

    return page


def _callback(
    setup: Setup, state: str, session: aiohttp.ClientSession, done: asyncio.Future[str]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def callback(http: web.Request) -> web.Response:
        given = http.query.get("state", "")
        if not hmac.compare_digest(given.encode(), state.encode()):
            return _answer(400, "This address was not reached from this run's page: ignored.")
        if done.done():
            return _answer(409, "The App of this run was already saved.")
        try:
            credentials = await convert_manifest(session, setup.api_url, http.query.get("code", ""))
            said = setup.save(credentials)
        except (ForgeError, OSError, ValueError) as exc:
            done.set_exception(SetupFailed(str(exc)))
            return _answer(502, f"The App could not be set up: {exc}")
        done.set_result(said)
        return _answer(200, said)

    return callback


def _answer(status: int, text: str) -> web.Response:
    body = f"<!doctype html>\n<html><body><p>{html.escape(text)}</p></body></html>\n"
    return web.Response(status=status, text=body, content_type="text/html")
