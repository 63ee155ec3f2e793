"""Server settings: parsed once from GITOPS_BOT_* variables (or a YAML file), typed, frozen."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config.secrets import Secret
from bot.core.controllerclusters import NO_CONTROLLER_CLUSTERS, ControllerClusters
from bot.core.relaxations import RelaxationLevel, RelaxationRules

if TYPE_CHECKING:  # each parser is imported when its setting is set (start-up time)
    from bot.config.clusters import ClusterSettings
    from bot.config.notifications import NotificationTarget
    from bot.config.watchlist import WatchedRepository
    from bot.core.identities import ArgoCluster
    from bot.core.ledgerchain import LedgerKeys

PREFIX = "GITOPS_BOT_"


class SettingsError(ValueError):
    pass


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
    # SIGTERM to exit: jobs may finish until shortly before, then are released
    # (bot/server/serving.py).
    # fly.toml's kill_timeout and the Deployment's grace period are sized from it.
    shutdown_grace_seconds: int = 30
    log_level: str = "info"  # JSON lines on stderr (bot/telemetry/logs.py)
    # Slow or silent HTTP clients: a connection must send its request headers within this
    # (it is also the keep-alive idle limit), and a webhook body within the second.
    http_header_timeout_seconds: int = 75
    http_body_timeout_seconds: int = 30
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
    # Clusters the bot may reach, by the name environments use (bot/config/clusters.py).
    clusters: tuple[ClusterSettings, ...] = ()
    # Drift checks (workflows/check_drift): which repositories, how often; see README "Drift".
    drift_repositories: tuple[WatchedRepository, ...] = ()
    drift_interval_seconds: int = 600
    # Catch-up (workflows/catch_up): apply merges whose webhook never arrived; see README
    # "Catch-up". 0 turns it off. Discovery lists every repository the App or token sees.
    catch_up_interval_seconds: int = 600
    catch_up_discover: bool = True
    # Custom resources (README "Custom resources"): the organisation's folder of JSON
    # schemas ({group}/{kind}_{version}.json), and how long a cluster's CRDs are kept.
    schema_folder: Path | None = None
    cluster_crds_refresh_seconds: int = 300
    # How far repositories may relax the organisation policies; see README "Relaxing policies".
    policy_relaxation: RelaxationLevel = RelaxationLevel.SEVERITY
    policy_locked: tuple[str, ...] = ()  # organisation policy ids never relaxed
    # Parsing, schema and policy checks run in worker processes (bot/stages/checkpool.py).
    check_workers: int = 0  # processes; 0: one per job worker (worker_count)
    check_timeout_seconds: int = 120  # a render's parsing, then its checks; past it a finding
    # The status page at GET / (README "Status page"): off unless enabled; readable with
    # the token as a bearer token, or through a proxy at a trusted address that signed the
    # user in (docs/operations.md).
    status_page: bool = False
    status_page_token: Secret | None = None
    status_page_trusted_proxies: str | None = None  # addresses or networks, comma-separated
    status_page_user_header: str = "X-Forwarded-User"  # set by that proxy
    status_page_recheck_seconds: int = 3600  # the ledger check starts over after this
    # Outgoing notifications (README "Notifications"): targets, and one attempt's time limit.
    notifications: tuple[NotificationTarget, ...] = ()
    notification_timeout_seconds: int = 10
    # The audit ledger (README "Audit ledger"): the key that seals new records and its id,
    # retired keys (ID:SECRET,...) older records were sealed with, and the last record
    # written before the ledger was keyed that the operator vouches for (SEQUENCE:HASH).
    ledger_key: Secret | None = None
    ledger_key_id: str = "k1"
    ledger_retired_keys: Secret | None = None
    ledger_legacy_head: str | None = None
    # Argo CD's clusters, for ApplicationSet cluster generators (README "Repositories managed
    # by Argo CD or Flux"): a list of {name, server, labels, annotations}.
    argocd_clusters: tuple[ArgoCluster, ...] = ()
    # Which cluster of `clusters` an Argo CD or Flux unit deploys to, for its live layer
    # (README "Repositories managed by Argo CD or Flux"): {argocd: {...}, flux: {...}}.
    controller_clusters: ControllerClusters = NO_CONTROLLER_CLUSTERS

    @property
    def policy_rules(self) -> RelaxationRules:
        return RelaxationRules(self.policy_relaxation, frozenset(self.policy_locked))

    @property
    def ledger_keys(self) -> LedgerKeys:
        """The ledger keys, checked when the settings are loaded (see _build)."""
        from bot.config.ledgerkeys import ledger_keys

        return ledger_keys(
            self.ledger_key, self.ledger_key_id, self.ledger_retired_keys, self.ledger_legacy_head
        )

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
    import yaml

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
        if name in _POLICY_SETTINGS:
            converted[name] = _POLICY_SETTINGS[name](value)
            continue
        try:
            if name in _STRUCTURED:
                converted[name] = _structured(name, value)
            elif "Secret" in kind:
                converted[name] = _secret(name, value)
            elif kind == "int":
                converted[name] = _integer(name, value)
            elif kind == "bool":
                converted[name] = _boolean(value)
            elif kind == "Path":
                converted[name] = Path(str(value))
            elif kind == "Path | None":
                converted[name] = Path(str(value)) if value not in (None, "") else None
            else:
                converted[name] = None if value in (None, "") and "None" in kind else str(value)
        except ValueError as exc:
            raise _setting_error(name, value, kind, exc) from None
    settings = Settings(**converted)
    if settings.controller_clusters is not NO_CONTROLLER_CLUSTERS:
        from bot.config.controllerclusters import unknown_clusters

        unmapped = unknown_clusters(
            settings.controller_clusters, (c.name for c in settings.clusters)
        )
        if unmapped:
            raise SettingsError(f"{PREFIX}CONTROLLER_CLUSTERS: {unmapped}")
    if _LEDGER_SETTINGS & set(converted):  # without them there are no keys to check
        from bot.config.ledgerkeys import LedgerKeyError

        try:
            settings.ledger_keys  # noqa: B018 - parsed here so a bad key stops the start
        except LedgerKeyError as exc:
            raise SettingsError(str(exc)) from None
    return settings


_LEDGER_SETTINGS = frozenset(
    {"ledger_key", "ledger_key_id", "ledger_retired_keys", "ledger_legacy_head"}
)
# The settings that hold lists of mappings: each is read by its own module, imported only
# when the setting is set, as most commands set none of them.
_STRUCTURED = frozenset(
    {"argocd_clusters", "clusters", "controller_clusters", "drift_repositories", "notifications"}
)


def _structured(name: str, value: Any) -> Any:
    if name == "argocd_clusters":
        from bot.config.argoclusters import ArgoClustersError, parse_argocd_clusters

        return _worded(name, parse_argocd_clusters, ArgoClustersError, value)
    if name == "clusters":
        from bot.config.clusters import ClusterSettingsError, parse_clusters

        return _worded(name, parse_clusters, ClusterSettingsError, value)
    if name == "controller_clusters":
        from bot.config.controllerclusters import (
            ControllerClustersError,
            parse_controller_clusters,
        )

        return _worded(name, parse_controller_clusters, ControllerClustersError, value)
    if name == "drift_repositories":
        from bot.config.watchlist import WatchlistError, parse_watchlist

        return _worded(name, parse_watchlist, WatchlistError, value)
    from bot.config.notifications import NotificationSettingsError, parse_targets

    return _worded(name, parse_targets, NotificationSettingsError, value)


def _worded(name: str, parse: Callable[[Any], Any], error: type[ValueError], value: Any) -> Any:
    """parse(value), its own errors said under the variable's name."""
    try:
        return parse(value)
    except error as exc:
        raise SettingsError(f"{PREFIX}{name.upper()}: {exc}") from None


def _setting_error(name: str, value: Any, kind: str, exc: ValueError) -> SettingsError:
    if isinstance(exc, SettingsError):
        return exc
    return SettingsError(f"{PREFIX}{name.upper()}: {value!r} is not a valid {kind}")


_TIME_LIMITS = frozenset(
    {"http_header_timeout_seconds", "http_body_timeout_seconds", "notification_timeout_seconds"}
)


def _integer(name: str, value: Any) -> int:
    number = int(value)
    if name in _TIME_LIMITS and number <= 0:  # 0 would turn a time limit off
        raise SettingsError(f"{PREFIX}{name.upper()}: must be a positive number of seconds")
    return number


def _secret(name: str, value: Any) -> Secret | None:
    """A credential; unset when empty, refused when it is only spaces (a key anyone can guess)."""
    if value in (None, ""):
        return None
    if not str(value).strip():
        raise SettingsError(f"{PREFIX}{name.upper()} is blank: set a real secret, or unset it")
    return Secret(str(value))


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in _BOOLEANS:
        raise ValueError(value)
    return _BOOLEANS[text]


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


# Relaxing policies: the level by name, the locked ids as a list or a comma-separated text.
def _relaxation_level(value: Any) -> RelaxationLevel:
    try:
        return RelaxationLevel(str(value).strip().lower())
    except ValueError:
        raise SettingsError(
            f"{PREFIX}POLICY_RELAXATION: {value!r} is not one of "
            + ", ".join(level.value for level in RelaxationLevel)
        ) from None


def _policy_ids(value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else str(value or "").split(",")
    ids = tuple(str(item).strip() for item in items if str(item).strip())
    wrong = [i for i in ids if not re.fullmatch("[a-z0-9][-a-z0-9]*", i)]
    if wrong:
        raise SettingsError(
            f"{PREFIX}POLICY_LOCKED: {', '.join(map(repr, wrong))} is not a policy id; "
            "give the ids separated by commas, e.g. no-privileged-containers,pinned-images"
        )
    return ids


_POLICY_SETTINGS = {"policy_relaxation": _relaxation_level, "policy_locked": _policy_ids}
