"""`gitops-bot serve` as a real process: it starts, answers probes, refuses bad settings."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

SECRET_VALUE = "serve-test-secret-value"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    return {
        **keep,
        "GITOPS_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "GITOPS_BOT_DATA_DIR": str(tmp_path / "data"),
        "GITOPS_BOT_GITHUB_TOKEN": "ghp_" + "x" * 36,
        **extra,
    }


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except (urllib.error.URLError, ConnectionError):
        return None


def test_serve_answers_probes_and_stops_cleanly(tmp_path: Path) -> None:
    port = _free_port()
    env = _environment(
        tmp_path, GITOPS_BOT_PORT=str(port), GITOPS_BOT_GITHUB_WEBHOOK_SECRET=SECRET_VALUE
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60  # a guard against hanging, not a timing claim
        while _get(f"http://127.0.0.1:{port}/healthz") != 200:
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        assert _get(f"http://127.0.0.1:{port}/readyz") == 200
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output
    assert SECRET_VALUE not in output


def test_serve_without_a_webhook_secret_says_what_to_set(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 3
    assert "GITOPS_BOT_GITHUB_WEBHOOK_SECRET is not set" in done.stderr
