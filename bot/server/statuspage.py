"""GET /: the status page for operators, behind its token or a trusted proxy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.config.settings import Settings, SettingsError
from bot.core.statusaccess import StatusAccess, Visitor, parse_proxies, refusal
from bot.core.statushtml import CONTENT_SECURITY_POLICY, render_status_page
from bot.stages.status import LedgerWatch, StatusStore, gather_status

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.Response]]
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def status_access(settings: Settings) -> StatusAccess:
    """The page's access rules from the settings; refused when nobody could read it."""
    try:
        proxies = parse_proxies(settings.status_page_trusted_proxies or "")
    except ValueError as exc:
        raise SettingsError(f"GITOPS_BOT_STATUS_PAGE_TRUSTED_PROXIES: {exc}") from None
    token = settings.status_page_token.reveal() if settings.status_page_token else None
    if token is None and not proxies:
        raise SettingsError(
            "GITOPS_BOT_STATUS_PAGE is on but neither GITOPS_BOT_STATUS_PAGE_TOKEN nor "
            "GITOPS_BOT_STATUS_PAGE_TRUSTED_PROXIES is set: set a token (a long random "
            "text) or the address of the signing-in proxy in front of the bot"
        )
    return StatusAccess(token, proxies, settings.status_page_user_header)


def status_page(
    settings: Settings, store: Callable[[web.Application], StatusStore], clock: Callable[[], float]
) -> Handler:
    """The handler of GET /; `store` finds the app's store once it is open."""
    access = status_access(settings)
    watch = LedgerWatch(settings.status_page_recheck_seconds, settings.ledger_keys)
    web_bases = forge_web_addresses(settings)

    async def show(request: web.Request) -> web.Response:
        visitor = Visitor(
            request.headers.get("Authorization"),
            request.remote,
            request.headers.get(access.user_header),
        )
        reason = refusal(access, visitor)
        if reason is not None:
            log.info("status page refused to %s: %s", request.remote, reason)
            return _unauthorized(reason)
        page = await gather_status(store(request.app), watch, web_bases, clock())
        html = render_status_page(page)
        return web.Response(text=html, content_type="text/html", headers=_HEADERS)

    return show


def _unauthorized(reason: str) -> web.Response:
    text = f'401 Unauthorized: {reason} (see the README, section "Status page")\n'
    headers = {"WWW-Authenticate": 'Bearer realm="gitops-bot status"', "Cache-Control": "no-store"}
    return web.Response(status=401, text=text, headers=headers)


def forge_web_addresses(settings: Settings) -> dict[str, str]:
    """Where each forge shows commits to people: GitHub's web host beside its API."""
    api = settings.github_api_url.rstrip("/")
    github = "https://github.com" if api == "https://api.github.com" else api
    return {"github": github.removesuffix("/api/v3"), "gitlab": settings.gitlab_url.rstrip("/")}
