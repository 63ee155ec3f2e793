"""How a request reaches the API server: our own HTTP/1.1 client, or the Kubernetes client.

A kubeconfig that logs in with a client certificate or a token needs nothing of the
Kubernetes client but its HTTP call, and importing the client (its ~850 generated
models, `requests`, `oauthlib`) costs each command that reaches a cluster 0.3-0.4 s;
importing aiohttp, which the client uses underneath, another 0.1 s of CPU (it builds two
TLS contexts from the system's CA store, which a kubeconfig's own CA makes useless).
`HttpTransport` sends the same request the client would (request line, headers, JSON
body, TLS settings) over `http11`'s connections, or with aiohttp where a proxy or a
netrc file is in play; `ClientTransport` is the client, for what only it does
(in-cluster, programs that log in).
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urlsplit

from bot.clusters.http11 import ConnectionPool, RequestFailed, Server
from bot.clusters.targets import request_target

if TYPE_CHECKING:
    import aiohttp
    from kubernetes.aio.client import Configuration

__all__ = ["ApiRequest", "ClientTransport", "Endpoint", "HttpTransport", "RequestFailed"]

USER_AGENT = "gitops-bot"
_CONNECTIONS = 100  # the client's connection pool size (Configuration.connection_pool_maxsize)
# What aiohttp adds to each request; a body-less request of another method says its length.
_ACCEPT_ENCODING = "gzip, deflate"
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a header: aiohttp refuses it
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ApiRequest:
    """One request to the API server, before a transport adds the host and credentials."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: dict[str, Any] | None = None


class Transport(Protocol):
    """Sends one request to the API server; the answer's status and body.

    `timeout` bounds the whole request, in seconds. No answer raises RequestFailed,
    OSError or TimeoutError, with a message that says why.
    """

    host: str

    async def send(self, request: ApiRequest, timeout: float) -> tuple[int, bytes]: ...

    async def open_ahead(self, count: int) -> None:
        """Have up to `count` connections open before requests need them; never raises."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class Endpoint:
    """Where the API server is and how to log in, as the kubeconfig says."""

    host: str  # scheme, host and port, without a trailing "/"
    tls: ssl.SSLContext
    authorization: str | None = None  # the Authorization header, e.g. "Bearer ..."
    server_name: str | None = None  # tls-server-name: the name the certificate must carry
    proxy: str | None = None  # proxy-url


class HttpTransport:
    """Requests over a pool of connections (or an aiohttp session where a proxy or netrc
    counts), opened at the first request, inside its loop."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.host = endpoint.host
        self._endpoint = endpoint
        self._server = _direct_server(endpoint, os.environ)  # None: aiohttp sends
        self._pool: ConnectionPool | None = None
        self._session: aiohttp.ClientSession | None = None
        url = urlsplit(endpoint.host)
        self._prefix = endpoint.host[len(f"{url.scheme}://{url.netloc}") :]
        if self._server is not None:
            self._host_header = _host_header(url.scheme, self._server.host, url.port)

    async def send(self, request: ApiRequest, timeout: float) -> tuple[int, bytes]:
        if self._server is None:
            return await self._send_with_aiohttp(request, timeout)
        body = b"" if request.body is None else json.dumps(request.body).encode()
        pool = self._connections(self._server)
        return await pool.request(self._head(request, len(body)), body, timeout)

    def _connections(self, server: Server) -> ConnectionPool:
        if self._pool is None:
            self._pool = ConnectionPool(server)
        return self._pool

    async def open_ahead(self, count: int) -> None:
        if self._server is not None:  # aiohttp's pool opens its own, on demand
            await self._connections(self._server).open_ahead(count)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._session is not None:
            await self._session.close()

    def _head(self, request: ApiRequest, length: int) -> bytes:
        """The request line and headers, in aiohttp's order and spelling."""
        target = request_target(self._prefix + request.path + query_string(request.query))
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += (f"{name}: {value}" for name, value in self._headers(request.headers).items())
        lines.append(f"Accept-Encoding: {_ACCEPT_ENCODING}")
        if request.body is not None or request.method not in _BODYLESS_METHODS:
            lines.append(f"Content-Length: {length}")
        for line in lines[1:]:
            if _FORBIDDEN.search(line):
                raise ValueError(f"a control character in a request header: {line[:40]!r}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def _headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        sent = {**headers, "User-Agent": USER_AGENT}
        if self._endpoint.authorization:
            sent["authorization"] = self._endpoint.authorization
        return sent

    async def _send_with_aiohttp(self, request: ApiRequest, timeout: float) -> tuple[int, bytes]:
        import aiohttp

        if self._session is None:
            connector = aiohttp.TCPConnector(limit=_CONNECTIONS, ssl=self._endpoint.tls)
            # trust_env: HTTPS_PROXY, NO_PROXY and netrc count, as they do for the client.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=True)
        try:
            async with self._session.request(
                request.method,
                self.host + request.path + query_string(request.query),
                headers=self._headers(request.headers),
                data=None if request.body is None else json.dumps(request.body),
                timeout=aiohttp.ClientTimeout(total=timeout),
                **self._routing(),
            ) as response:
                return response.status, await response.read()
        except aiohttp.ClientError as exc:
            raise RequestFailed(str(exc) or type(exc).__name__) from exc

    def _routing(self) -> dict[str, Any]:
        routing: dict[str, Any] = {}
        if self._endpoint.server_name:
            routing["server_hostname"] = self._endpoint.server_name
        if self._endpoint.proxy:
            routing["proxy"] = self._endpoint.proxy
        return routing


def _direct_server(endpoint: Endpoint, environ: Mapping[str, str]) -> Server | None:
    """Where http11 sends the requests; None where aiohttp must: a proxy may carry them
    or a netrc file log in (its `trust_env` decides those, NO_PROXY included, as it does
    for the Kubernetes client), or the server's URL is one aiohttp alone should judge."""
    try:
        url = urlsplit(endpoint.host)
        port = url.port or _DEFAULT_PORTS.get(url.scheme)
    except ValueError:
        return None  # a bad port: aiohttp's own error says so
    if url.scheme not in _DEFAULT_PORTS or not url.hostname or url.username is not None:
        return None
    if endpoint.proxy or _netrc(environ):
        return None
    proxy_variable = url.scheme + "_proxy"
    if any(name.lower() == proxy_variable and value for name, value in environ.items()):
        return None
    return Server(
        host=url.hostname,
        port=port or 0,
        tls=endpoint.tls if url.scheme == "https" else None,
        server_name=endpoint.server_name,
    )


def _netrc(environ: Mapping[str, str]) -> bool:
    if environ.get("NETRC"):
        return True
    try:
        return (Path.home() / ".netrc").exists()
    except (OSError, RuntimeError):  # no home directory
        return False


def _host_header(scheme: str, host: str, port: int | None) -> str:
    """The Host header as aiohttp writes it: the host (lowercase, IDNA), the port when it
    is not the scheme's default."""
    name = host if host.isascii() else host.encode("idna").decode("ascii")
    if ":" in name:
        name = f"[{name}]"  # an IPv6 address
    return name if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{name}:{port}"


def query_string(query: Sequence[tuple[str, str]]) -> str:
    """ "?name=value&..." with values quoted as the client quotes them ("/" kept), or ""."""
    if not query:
        return ""
    return "?" + "&".join(f"{name}={quote(value)}" for name, value in query)


class ClientTransport:
    """Requests through the Kubernetes client's ApiClient, on a loaded Configuration."""

    def __init__(self, configuration: Configuration) -> None:
        from kubernetes.aio.client import ApiClient

        self.host = configuration.host
        self._api = ApiClient(configuration)
        self._api.user_agent = USER_AGENT

    async def send(self, request: ApiRequest, timeout: float) -> tuple[int, bytes]:
        import aiohttp  # the client's own HTTP library: imported with it

        serialized = await self._api.param_serialize(
            request.method,
            request.path,
            query_params=list(request.query),
            header_params=dict(request.headers),
            body=request.body,
            auth_settings=["BearerToken"],
        )
        try:
            response = await self._api.call_api(
                *serialized, _request_timeout=aiohttp.ClientTimeout(total=timeout)
            )
            data: bytes = await response.read()  # type: ignore[no-untyped-call]
        except aiohttp.ClientError as exc:
            raise RequestFailed(str(exc) or type(exc).__name__) from exc
        return response.status, data

    async def open_ahead(self, count: int) -> None:
        pass  # the client's aiohttp session opens its connections on demand

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]
