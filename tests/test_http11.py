"""The HTTP/1.1 client of certificate and token kubeconfigs (bot/clusters/http11.py).

Against a local asyncio server that answers as each test scripts it (chunked and
compressed bodies, keep-alive, a server that closes connections, one that never
answers), and against the real API server for TLS: the kubeconfig's CA and its
tls-server-name decide, and a failure says which.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import ssl
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers.controlplane import ControlPlane

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import ClusterUnreachable
from bot.clusters.http11 import RequestFailed
from bot.clusters.transports import ApiRequest, Endpoint, HttpTransport
from bot.config.clusters import ClusterSettings

Reader, Writer = asyncio.StreamReader, asyncio.StreamWriter
GET = ApiRequest("GET", "/api/v1", (), {"Accept": "application/json"})
# Answers to one request: what the server writes, then whether it keeps the connection.
Script = Callable[[int, Reader, Writer], Awaitable[bool]]


@dataclass
class Scripted:
    """A server whose answer to its n-th request (over all connections) a script writes."""

    script: Script
    url: str = ""
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = [line for line in head.split(b"\r\n") if b"Content-Length" in line]
                body = await reader.readexactly(int(length[0].split(b":")[1])) if length else b""
                self.requests.append(head + body)
                if not await self.script(len(self.requests), reader, writer):
                    return
        finally:
            writer.close()


@pytest.fixture
async def scripted() -> AsyncIterator[Callable[[Script], Awaitable[Scripted]]]:
    servers: list[asyncio.Server] = []

    async def start(script: Script) -> Scripted:
        state = Scripted(script)
        server = await asyncio.start_server(state.serve, "127.0.0.1", 0)
        servers.append(server)
        state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        return state

    yield start
    for server in servers:
        server.close()


def transport(url: str) -> HttpTransport:
    return HttpTransport(Endpoint(host=url, tls=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)))


async def answer(writer: asyncio.StreamWriter, body: bytes, *headers: str) -> None:
    lines = ["HTTP/1.1 200 OK", *headers]
    if not any(h.startswith(("Content-Length", "Transfer-Encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    await writer.drain()


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)


async def send_all(url: str, count: int = 1) -> list[tuple[int, bytes]]:
    client = transport(url)
    try:
        return [await client.send(GET, 5) for _ in range(count)]
    finally:
        await client.close()


async def test_a_chunked_body_is_joined(scripted: Any) -> None:
    async def chunked(n: int, reader: Reader, writer: Writer) -> bool:
        chunks = b'5;name=value\r\n{"a":\r\n4\r\n 12}\r\n0\r\nX-Trailer: t\r\n\r\n'
        await answer(writer, chunks, "Transfer-Encoding: chunked")
        return True

    server = await scripted(chunked)
    assert await send_all(server.url, 2) == [(200, b'{"a": 12}')] * 2
    assert server.connections == 1  # the connection went on after the last chunk


@pytest.mark.parametrize(
    "encoding, compress",
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw, as some servers send it
    ],
    ids=["gzip", "deflate", "raw deflate"],
)
async def test_a_compressed_body_is_decompressed(
    scripted: Any, encoding: str, compress: Callable[[bytes], bytes]
) -> None:
    data = json.dumps({"items": ["x" * 100] * 100}).encode()

    async def compressed(n: int, reader: Reader, writer: Writer) -> bool:
        await answer(writer, compress(data), f"Content-Encoding: {encoding}")
        return True

    server = await scripted(compressed)
    assert await send_all(server.url) == [(200, data)]
    assert b"Accept-Encoding: gzip, deflate\r\n" in server.requests[0]


async def test_connections_are_kept_alive_unless_the_server_says_close(scripted: Any) -> None:
    async def closing_every_other(n: int, reader: Reader, writer: Writer) -> bool:
        await answer(writer, b"{}", *(["Connection: close"] if n % 2 == 0 else []))
        return n % 2 == 1

    server = await scripted(closing_every_other)
    assert await send_all(server.url, 4) == [(200, b"{}")] * 4
    assert server.connections == 2  # requests 1-2 on one, 3-4 on the other


async def test_connections_opened_ahead_carry_the_first_requests_at_once(scripted: Any) -> None:
    release = asyncio.Event()

    async def together(n: int, reader: Reader, writer: Writer) -> bool:
        await release.wait()  # each answer waits until all requests are in flight
        await answer(writer, b"{}")
        return True

    server = await scripted(together)
    client = transport(server.url)
    try:
        await client.open_ahead(3)
        await asyncio.wait_for(until(lambda: server.connections == 3), 5)  # before any request
        await client.open_ahead(3)  # already open: none more
        sending = asyncio.gather(*(client.send(GET, 5) for _ in range(3)))
        await asyncio.wait_for(until(lambda: len(server.requests) == 3), 5)
        release.set()
        assert await sending == [(200, b"{}")] * 3
    finally:
        await client.close()
    assert server.connections == 3  # the three opened ahead, each used once


async def test_connections_that_cannot_open_ahead_are_left_to_the_requests() -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = transport(f"http://127.0.0.1:{port}")
    try:
        await client.open_ahead(4)  # no error here: the request says what is wrong
        with pytest.raises(RequestFailed, match=r"cannot connect to 127\.0\.0\.1"):
            await client.send(GET, 5)
    finally:
        await client.close()


async def test_a_body_without_length_ends_with_the_connection(scripted: Any) -> None:
    async def until_close(n: int, reader: Reader, writer: Writer) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\n\r\n{"n": %d}' % n)
        await writer.drain()
        return False

    server = await scripted(until_close)
    assert await send_all(server.url, 2) == [(200, b'{"n": 1}'), (200, b'{"n": 2}')]
    assert server.connections == 2


async def test_informational_answers_and_no_content(scripted: Any) -> None:
    async def continued(n: int, reader: Reader, writer: Writer) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        return True

    server = await scripted(continued)
    assert await send_all(server.url, 2) == [(204, b"")] * 2
    assert server.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_not_used(scripted: Any) -> None:
    async def then_close(n: int, reader: Reader, writer: Writer) -> bool:
        await answer(writer, b"{}")  # keep-alive by HTTP/1.1's default, then closed anyway
        return False

    server = await scripted(then_close)
    client = transport(server.url)
    try:
        assert await client.send(GET, 5) == (200, b"{}")
        # Whether or not the client has seen the close by now (it then sends the request
        # on the closed connection, and again on a new one), the request is answered.
        await asyncio.sleep(0.05)
        assert await client.send(GET, 5) == (200, b"{}")
    finally:
        await client.close()
    assert (server.connections, len(server.requests)) == (2, 2)


async def test_a_reused_connection_closed_before_the_answer_is_retried_once(
    scripted: Any,
) -> None:
    """The server takes the second request on the kept connection and closes it unanswered,
    as a server does when its idle timeout and the request cross: the request goes again."""

    async def drop_the_second(n: int, reader: Reader, writer: Writer) -> bool:
        if n == 2:
            return False
        await answer(writer, b'{"n": %d}' % n)
        return True

    server = await scripted(drop_the_second)
    assert await send_all(server.url, 2) == [(200, b'{"n": 1}'), (200, b'{"n": 3}')]
    assert server.connections == 2


async def test_a_new_connection_closed_before_the_answer_is_not_retried(scripted: Any) -> None:
    async def drop(n: int, reader: Reader, writer: Writer) -> bool:
        return False

    server = await scripted(drop)
    with pytest.raises(RequestFailed, match="closed the connection without an answer"):
        await send_all(server.url)
    assert len(server.requests) == 1


async def test_an_answer_cut_short_is_not_retried(scripted: Any) -> None:
    async def cut_the_second(n: int, reader: Reader, writer: Writer) -> bool:
        if n == 2:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
            await writer.drain()
            return False
        await answer(writer, b"{}")
        return True

    server = await scripted(cut_the_second)
    with pytest.raises(RequestFailed, match="closed the connection in its answer"):
        await send_all(server.url, 2)
    assert len(server.requests) == 2


async def test_a_server_that_never_answers_times_out_with_a_message(scripted: Any) -> None:
    async def silent(n: int, reader: Reader, writer: Writer) -> bool:
        await reader.read()  # until the client gives up and closes
        return False

    server = await scripted(silent)
    client = transport(server.url)
    try:
        with pytest.raises(TimeoutError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.2 s"):
            await client.send(GET, 0.2)
    finally:
        await client.close()


async def test_a_control_character_in_a_header_is_refused(scripted: Any) -> None:
    """As aiohttp refuses it: a token file's trailing newline must not split the header."""

    async def ok(n: int, reader: Reader, writer: Writer) -> bool:
        await answer(writer, b"{}")
        return True

    server = await scripted(ok)
    client = HttpTransport(
        Endpoint(server.url, ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), authorization="Bearer t\n")
    )
    with pytest.raises(ValueError, match="control character"):
        await client.send(GET, 5)
    await client.close()
    assert server.requests == []


def tls_kubeconfig(plane: ControlPlane, folder: Path, **cluster: str) -> Path:
    config = json.loads(plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"].update(cluster)
    if "certificate-authority" in cluster:
        del config["clusters"][0]["cluster"]["certificate-authority-data"]
    path = folder / "config"
    path.write_text(json.dumps(config))
    return path


async def first_discovery(path: Path) -> Any:
    async with ClusterDirectory([ClusterSettings("c", kubeconfig=path)]) as clusters:
        return await (await clusters.connect("c")).cluster.resource("v1", "ConfigMap")


async def test_the_kubeconfigs_server_name_is_the_one_checked(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    named = tls_kubeconfig(control_plane, tmp_path, **{"tls-server-name": "localhost"})
    assert await first_discovery(named) is not None

    wrong = tls_kubeconfig(control_plane, tmp_path, **{"tls-server-name": "wrong.example"})
    with pytest.raises(ClusterUnreachable) as failed:
        await first_discovery(wrong)
    assert "cluster 'c' is unreachable at https://127.0.0.1:" in str(failed.value)
    assert "certificate is not trusted" in str(failed.value)
    assert "'wrong.example'" in str(failed.value)


async def test_a_server_certificate_from_another_ca_is_refused(
    control_plane: ControlPlane, tmp_path: Path
) -> None:
    other_ca = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    path = tls_kubeconfig(control_plane, tmp_path, **{"certificate-authority": str(other_ca)})
    with pytest.raises(ClusterUnreachable, match=r"certificate is not trusted .*issuer"):
        await first_discovery(path)


@pytest.mark.parametrize(
    "server, words",
    [
        ("127.0.0.1:1", "127.0.0.1:1/api/v1"),
        ("https://127.0.0.1:99999", "127.0.0.1:99999/api/v1"),
        ("ftp://127.0.0.1:1", "ftp://127.0.0.1:1/api/v1"),
    ],
    ids=["no scheme", "port out of range", "not http"],
)
async def test_a_server_url_the_client_does_not_take_is_said_as_aiohttp_says_it(
    tmp_path: Path, server: str, words: str
) -> None:
    path = tmp_path / "config"
    path.write_text(
        json.dumps(
            {
                "current-context": "x",
                "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
                "clusters": [{"name": "x", "cluster": {"server": server}}],
                "users": [{"name": "x", "user": {"token": "t"}}],
            }
        )
    )
    with pytest.raises(ClusterUnreachable, match=f"cluster 'x' is unreachable at .*{words}"):
        async with ClusterDirectory([ClusterSettings("x", kubeconfig=path)]) as clusters:
            await (await clusters.connect("x")).cluster.resource("v1", "ConfigMap")
