"""Debian's Chromium, headless, driven over the DevTools protocol (an aiohttp websocket)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from conftest import unavailable

BINARY = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
OUTPUT = Path(__file__).resolve().parents[2] / "build" / "test-output"


def chromium_binary() -> str:
    """The browser the tests use; `make test` installs it from Debian's package."""
    if not Path(BINARY).exists():
        unavailable(f"no {BINARY}: install Debian's package (apt-get install chromium)")
    return BINARY


async def dump_dom(url: str) -> str:
    """The DOM Chromium builds from `url` (no request header can be added this way). Run
    without blocking the event loop, which may be the one serving `url`."""
    with tempfile.TemporaryDirectory() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_binary(),
            *FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


class Page:
    """One tab, spoken to with DevTools commands."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self._socket.send_json({"id": number, "method": method, "params": params})
        while True:
            message = json.loads((await self._socket.receive(timeout=120)).data)
            if message.get("id") == number:
                assert "error" not in message, f"{method}: {message['error']}"
                return dict(message.get("result", {}))
            self._events.append(message)

    async def wait_for(self, event: str) -> None:
        while not any(e.get("method") == event for e in self._events):
            message = json.loads((await self._socket.receive(timeout=120)).data)
            self._events.append(message)
        self._events.clear()

    async def open(self, url: str, headers: dict[str, str]) -> int:
        """Load `url` with extra request headers; the HTTP status of the document."""
        await self.send("Network.enable")
        await self.send("Page.enable")
        await self.send("Network.setExtraHTTPHeaders", headers=headers)
        self._events.clear()
        await self.send("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired")
        return int(
            await self.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
        )

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    async def resize(self, width: int, height: int, mobile: bool) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=mobile,
        )

    async def screenshot(self, path: Path) -> Path:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


@asynccontextmanager
async def browser_page(window: str = "1280,900") -> AsyncIterator[Page]:
    """A fresh headless Chromium (its own profile) and one tab in it."""
    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    process = subprocess.Popen(
        [
            chromium_binary(),
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={window}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port = await _debugging_port(profile, process)
        async with aiohttp.ClientSession() as session:
            targets = await (await session.get(f"http://127.0.0.1:{port}/json/list")).json()
            page = next(t for t in targets if t["type"] == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


async def _debugging_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose, from the file it writes in its profile once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 60  # only stops a hang; never a claim about speed
    while not marker.exists() or not marker.read_text().strip():
        assert process.poll() is None, f"chromium exited with {process.returncode}"
        assert time.monotonic() < deadline, "chromium never opened its DevTools port"
        await asyncio.sleep(0.1)
    return int(marker.read_text().splitlines()[0])
