"""Hostile HTTP clients against `gitops-bot serve`: a client that stalls in its headers or
body is cut off, one that goes away mid-body costs one log line without a traceback, and
the server keeps answering meanwhile. Raw sockets, so the client can misbehave."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from helpers.botprocess import BotProcess, bot_environment, free_port

BOUND_SECONDS = 60  # a guard against a hang, not a timing claim
LIMIT_SECONDS = "2"  # the header and body limits the server runs with here
HEAD = (
    "POST /webhooks/github HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
    "X-GitHub-Event: push\r\nX-GitHub-Delivery: d-1\r\nX-Hub-Signature-256: sha256={}\r\n"
    "Content-Length: 1000\r\n\r\n"
).format("0" * 64)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotProcess]:
    environment = bot_environment(
        f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        f"http://127.0.0.1:{free_port()}",  # never called: the bot's login is given
        "ghp_" + "t" * 36,
        tmp_path / "data",
        github_bot_login="gitops-bot[bot]",
        http_header_timeout_seconds=LIMIT_SECONDS,
        http_body_timeout_seconds=LIMIT_SECONDS,
        worker_count="1",
    )
    process = BotProcess(environment, tmp_path / "bot.log")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await process.start(session)
        try:
            yield process
        finally:
            await process.stop()


def _connect(bot: BotProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", bot.port))
    sock.settimeout(BOUND_SECONDS)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes; the socket's timeout bounds the wait."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


async def _healthy(bot: BotProcess) -> bool:
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{bot.url}/healthz") as response,
    ):
        return response.status == 200


def _log_lines(bot: BotProcess) -> list[dict[str, object]]:
    lines = bot.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


async def test_a_client_stalling_in_its_headers_is_cut_off(bot: BotProcess) -> None:
    sock = _connect(bot)
    sock.sendall(HEAD[:40].encode())  # half a request line, then nothing

    received = await asyncio.to_thread(_read_until_closed, sock)

    assert received == b""  # closed without an answer: there was no request to answer
    assert await _healthy(bot)


async def test_a_client_stalling_in_its_body_gets_a_408(bot: BotProcess) -> None:
    sock = _connect(bot)
    sock.sendall(HEAD.encode() + b"{" * 500)  # half the body it announced

    received = await asyncio.to_thread(_read_until_closed, sock)

    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"the body did not arrive within 2 s" in received
    assert await _healthy(bot)
    (line,) = [x for x in _log_lines(bot) if "not read" in str(x["message"])]
    assert line["level"] == "warning" and "error" not in line


async def test_clients_leaving_mid_body_cost_a_few_lines_and_no_traceback(
    bot: BotProcess,
) -> None:
    for _ in range(30):
        sock = _connect(bot)
        sock.sendall(HEAD.encode() + b"{" * 500)
        sock.close()  # gone, half the body sent

    async with asyncio.timeout(BOUND_SECONDS):
        while not any("not read" in str(x["message"]) for x in _log_lines(bot)):
            await asyncio.sleep(0.1)
        assert await _healthy(bot)

    lines = _log_lines(bot)
    cut = [x for x in lines if "not read" in str(x["message"])]
    assert 1 <= len(cut) <= 10  # at most ten such lines a minute, whatever the clients do
    assert "went away mid-body" in str(cut[0]["message"])
    assert not [x for x in lines if x["level"] == "error"]
    assert "Traceback" not in bot.log.read_text()
