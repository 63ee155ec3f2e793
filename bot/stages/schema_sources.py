"""Where a plan's custom resource schemas come from, besides the environment's own CRDs.

In order of truth: the CRDs of the environment (decided in bot.core.checks), the CRDs
the repository lists under `crds:` at the base commit, the CRDs installed in the
environment's cluster, the repository's `schema_folders:`, and the organisation's
schema folder (GITOPS_BOT_SCHEMA_FOLDER). README "Custom resources" tells users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config.settings import Settings
from bot.core.customschemas import CustomSchema, FirstFound, Kind, SchemaLookup, crd_schemas
from bot.core.findings import Finding, Severity, Stage
from bot.core.manifests import Manifest, SourceFile, load_manifests
from bot.core.repoconfig import CONFIG_PATH, Environment, RepoConfig
from bot.core.schemas import SchemaCatalog, UnknownKinds, kinds_without_schema
from bot.git.repos import GitRepo
from bot.git.sources import read_commit_path, read_local_paths
from bot.stages.schema_folders import LocalSchemaFolder, read_commit_schemas

if TYPE_CHECKING:  # the Kubernetes client is slow to import; `validate` never needs it
    from bot.clusters.directory import ClusterDirectory


@dataclass(frozen=True)
class ServerSchemas:
    """The server's sources: the organisation's schema folder and the clusters' CRDs."""

    folder: Path | None = None
    clusters: ClusterDirectory | None = None


NO_SERVER_SCHEMAS = ServerSchemas()


def server_schemas(settings: Settings, clusters: ClusterDirectory | None) -> ServerSchemas:
    return ServerSchemas(settings.schema_folder, clusters)


@dataclass(frozen=True)
class SchemaSources:
    """The repository's sources, read at the base commit, and the server's."""

    repo: GitRepo | None = None
    commit: str = ""
    crds: Mapping[Kind, CustomSchema] = field(default_factory=dict)
    folders: tuple[str, ...] = ()
    server: ServerSchemas = NO_SERVER_SCHEMAS


NO_SOURCES = SchemaSources()


async def load_sources(
    repo: GitRepo, commit: str, config: RepoConfig, server: ServerSchemas
) -> tuple[SchemaSources, tuple[Finding, ...]]:
    """The schemas of the CRDs under `crds:`; a listed path that holds nothing is a finding."""
    crds, findings = await _read_crds(repo, commit, config.crd_paths)
    for index, folder in enumerate(config.schema_folders):
        if not await repo.list_tree(commit, folder):
            findings.append(_missing("schema_folders", index, folder, "schema files"))
    sources = SchemaSources(repo, commit, crds, config.schema_folders, server)
    return sources, tuple(findings)


async def _read_crds(
    repo: GitRepo, commit: str, paths: Iterable[str]
) -> tuple[dict[Kind, CustomSchema], list[Finding]]:
    files: list[SourceFile] = []
    findings: list[Finding] = []
    for index, path in enumerate(paths):
        found, refused = await read_commit_path(repo, commit, path)
        files += found
        findings += refused
        if not found and not refused:
            findings.append(_missing("crds", index, path, "CRD files"))
    loaded = load_manifests(files)
    return crd_schemas(loaded.manifests), findings + list(loaded.findings)


async def schemas_for(
    sources: SchemaSources,
    env: Environment,
    manifests: Iterable[Manifest],
    catalog: SchemaCatalog,
) -> tuple[SchemaLookup, UnknownKinds]:
    """The lookup for `env`'s objects after its own CRDs, and what a kind with none gets."""
    lookups: list[SchemaLookup] = [sources.crds]
    missing = kinds_without_schema(manifests, catalog, sources.crds)
    note = ""
    if missing:  # the slower sources are asked only for kinds still without a schema
        in_cluster, note = await _cluster_schemas(sources.server, env)
        lookups.append(in_cluster)
        missing -= set(in_cluster)
    if missing and sources.repo is not None and sources.folders:
        found = await read_commit_schemas(sources.repo, sources.commit, sources.folders, missing)
        lookups.append(found)
    folder = sources.server.folder
    if folder is not None:
        lookups.append(LocalSchemaFolder(folder))
        if not folder.is_dir():
            note += f" (GITOPS_BOT_SCHEMA_FOLDER {folder} is not a folder on the bot's server)"
    return FirstFound(tuple(lookups)), UnknownKinds(env.unknown_kinds, note)


async def _cluster_schemas(
    server: ServerSchemas, env: Environment
) -> tuple[Mapping[Kind, CustomSchema], str]:
    """The CRDs of the environment's cluster, and a note when they could not be read."""
    clusters = server.clusters
    if clusters is None or not clusters.knows(env.cluster):
        return {}, ""
    read = await clusters.crds.schemas(env.cluster)
    return read.schemas, f" ({read.failure}, so its CRDs were not used)" if read.failure else ""


def _missing(key: str, index: int, path: str, what: str) -> Finding:
    return Finding(
        Stage.CONFIG,
        Severity.ERROR,
        "config.invalid",
        f"{key}[{index}]: {path!r} holds no {what} at the base commit; fix the path in "
        f"{CONFIG_PATH} or remove it",
        CONFIG_PATH,
    )


def local_schemas(
    crd_paths: Iterable[Path], folders: Iterable[Path]
) -> tuple[SchemaLookup, tuple[Finding, ...]]:
    """For `gitops-bot validate`: the CRDs in local files and folders, then schema folders."""
    files, refused = read_local_paths(crd_paths)
    loaded = load_manifests(files)
    missing = [
        Finding(
            Stage.CONFIG,
            Severity.ERROR,
            "config.invalid",
            "--schema-folder: not a folder",
            str(folder),
        )
        for folder in folders
        if not folder.is_dir()
    ]
    lookups: list[SchemaLookup] = [crd_schemas(loaded.manifests)]
    lookups += [LocalSchemaFolder(folder) for folder in folders]
    return FirstFound(tuple(lookups)), (*refused, *loaded.findings, *missing)
