"""Clusters opened ahead of their first use: the same answers, fewer waits, no new failures."""

from __future__ import annotations

import json
import socket
from collections import Counter
from pathlib import Path

import pytest
from helpers.livecluster import LiveEnv

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import ClusterConfigError, ClusterUnreachable
from bot.clusters.ports import Resource
from bot.clusters.transports import ApiRequest, HttpTransport
from bot.config.clusters import ClusterSettings


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every request the HTTP transport sends, counted by method and path."""
    counted: Counter[str] = Counter()
    send = HttpTransport.send

    async def counting(self: HttpTransport, request: ApiRequest, timeout: object) -> object:
        counted[f"{request.method} {request.path}"] += 1
        return await send(self, request, timeout)  # type: ignore[arg-type]

    monkeypatch.setattr(HttpTransport, "send", counting)
    return counted


async def test_prepare_asks_core_discovery_once_and_later_use_reuses_it(
    live_env: LiveEnv, sent: Counter[str]
) -> None:
    async with ClusterDirectory([live_env.cluster]) as clusters:
        await clusters.prepare()
        assert sent == Counter({"GET /api/v1": 1})

        cluster = (await clusters.connect("test")).cluster
        configmaps = await cluster.resource("v1", "ConfigMap")

    assert configmaps == Resource("v1", "ConfigMap", "configmaps", namespaced=True)
    assert sent == Counter({"GET /api/v1": 1})


async def test_prepare_keeps_quiet_and_first_use_says_what_is_wrong(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = json.loads(live_env.plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    closed = tmp_path / "closed.kubeconfig"
    closed.write_text(json.dumps(config))
    missing = ClusterSettings("missing", kubeconfig=tmp_path / "nowhere.kubeconfig")
    unreachable = ClusterSettings("closed", kubeconfig=closed, timeout_seconds=5)

    async with ClusterDirectory([missing, unreachable]) as clusters:
        await clusters.prepare()

        with pytest.raises(ClusterConfigError, match="cannot read the kubeconfig"):
            await clusters.connect("missing")
        cluster = (await clusters.connect("closed")).cluster
        with pytest.raises(ClusterUnreachable, match="unreachable"):
            await cluster.resource("v1", "ConfigMap")


async def test_prepare_runs_no_login_program(live_env: LiveEnv, tmp_path: Path) -> None:
    """A login program runs only when a command reaches its cluster, never ahead of it."""
    marker = tmp_path / "program-ran"
    path = live_env.touching_kubeconfig(tmp_path, marker)

    async with ClusterDirectory([ClusterSettings("x", kubeconfig=path, allow_exec=True)]) as c:
        await c.prepare()

    assert not marker.exists()
