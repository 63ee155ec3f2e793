"""The repository file `.gitops-bot.yaml`: parsed, checked against its schema, made typed."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from bot.core.documents import DocumentError, parse_documents
from bot.core.fieldpaths import IGNORE_SCHEMA, IgnoredField, ignore_problems, ignore_rules
from bot.core.findings import Finding, Severity, Stage, field_path
from bot.core.globs import GlobError, compile_glob
from bot.core.ownschemas import OwnSchema

if TYPE_CHECKING:  # the reference validator is imported only to word a refusal
    import jsonschema

CONFIG_PATH = ".gitops-bot.yaml"
DEFAULT_KUBERNETES_VERSION = "1.33"

_NAME = "^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"
_RELEASE = "^[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?$"  # what Helm accepts as a release name
_HELM_ONLY_KEYS = ("release", "values")
_SOURCE_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"enum": ["plain", "kustomize", "helm"]},
        "release": {"type": "string", "description": "helm: release name"},
        "values": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "helm: values files in the repository, later ones win",
        },
    },
}
# Custom resources (README "Custom resources"): where their schemas come from, and what
# an object with no schema anywhere gets. A warning by default: most real repositories
# hold Flux or Argo CD objects whose CRDs live elsewhere, and an error would block them all.
DEFAULT_UNKNOWN_KINDS = Severity.WARNING
_UNKNOWN_KINDS = {"enum": ["error", "warning"], "description": "an object with no schema"}
_REPO_PATHS = {"type": "array", "items": {"type": "string", "minLength": 1}}
_SCHEMA_KEYS = {
    "crds": _REPO_PATHS | {"description": "CRD files or folders, read at the base commit"},
    "schema_folders": _REPO_PATHS | {"description": "{group}/{kind}_{version}.json folders"},
    "unknown_kinds": _UNKNOWN_KINDS,
}
# Relaxing policies (bot/core/relaxations.py): per policy id, error | warning | off. YAML
# reads a bare `off` as false, so false means off too.
_POLICY_SEVERITY = {
    "type": "object",
    "propertyNames": {"pattern": "^[a-z0-9][-a-z0-9]*$"},
    "additionalProperties": {"enum": ["error", "warning", "off", False]},
    "description": "policy id: error, warning or off",
}
_ENVIRONMENT_KEYS = {
    "path": {"type": "string", "minLength": 1, "description": "manifests, relative to the root"},
    "cluster": {"type": "string", "pattern": _NAME},
    "namespace": {"type": "string", "pattern": _NAME},
    "apply_on_merge": {"type": "boolean"},
    "prune": {"type": "boolean"},
    "force_conflicts": {"type": "boolean", "description": "take over fields other managers own"},
    "allow_prune_kinds": {
        "type": "array",
        "uniqueItems": True,
        "items": {"enum": ["Namespace", "CustomResourceDefinition", "PersistentVolumeClaim"]},
        "description": "protected kinds that prune may delete",
    },
    "source": _SOURCE_SCHEMA,
    "self_heal": {"type": "boolean", "description": "re-apply the default branch on drift"},
    "drift": IGNORE_SCHEMA,
    "unknown_kinds": _UNKNOWN_KINDS,
    "policy_severity": _POLICY_SEVERITY,
}
# --- files that are not objects: `exclude:` (plain environments; see bot/core/toolfiles.py)
_ENVIRONMENT_KEYS["exclude"] = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "description": "plain: globs, relative to path, of files not read (** spans folders)",
}
_ENVIRONMENT_KEYS["policy_severity"] = _POLICY_SEVERITY


def _exclude_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for name, env in data["environments"].items():
        where, globs = f"environments.{name}.exclude", env.get("exclude", [])
        if globs and env.get("source", {}).get("type", "plain") != "plain":
            problems.append(f"{where}: only a plain environment reads files one by one; remove it")
        for i, glob in enumerate(globs):
            problem = check_repo_path(glob)
            try:
                compile_glob(glob)
            except GlobError as exc:
                problem = problem or str(exc)
            problems += [f"{where}[{i}]: {problem}"] if problem else []
    return problems


# --- end of exclude:
# Promotion (bot/core/promotions.py): the values keys of a Helm environment that hold images
_ENVIRONMENT_KEYS["image_values"] = {
    "type": "array",
    "uniqueItems": True,
    "items": {"type": "string", "pattern": r"^[^.\s]+(\.[^.\s]+)*$"},
    "description": "helm: dotted keys in the values files whose values /gitops promote carries",
}
# Preview-only units from Argo CD Applications and Flux Kustomizations (bot/core/gitopsapps.py)
_CONTROLLER_KEYS = {
    "argocd": {"type": "boolean", "description": "preview Argo CD Applications"},
    "flux": {"type": "boolean", "description": "preview Flux Kustomizations"},
    "repo_urls": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "description": "URLs that name this repository in those objects; '*' takes any URL",
    },
}


def _controller_problems(data: dict[str, Any]) -> list[str]:
    if data.get("environments") or data.get("argocd") or data.get("flux"):
        return []
    return ["(top level): list environments, or turn on argocd: true or flux: true"]


CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        **_CONTROLLER_KEYS,
        "kubernetes_version": {"type": "string", "pattern": r"^1\.[0-9]{2}$"},
        "policies": {"type": "array", "items": {"type": "string", "minLength": 1}},
        **_SCHEMA_KEYS,
        "policy_severity": _POLICY_SEVERITY,
        "environments": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": _NAME},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["path", "cluster"],
                "properties": _ENVIRONMENT_KEYS,
            },
        },
    },
}
_VALIDATOR = OwnSchema(CONFIG_SCHEMA)


class SourceType(StrEnum):
    PLAIN = "plain"  # YAML and JSON files below the path
    KUSTOMIZE = "kustomize"  # `kustomize build` of the path, which holds a kustomization
    HELM = "helm"  # `helm template` of the chart at the path


@dataclass(frozen=True)
class EnvironmentSource:
    """How an environment's objects are produced from the files at its path."""

    type: SourceType = SourceType.PLAIN
    release: str = ""  # helm: the release name (the environment's name unless set)
    values: tuple[str, ...] = ()  # helm: values files from the repository root, in order
    # Set only for the units of an Argo CD or Flux repository (bot/core/gitopsapps.py):
    inline_values: str = ""  # helm: a values document given in the object, after the files
    parameters: tuple[tuple[str, str, bool], ...] = ()  # helm: (name, value, as a string)
    overrides: str = ""  # kustomize: JSON fields of the kustomization wrapped around the path
    substitute: tuple[tuple[str, str], ...] = ()  # kustomize: Flux's ${VAR} substitutions
    include: tuple[str, ...] = ()  # plain: globs, relative to path, of the only files read
    components: tuple[str, ...] = ()  # kustomize: Flux's spec.components, from the repo root


@dataclass(frozen=True)
class Environment:
    name: str
    path: str
    cluster: str
    namespace: str = "default"
    apply_on_merge: bool = True
    prune: bool = False
    force_conflicts: bool = False  # take over fields other field managers own (and report it)
    allow_prune_kinds: tuple[str, ...] = ()  # Namespace, CustomResourceDefinition, PVC
    source: EnvironmentSource = EnvironmentSource()
    self_heal: bool = False  # drift checks re-apply the default branch (workflows/check_drift)
    drift_ignore: tuple[IgnoredField, ...] = ()  # fields that are never drift
    exclude: tuple[str, ...] = ()  # plain: globs of files below `path` that are not read
    unknown_kinds: Severity = DEFAULT_UNKNOWN_KINDS  # an object with no schema anywhere
    policy_severity: tuple[tuple[str, str], ...] = ()  # (policy id, level); wins over the repo's
    image_values: tuple[str, ...] = ()  # helm: dotted values keys that promotion carries


@dataclass(frozen=True)
class RepoConfig:
    environments: tuple[Environment, ...]
    policy_paths: tuple[str, ...] = ()
    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    crd_paths: tuple[str, ...] = ()  # CRD files and folders: schemas for custom resources
    schema_folders: tuple[str, ...] = ()  # JSON schemas in kubeconform's layout
    policy_severity: tuple[tuple[str, str], ...] = ()  # (policy id, error | warning | off)
    argocd: bool = False  # preview what Argo CD Applications in the repository deploy
    flux: bool = False  # preview what Flux Kustomizations in the repository deploy
    repo_urls: tuple[str, ...] = ()  # more URLs naming this repository; "*" for any

    def environment(self, name: str) -> Environment | None:
        return next((env for env in self.environments if env.name == name), None)


class ConfigError(ValueError):
    """The config cannot be used; `findings` say each mistake and where."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        super().__init__("; ".join(f.describe() for f in findings))
        self.findings = findings


def parse_config(text: bytes | str | None) -> RepoConfig:
    """Parse `.gitops-bot.yaml`; raise ConfigError listing every mistake found."""
    if text is None:
        raise ConfigError(
            (
                _finding(
                    "config.missing",
                    f"no {CONFIG_PATH} at the base commit; add one that lists the environments "
                    "(see the README), merge it, then re-run the plan",
                ),
            )
        )
    data = _single_document(text)
    problems = [_describe(error) for error in _VALIDATOR.iter_errors(data)]
    if not problems:
        problems = _controller_problems(data)
        data.setdefault("environments", {})
    if not problems:
        problems = _path_problems(data) + _source_problems(data) + _drift_problems(data)
        problems += _exclude_problems(data)
        problems += _schema_path_problems(data)
    if problems:
        raise ConfigError(tuple(_finding("config.invalid", p) for p in sorted(problems)))
    return _build(data)


def check_repo_path(path: str) -> str | None:
    """Why a repository path is unsafe or unusable, or None when it is fine."""
    if path.startswith("/") or "\\" in path or "\x00" in path:
        return f"{path!r} must be a relative path inside the repository, with '/' separators"
    if ".." in path.split("/"):
        return f"{path!r} must not contain '..'; name the folder from the repository root"
    return None


def _single_document(text: bytes | str) -> Any:
    try:
        docs = list(parse_documents(text))
    except DocumentError as exc:
        raise ConfigError((_finding(exc.code, exc.message, exc.line),)) from None
    if len(docs) != 1:
        raise ConfigError((_finding("config.invalid", "the file must hold exactly one document"),))
    return docs[0].data


def _describe(error: jsonschema.ValidationError) -> str:
    where = field_path(error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = list(schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in allowed]
        hints = [_suggest(str(k), allowed) for k in unknown]
        return f"{where}: unknown key(s) {', '.join(hints)}; allowed: {', '.join(allowed)}"
    if error.validator == "pattern" and schema.get("pattern") == _NAME:
        return f"{where}: {error.instance!r} must be lowercase letters, digits, '-', '_' or '.'"
    return f"{where}: {error.message}"


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)


def _path_problems(data: dict[str, Any]) -> list[str]:
    paths = [
        (f"environments.{name}.path", env["path"]) for name, env in data["environments"].items()
    ]
    paths += [(f"policies[{i}]", p) for i, p in enumerate(data.get("policies", []))]
    return [f"{where}: {problem}" for where, p in paths if (problem := check_repo_path(p))]


def _source_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for name, env in data["environments"].items():
        where, source = f"environments.{name}.source", env.get("source", {})
        if source.get("type") != SourceType.HELM:
            problems += [
                f"{where}.{key}: only a helm source takes {key!r}; remove it or set type: helm"
                for key in _HELM_ONLY_KEYS
                if key in source
            ]
            continue
        release = source.get("release", name)
        if not re.fullmatch(_RELEASE, release):
            problems.append(
                f"{where}.release: {release!r} is not a valid Helm release name (lowercase "
                "letters, digits and '-', at most 53 characters); set source.release"
            )
        problems += [
            f"{where}.values[{i}]: {problem}"
            for i, path in enumerate(source.get("values", []))
            if (problem := check_repo_path(path))
        ]
    return problems


def _drift_problems(data: dict[str, Any]) -> list[str]:
    problems = []
    for name, env in data["environments"].items():
        where = f"environments.{name}"
        problems += ignore_problems(f"{where}.drift", env.get("drift"))
        if env.get("self_heal") and env.get("apply_on_merge") is False:
            problems.append(
                f"{where}.self_heal: self-heal re-applies the default branch, which only an "
                "environment that applies on merge does; remove apply_on_merge: false or "
                "self_heal: true"
            )
    return problems


def _schema_path_problems(data: dict[str, Any]) -> list[str]:
    return [
        f"{key}[{i}]: {problem}"
        for key in ("crds", "schema_folders")
        for i, path in enumerate(data.get(key, []))
        if (problem := check_repo_path(path))
    ]


def _environment_source(name: str, spec: dict[str, Any]) -> EnvironmentSource:
    source = spec.get("source", {})
    kind = SourceType(source.get("type", SourceType.PLAIN))
    if kind is not SourceType.HELM:
        return EnvironmentSource(kind)
    values = tuple(v.strip("/") for v in source.get("values", []))
    return EnvironmentSource(kind, source.get("release", name), values)


def _build(data: dict[str, Any]) -> RepoConfig:
    unknown_kinds = data.get("unknown_kinds", DEFAULT_UNKNOWN_KINDS)
    environments = tuple(
        Environment(
            name=name,
            path=spec["path"].strip("/") or ".",
            source=_environment_source(name, spec),
            drift_ignore=ignore_rules(spec.get("drift")),
            unknown_kinds=Severity(spec.get("unknown_kinds", unknown_kinds)),
            policy_severity=_policy_levels(spec),
            **{
                key: _hashable(spec[key])
                for key in _ENVIRONMENT_KEYS
                if key not in ("path", "source", "drift", "unknown_kinds", "policy_severity")
                and key in spec
            },
        )
        for name, spec in data["environments"].items()
    )
    return RepoConfig(
        environments=environments,
        policy_paths=tuple(p.strip("/") for p in data.get("policies", [])),
        kubernetes_version=data.get("kubernetes_version", DEFAULT_KUBERNETES_VERSION),
        crd_paths=tuple(p.strip("/") or "." for p in data.get("crds", [])),
        schema_folders=tuple(p.strip("/") or "." for p in data.get("schema_folders", [])),
        policy_severity=_policy_levels(data),
        argocd=data.get("argocd", False),
        flux=data.get("flux", False),
        repo_urls=tuple(data.get("repo_urls", ())),
    )


def _policy_levels(data: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    levels = data.get("policy_severity", {})
    return tuple((policy, "off" if level is False else level) for policy, level in levels.items())


def _hashable(value: Any) -> Any:
    """Lists become tuples: Environment is frozen and may be hashed."""
    return tuple(value) if isinstance(value, list) else value


def _finding(code: str, message: str, line: int | None = None) -> Finding:
    return Finding(Stage.CONFIG, Severity.ERROR, code, message, CONFIG_PATH, line)
