"""How a request reaches the API server: aiohttp alone, or the Kubernetes client's ApiClient.

A kubeconfig that logs in with a client certificate or a token needs nothing of the
Kubernetes client but its HTTP call, and importing the client (its ~850 generated
models, `requests`, `oauthlib`) costs each command that reaches a cluster 0.3-0.4 s.
`HttpTransport` sends the same request the client would (URL, query encoding, headers,
JSON body, TLS settings) with aiohttp, which the client itself uses underneath;
`ClientTransport` is the client, for what only it does (in-cluster, programs that log in).
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import aiohttp

if TYPE_CHECKING:
    from kubernetes.aio.client import Configuration

USER_AGENT = "gitops-bot"
_CONNECTIONS = 100  # the client's connection pool size (Configuration.connection_pool_maxsize)


@dataclass(frozen=True)
class ApiRequest:
    """One request to the API server, before a transport adds the host and credentials."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: dict[str, Any] | None = None


class Transport(Protocol):
    """Sends one request to the API server; the answer's status and body."""

    host: str

    async def send(
        self, request: ApiRequest, timeout: aiohttp.ClientTimeout
    ) -> tuple[int, bytes]: ...

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
    """Requests over one aiohttp session, opened at the first request (inside its loop)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.host = endpoint.host
        self._endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None

    async def send(self, request: ApiRequest, timeout: aiohttp.ClientTimeout) -> tuple[int, bytes]:
        async with self._opened().request(
            request.method,
            self.host + request.path + query_string(request.query),
            headers=self._headers(request.headers),
            data=None if request.body is None else json.dumps(request.body),
            timeout=timeout,
            **self._routing(),
        ) as response:
            return response.status, await response.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _opened(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=_CONNECTIONS, ssl=self._endpoint.tls)
            # trust_env: HTTPS_PROXY and NO_PROXY count, as they do for the client.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=True)
        return self._session

    def _headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        sent = {**headers, "User-Agent": USER_AGENT}
        if self._endpoint.authorization:
            sent["authorization"] = self._endpoint.authorization
        return sent

    def _routing(self) -> dict[str, Any]:
        routing: dict[str, Any] = {}
        if self._endpoint.server_name:
            routing["server_hostname"] = self._endpoint.server_name
        if self._endpoint.proxy:
            routing["proxy"] = self._endpoint.proxy
        return routing


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

    async def send(self, request: ApiRequest, timeout: aiohttp.ClientTimeout) -> tuple[int, bytes]:
        serialized = await self._api.param_serialize(
            request.method,
            request.path,
            query_params=list(request.query),
            header_params=dict(request.headers),
            body=request.body,
            auth_settings=["BearerToken"],
        )
        response = await self._api.call_api(*serialized, _request_timeout=timeout)
        data: bytes = await response.read()  # type: ignore[no-untyped-call]
        return response.status, data

    async def close(self) -> None:
        await self._api.close()  # type: ignore[no-untyped-call]
