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

from bot.clusters.configs import ClusterSettings, ClusterSettingsError, parse_clusters
from bot.reconcile.watchlist import WatchedRepository, WatchlistError, parse_watchlist

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
    # The webhook server (gitops-bot serve): who the bot is, how its job workers behave.
    github_bot_login: str | None = None  # default: asked from GitHub (GET /app or /user)
    worker_count: int = 2
    job_max_attempts: int = 5  # then the job is dead-lettered and says how to retry
    job_lease_seconds: int = 900  # a job held longer than this is taken over by a worker
    # SIGTERM to exit: jobs may finish until shortly before, then are released (bot/serving.py).
    # fly.toml's kill_timeout and the Deployment's grace period are sized from it.
    shutdown_grace_seconds: int = 30
    log_level: str = "info"  # JSON lines on stderr (bot/logs.py)
    git_allow_file_remotes: bool = False  # file:// clone URLs: for tests only
    gitlab_url: str = "https://gitlab.com"
    gitlab_token: Secret | None = None
    gitlab_webhook_secret: Secret | None = None
    # Optional: GitLab's webhook signing token (whsec_...), checked on top of the secret token.
    gitlab_webhook_signing_token: Secret | None = None
    gitlab_bot_username: str | None = None  # default: asked from GitLab (GET /user)
    secret_fingerprint_key: Secret | None = None
    # Rendering kustomize overlays and Helm charts (bot/renderers): tools, limits, network.
    kustomize_command: str = "kustomize"  # a name looked up on PATH, or a path
    helm_command: str = "helm"
    render_timeout_seconds: int = 60
    render_max_output_bytes: int = 64 * 1024 * 1024
    render_allow_network: bool = False  # remote bases, charts and chart dependencies
    # Clusters the bot may reach, by the name environments use (bot/clusters/configs.py).
    clusters: tuple[ClusterSettings, ...] = ()
    # Drift checks (bot/reconcile): which repositories, how often; see README "Drift".
    drift_repositories: tuple[WatchedRepository, ...] = ()
    drift_interval_seconds: int = 600
    # Parsing, schema and policy checks run in worker processes (bot/checkpool.py).
    check_workers: int = 0  # processes; 0: one per job worker (worker_count)
    check_timeout_seconds: int = 120  # per render's parse and checks; then a blocking finding

    def cluster(self, name: str) -> ClusterSettings | None:
        """The connection settings for the cluster an environment names, if configured."""
        return next((c for c in self.clusters if c.name == name), None)

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
            if name == "clusters":
                converted[name] = parse_clusters(value)
            elif name == "drift_repositories":
                converted[name] = parse_watchlist(value)
            elif "Secret" in kind:
                converted[name] = Secret(str(value)) if value not in (None, "") else None
            elif kind == "int":
                converted[name] = int(value)
            elif kind == "bool":
                converted[name] = _boolean(value)
            elif kind == "Path":
                converted[name] = Path(str(value))
            else:
                converted[name] = None if value in (None, "") and "None" in kind else str(value)
        except ClusterSettingsError as exc:
            raise SettingsError(f"{PREFIX}CLUSTERS: {exc}") from None
        except WatchlistError as exc:
            raise SettingsError(f"{PREFIX}DRIFT_REPOSITORIES: {exc}") from None
        except ValueError:
            raise SettingsError(
                f"{PREFIX}{name.upper()}: {value!r} is not a valid {kind}"
            ) from None
    return Settings(**converted)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _BOOLEANS:
        raise ValueError(value)
    return _BOOLEANS[text]


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
