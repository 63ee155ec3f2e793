"""Who may read the status page: a bearer token, or a trusted proxy that signed the user in."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class StatusAccess:
    """The status page's settings: its token, and the proxies allowed to vouch for a user."""

    token: str | None = None
    proxies: tuple[Network, ...] = ()
    user_header: str = "X-Forwarded-User"


@dataclass(frozen=True)
class Visitor:
    """What a request shows about who sends it."""

    authorization: str | None  # the Authorization header as sent
    remote: str | None  # the address of the connection's peer
    proxy_user: str | None  # the proxy's user header, as sent


def parse_proxies(text: str) -> tuple[Network, ...]:
    """Addresses or networks (CIDR), separated by commas or spaces."""
    items = [item for item in text.replace(",", " ").split() if item]
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError as exc:
        raise ValueError(
            f"{exc}; give addresses or networks separated by commas, e.g. 127.0.0.1,10.0.0.0/8"
        ) from None


def refusal(access: StatusAccess, visitor: Visitor) -> str | None:
    """Why the visitor may not read the page, or None when it may."""
    if _from_trusted_proxy(access, visitor):
        if visitor.proxy_user and visitor.proxy_user.strip():
            return None
        return f"the proxy sent no {access.user_header} header: it must sign the user in first"
    if access.token is None:
        return "the status page is only served through the proxy configured in front of it"
    scheme, _, given = (visitor.authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "send the status page token as `Authorization: Bearer TOKEN`"
    if not hmac.compare_digest(given.strip().encode(), access.token.encode()):
        return "the bearer token is not the status page token"
    return None


def _from_trusted_proxy(access: StatusAccess, visitor: Visitor) -> bool:
    if not visitor.remote or not access.proxies:
        return False
    try:
        address = ipaddress.ip_address(visitor.remote)
    except ValueError:
        return False
    return any(address in network for network in access.proxies)
