"""Server settings: parsed once from GITOPS_BOT_* variables (or a YAML file), typed, frozen."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

PREFIX = "GITOPS_BOT_"


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class Secret:
    """A credential: usable through `reveal()`, never printed by repr, str or logs."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///gitops-bot.sqlite3"
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("gitops-bot-data")  # git mirrors, scratch space
    github_api_url: str = "https://api.github.com"
    github_webhook_secret: Secret | None = None
    github_token: Secret | None = None
    github_app_id: str | None = None
    github_private_key: Secret | None = None
    gitlab_url: str = "https://gitlab.com"
    gitlab_token: Secret | None = None
    gitlab_webhook_secret: Secret | None = None
    secret_fingerprint_key: Secret | None = None

    @property
    def fingerprint_key(self) -> bytes:
        """The key for Secret fingerprints: stable when configured, per process otherwise."""
        if self.secret_fingerprint_key:
            return self.secret_fingerprint_key.reveal().encode()
        for source in (self.github_webhook_secret, self.gitlab_webhook_secret):
            if source:  # derived, so fingerprints stay stable across restarts
                return hmac.new(
                    source.reveal().encode(), b"secret-fingerprints", hashlib.sha256
                ).digest()
        return _PROCESS_KEY


_PROCESS_KEY = secrets.token_bytes(32)


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Settings from a YAML file named by GITOPS_BOT_CONFIG, overridden by variables."""
    values: dict[str, Any] = {}
    config_file = environ.get(PREFIX + "CONFIG")
    if config_file:
        values.update(_read_file(Path(config_file)))
    for name in _field_names():
        if PREFIX + name.upper() in environ:
            values[name] = environ[PREFIX + name.upper()]
    return _build(values)


def _field_names() -> list[str]:
    return [f.name for f in fields(Settings)]


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"settings file {path} must hold a mapping of setting: value")
    unknown = sorted(set(data) - set(_field_names()))
    if unknown:
        raise SettingsError(f"unknown settings in {path}: {', '.join(unknown)}")
    return data


def _build(values: dict[str, Any]) -> Settings:
    kinds = {f.name: f.type for f in fields(Settings)}
    converted: dict[str, Any] = {}
    for name, value in values.items():
        kind = str(kinds[name])
        try:
            if "Secret" in kind:
                converted[name] = Secret(str(value)) if value not in (None, "") else None
            elif kind == "int":
                converted[name] = int(value)
            elif kind == "Path":
                converted[name] = Path(str(value))
            else:
                converted[name] = None if value in (None, "") and "None" in kind else str(value)
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name.upper()}: {value!r} is not a valid {kind}"
            ) from None
    return Settings(**converted)
