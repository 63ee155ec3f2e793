"""Requests without the Kubernetes client are the requests the client sends.

bot/clusters/transports.py sends a certificate or token kubeconfig's requests over its
own HTTP/1.1 client (bot/clusters/http11.py), or with aiohttp where a proxy carries them
(bot/clusters/endpoints.py reads the kubeconfig). Held here to the client's own
requests, byte for byte, on a recording server; to the real API server with files
named relative to the kubeconfig; to a proxy, from the kubeconfig or the environment;
and to the client wherever a kubeconfig needs it.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from helpers.controlplane import ControlPlane

from bot.clusters.directory import ClusterDirectory
from bot.clusters.http11 import ConnectionPool
from bot.clusters.kubeapi import KubernetesCluster
from bot.clusters.kubeconfigs import client_configuration, cluster_transport
from bot.clusters.transports import ClientTransport, HttpTransport, Transport
from bot.config.clusters import ClusterSettings
from bot.core.manifests import ObjectKey

Recorded = tuple[str, str, list[tuple[str, str]], bytes]  # method, target, headers, body
DISCOVERY = {"resources": [{"kind": "ConfigMap", "name": "configmaps", "namespaced": True}]}


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[Recorded]]]:
    """An HTTP server that answers like an API server with one kind, and keeps each request."""
    seen: list[Recorded] = []

    async def answer(request: web.Request) -> web.Response:
        body = await request.read()
        headers = [(k.decode(), v.decode()) for k, v in request.raw_headers]  # in their order
        seen.append((request.method, request.raw_path, headers, body))
        if request.path == "/api/v1":
            return web.json_response(DISCOVERY)
        if request.method == "GET" and request.path.endswith("/configmaps"):
            return web.json_response({"items": [{"metadata": {"name": "a"}}]})
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "a"}})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


def kubeconfig(folder: Path, server: str, user: dict[str, Any]) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "config"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": server + "/"}}],
        "users": [{"name": "u", "user": user}],
    }
    path.write_text(json.dumps(config))
    return path


async def every_call(transport: Transport, settings: ClusterSettings) -> None:
    cluster = KubernetesCluster(settings, transport)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}}
    try:
        await cluster.read("v1", ObjectKey("", "ConfigMap", "n", "a b/c"))
        await cluster.list_labelled("v1", "ConfigMap", "n", "app.kubernetes.io/x=y,z in (1,2)")
        await cluster.apply({**body, "data": {"ü": "1 2"}}, dry_run=True, force=True)
        await cluster.delete("v1", ObjectKey("", "ConfigMap", "n", "a"))
    finally:
        await cluster.close()


@pytest.fixture
def pooled(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The request heads http11's pool sends (aiohttp's requests do not pass there)."""
    heads: list[bytes] = []
    request = ConnectionPool.request

    async def counted(self: ConnectionPool, head: bytes, body: bytes, timeout: float) -> Any:
        heads.append(head)
        return await request(self, head, body, timeout)

    monkeypatch.setattr(ConnectionPool, "request", counted)
    return heads


@pytest.mark.parametrize("route", ["http11", "aiohttp"])
@pytest.mark.parametrize(
    "user",
    [{"token": "secret-token"}, {"tokenFile": "token"}, {}, {"as": "someone", "token": "t"}],
    ids=["token", "token file", "anonymous", "impersonation keys"],
)
async def test_the_same_requests_as_the_kubernetes_client(
    tmp_path: Path,
    recorder: tuple[str, list[Recorded]],
    user: dict[str, Any],
    route: str,
    pooled: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both routes of HttpTransport: http11, and aiohttp (taken here because a netrc file
    exists; it names another host, so it adds nothing to these requests)."""
    server, seen = recorder
    path = kubeconfig(tmp_path / "kube", server, user)
    (tmp_path / "kube" / "token").write_text("from-a-file")
    settings = ClusterSettings("c", kubeconfig=path)
    home = tmp_path / "home"
    home.mkdir()
    if route == "aiohttp":
        (home / ".netrc").write_text("machine elsewhere.invalid login a password b\n")
    monkeypatch.setenv("HOME", str(home))
    for name in ("http_proxy", "HTTP_PROXY", "NETRC"):
        monkeypatch.delenv(name, raising=False)

    ours = await cluster_transport(settings)
    assert isinstance(ours, HttpTransport)
    await every_call(ours, settings)
    assert len(pooled) == (5 if route == "http11" else 0)
    without_client, seen[:] = list(seen), []
    await every_call(ClientTransport(await client_configuration(settings)), settings)

    assert len(without_client) == 5  # discovery, then one request per call
    assert without_client == seen


async def test_files_named_relative_to_the_kubeconfig_reach_the_api_server(
    tmp_path: Path, control_plane: ControlPlane
) -> None:
    admin = json.loads(control_plane.admin_kubeconfig.read_text())
    cluster, user = admin["clusters"][0]["cluster"], admin["users"][0]["user"]
    folder = tmp_path / "kube"
    folder.mkdir()
    for key in ("certificate-authority", "client-certificate", "client-key"):
        entry = cluster if key == "certificate-authority" else user
        (folder / f"{key}.pem").write_bytes(base64.standard_b64decode(entry.pop(f"{key}-data")))
        entry[key] = f"{key}.pem"
    path = folder / "config"
    path.write_text(json.dumps(admin))

    async with ClusterDirectory([ClusterSettings("test", kubeconfig=path)]) as clusters:
        connection = await clusters.connect("test")
        assert await connection.cluster.resource("v1", "ConfigMap") is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["users"][0]["user"].update(exec={"command": "true", "apiVersion": "v1"}),
        lambda c: c["clusters"][0]["cluster"].update({"certificate-authority": "missing.pem"}),
        lambda c: c["clusters"].append(dict(c["clusters"][0])),
        lambda c: c["clusters"][0]["cluster"].pop("server"),
    ],
    ids=["exec plugin allowed", "missing file", "cluster named twice", "no server"],
)
async def test_what_only_the_client_reads_is_left_to_the_client(
    tmp_path: Path, change: Any
) -> None:
    path = kubeconfig(tmp_path, "https://127.0.0.1:1", {"token": "t"})
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))
    settings = ClusterSettings("c", kubeconfig=path, allow_exec=True)
    try:
        transport = await cluster_transport(settings)
    except Exception as exc:  # the client's own error, as before
        with pytest.raises(type(exc)):
            await client_configuration(settings)
        return
    assert isinstance(transport, ClientTransport)
    await transport.close()


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A forward proxy that answers every request itself, as the API server would, and
    keeps each request line: what reaches it went through the proxy."""
    lines: list[bytes] = []

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines.append(head.split(b"\r\n", 1)[0])
        body = json.dumps(DISCOVERY).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", lines
    server.close()


async def discovered_through(path: Path) -> bool:
    async with ClusterDirectory([ClusterSettings("c", kubeconfig=path)]) as clusters:
        cluster = (await clusters.connect("c")).cluster
        return await cluster.resource("v1", "ConfigMap") is not None


async def test_a_kubeconfigs_proxy_url_carries_the_requests(
    tmp_path: Path, proxy: tuple[str, list[bytes]]
) -> None:
    """Proxies are left to aiohttp, as the Kubernetes client leaves them."""
    url, lines = proxy
    path = kubeconfig(tmp_path, "http://cluster.invalid:6443", {"token": "t"})
    config = json.loads(path.read_text())
    config["clusters"][0]["cluster"]["proxy-url"] = url
    path.write_text(json.dumps(config))

    assert await discovered_through(path)
    assert lines == [b"GET http://cluster.invalid:6443/api/v1 HTTP/1.1"]


async def test_a_proxy_from_the_environment_carries_the_requests(
    tmp_path: Path, proxy: tuple[str, list[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, lines = proxy
    monkeypatch.setenv("http_proxy", url)
    path = kubeconfig(tmp_path, "http://cluster.invalid:6443", {"token": "t"})

    assert await discovered_through(path)
    assert lines == [b"GET http://cluster.invalid:6443/api/v1 HTTP/1.1"]
