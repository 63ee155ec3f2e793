"""fly.toml agrees with the app: port, health route, shutdown budget, settings it names."""

from __future__ import annotations

import re
import signal
import tomllib
from dataclasses import fields
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from bot.config.settings import PREFIX, Settings, load_settings
from bot.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
FLY_TOML = ROOT / "fly.toml"
SHARED_CPU_MAX_KILL_TIMEOUT = 300  # Fly's limit on shared-CPU Machines


@pytest.fixture(scope="module")
def fly() -> dict[str, Any]:
    return tomllib.loads(FLY_TOML.read_text())


@pytest.fixture(scope="module")
def settings(fly: dict[str, Any]) -> Settings:
    """The settings a Machine starts with: [env], plus secrets set with `fly secrets`."""
    secrets = {
        f"{PREFIX}GITHUB_WEBHOOK_SECRET": "x" * 32,
        f"{PREFIX}GITHUB_TOKEN": "t" * 40,
    }
    return load_settings({**fly["env"], **secrets})


def routes(settings: Settings) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in create_app(settings).router.routes()
        if route.resource is not None
    }


def seconds(value: int | str) -> float:
    """A Fly duration: a number of seconds, or text such as "30s" or "1m"."""
    if isinstance(value, int):
        return float(value)
    match = re.fullmatch(r"(\d+)(ms|s|m)", value)
    assert match, f"not a duration: {value!r}"
    return int(match[1]) * {"ms": 0.001, "s": 1, "m": 60}[match[2]]


def test_the_service_reaches_the_port_the_server_listens_on(
    fly: dict[str, Any], settings: Settings
) -> None:
    assert fly["http_service"]["internal_port"] == settings.port
    assert settings.host == "0.0.0.0"  # noqa: S104 (the proxy connects from outside)
    assert fly["metrics"]["port"] == settings.port
    assert ("GET", fly["metrics"]["path"]) in routes(settings)


def test_health_checks_ask_a_route_the_app_serves(fly: dict[str, Any], settings: Settings) -> None:
    checks = fly["http_service"]["checks"]
    assert [c["path"] for c in checks] == ["/healthz"]
    for check in checks:
        assert (check["method"].upper(), check["path"]) in routes(settings)
        assert seconds(check["timeout"]) < seconds(check["interval"])


def test_fly_waits_exactly_as_long_as_the_server_takes_to_shut_down(
    fly: dict[str, Any], settings: Settings
) -> None:
    # The server handles both SIGTERM and SIGINT (tests/test_shutdown.py sends SIGTERM).
    assert fly["kill_signal"] in (signal.SIGTERM.name, signal.SIGINT.name)
    assert seconds(fly["kill_timeout"]) == settings.shutdown_grace_seconds
    assert settings.shutdown_grace_seconds <= SHARED_CPU_MAX_KILL_TIMEOUT


def test_the_store_lives_on_the_volume(fly: dict[str, Any], settings: Settings) -> None:
    (mount,) = fly["mounts"]
    volume = PurePosixPath(mount["destination"])
    database = PurePosixPath(settings.database_url.removeprefix("sqlite:///"))
    assert settings.database_url.startswith("sqlite:////"), "an absolute path"
    assert volume in database.parents
    assert volume in PurePosixPath(settings.data_dir).parents
    assert fly["http_service"]["auto_stop_machines"] in ("off", False), (
        "jobs run after the webhook is answered: an idle-looking Machine must keep running"
    )
    assert fly["http_service"]["min_machines_running"] >= 1


def test_every_variable_it_names_is_a_setting_and_no_secret_has_a_value(
    fly: dict[str, Any],
) -> None:
    names = {PREFIX + f.name.upper() for f in fields(Settings)}
    mentioned = set(re.findall(rf"{PREFIX}[A-Z_]+", FLY_TOML.read_text()))
    assert mentioned and mentioned <= names, mentioned - names
    secret_names = {PREFIX + f.name.upper() for f in fields(Settings) if "Secret" in str(f.type)}
    assert not secret_names & set(fly["env"]), "secrets are set with `fly secrets set`"
    for name in fly["env"]:
        assert name in names


def test_the_build_uses_the_dockerfile(fly: dict[str, Any]) -> None:
    assert (ROOT / fly["build"]["dockerfile"]).is_file()


def test_the_operations_guide_sets_the_secrets_with_fly_secrets() -> None:
    guide = (ROOT / "docs/operations.md").read_text()
    assert "fly secrets set" in guide
    for name in ("GITHUB_WEBHOOK_SECRET", "GITHUB_PRIVATE_KEY", "SECRET_FINGERPRINT_KEY"):
        assert PREFIX + name in guide
