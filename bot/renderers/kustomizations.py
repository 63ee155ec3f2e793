"""Check a kustomization tree before kustomize runs: local files, inside their roots, no functions.

kustomize itself is run with the root-only load restrictor and without plugins; these
checks come first so that a refusal names the file, line and reason in the bot's words,
and so that a remote reference never reaches the tool, whose first move would be to fetch it.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core.documents import Document, DocumentError, locate, parse_documents
from bot.core.findings import Finding, field_path
from bot.core.namings import Renaming
from bot.renderers.checkouts import TreeIndex
from bot.renderers.protocol import render_error

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_KUSTOMIZATIONS = 500
FUNCTION_ANNOTATIONS = ("config.kubernetes.io/function", "config.k8s.io/function")
NETWORK_SETTING = "GITOPS_BOT_RENDER_ALLOW_NETWORK"

_RESOURCE_FIELDS = ("resources", "bases", "components")
_PLUGIN_FIELDS = ("generators", "transformers", "validators")
_FILE_LIST_FIELDS = ("crds", "configurations", "patchesStrategicMerge")
_PATH_ITEM_FIELDS = ("patches", "patchesJson6902", "replacements")
_DATA_GENERATORS = ("configMapGenerator", "secretGenerator")
_HELM_FIELDS = ("helmCharts", "helmChartInflationGenerator", "helmGlobals")
_KEPT_TEXTS = 1024  # parsed kustomizations kept, each at most _KEPT_TEXT_BYTES long
_KEPT_TEXT_BYTES = 16 * 1024
_URL = re.compile(r"^([a-z][a-z0-9+.-]*:(//|:)|git@)", re.IGNORECASE)

Reader = Callable[[str], Awaitable[bytes]]
Pointer = tuple[str | int, ...]


@dataclass(frozen=True)
class Scan:
    folders: tuple[str, ...]  # every kustomization folder reached, to be written out
    findings: tuple[Finding, ...]  # refusals: when there is one, kustomize must not run
    renamings: Mapping[str, Renaming] = field(default_factory=dict)  # by folder


async def scan_with_components(
    index: TreeIndex, read: Reader, root: str, components: tuple[str, ...], allow_network: bool
) -> Scan:
    """The scan of `root`, with the folders and refusals of the components Flux adds to it."""
    scan = await scan_kustomizations(index, read, root, allow_network)
    for component in components:
        more = await scan_kustomizations(index, read, component, allow_network)
        folders = tuple(sorted({*scan.folders, *more.folders}))
        scan = Scan(folders, scan.findings + more.findings, scan.renamings)
    return scan


async def scan_kustomizations(
    index: TreeIndex, read: Reader, root: str, allow_network: bool
) -> Scan:
    """Walk the kustomizations reachable from `root` (a folder) and refuse what is unsafe."""
    scanner = _Scanner(index, read, allow_network)
    await scanner.run(root)
    renamings = {
        folder: replace(renaming, children=tuple(scanner.children.get(folder, ())))
        for folder, renaming in scanner.renamings.items()
    }
    return Scan(tuple(sorted(scanner.visited)), tuple(scanner.findings), renamings)


@dataclass
class _File:
    """One kustomization file being checked, and where to report its problems."""

    folder: str
    path: str
    text: bytes
    line: int  # where its document starts
    plugins: bool  # its resources are generator/transformer configs


@dataclass
class _Scanner:
    index: TreeIndex
    read: Reader
    allow_network: bool
    visited: set[str] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    queue: list[tuple[str, bool]] = field(default_factory=list)
    renamings: dict[str, Renaming] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)

    async def run(self, root: str) -> None:
        self.queue.append((root, False))
        while self.queue:
            folder, plugins = self.queue.pop()
            if folder in self.visited:
                continue
            if len(self.visited) >= MAX_KUSTOMIZATIONS:
                self._refuse(
                    "too-many-kustomizations",
                    f"more than {MAX_KUSTOMIZATIONS} kustomizations are reachable from "
                    f"{root}; split the environment",
                    root,
                )
                return
            self.visited.add(folder)
            await self._visit(folder, plugins, is_root=folder == root)

    async def _visit(self, folder: str, plugins: bool, is_root: bool) -> None:
        file = await self._open(folder, is_root)
        if file is None:
            return
        try:
            docs = _documents(file.text)
        except DocumentError as exc:
            self._refuse("invalid-kustomization", exc.message, file.path, exc.line)
            return
        if len(docs) != 1 or not isinstance(docs[0].data, dict):
            self._refuse("invalid-kustomization", "must hold one YAML mapping", file.path)
            return
        file.line, file.plugins = docs[0].line, plugins
        self.renamings[folder] = _renaming(docs[0].data)
        await self._check(file, docs[0].data)

    async def _open(self, folder: str, is_root: bool) -> _File | None:
        for name in KUSTOMIZATION_FILES:
            path = _join(folder, name)
            if self.index.is_link(path):
                self._refuse("link", f"{path} is a symbolic link; links are not followed", path)
                return None
            if self.index.is_file(path):
                return _File(folder, path, await self.read(path), 1, False)
        hint = (
            "add a kustomization.yaml there, or drop `source: {type: kustomize}`"
            if is_root
            else "list a folder that holds a kustomization.yaml, or a file"
        )
        self._refuse("not-kustomization", f"{folder}/ holds no kustomization.yaml; {hint}", folder)
        return None

    async def _check(self, file: _File, data: dict[str, Any]) -> None:
        for name in _HELM_FIELDS:
            if name in data:
                self._refuse_at(
                    file,
                    (name,),
                    "helm-inflation",
                    f"{name}: kustomize's Helm chart inflation is not run by the bot (it "
                    "downloads and executes helm); render the chart with `source: {type: helm}`",
                )
        for name in (*_RESOURCE_FIELDS, *_PLUGIN_FIELDS):
            for pointer, ref in _strings(data, name):
                await self._reference(file, pointer, ref, plugin=name in _PLUGIN_FIELDS)
        for pointer, ref in _file_references(data):
            self._local_file(file, pointer, ref)

    async def _reference(self, file: _File, pointer: Pointer, ref: str, plugin: bool) -> None:
        """A resource, base or component: a file inside the folder or another kustomization."""
        plugin = plugin or (file.plugins and pointer[0] == "resources")
        if plugin and "\n" in ref:
            self._plugin_configs(file, pointer, ref.encode())
            return
        kind, path = self._classify(file.folder, ref)
        if kind == "folder":
            self.queue.append((path, plugin))
            self.children.setdefault(file.folder, []).append(path)
        elif kind == "file" and _within(path, file.folder):
            if plugin:
                self._plugin_configs(file, pointer, await self.read(path))
        elif kind == "file":
            self._outside_root(file, pointer, ref)
        else:
            self._unusable(file, pointer, ref, kind)

    def _local_file(self, file: _File, pointer: Pointer, ref: str) -> None:
        """A file a kustomization loads (patch, generator input): must be below its folder."""
        kind, path = self._classify(file.folder, ref)
        if kind == "file" and not _within(path, file.folder):
            self._outside_root(file, pointer, ref)
        elif kind not in ("file", "folder"):
            self._unusable(file, pointer, ref, kind)

    def _classify(self, folder: str, ref: str) -> tuple[str, str]:
        if _URL.match(ref):
            return "remote", ref
        path = posixpath.normpath(posixpath.join(folder, ref))
        if ref.startswith("/") or path == ".." or path.startswith("../"):
            return "outside-repository", path
        if self.index.is_link(path):
            return "link", path
        if self.index.is_file(path):
            return "file", path
        if path in self.index.folders:
            return "folder", path
        first = ref.split("/", 1)[0]
        if (
            "." in first.strip(".") and "/" in ref
        ):  # github.com/org/repo//path, as kustomize reads it
            return "remote", ref
        return "missing", path

    def _unusable(self, file: _File, pointer: Pointer, ref: str, kind: str) -> None:
        where = f"{field_path(pointer)}: {ref!r}"
        if kind == "remote":
            if self.allow_network:
                return
            self._refuse_at(
                file,
                pointer,
                "remote-refused",
                f"{where} is remote; the bot renders without network access, so remote "
                "bases, resources and files are refused before kustomize runs: copy it into "
                f"the repository (or ask the bot's operator to set {NETWORK_SETTING})",
            )
        elif kind == "outside-repository":
            self._refuse_at(
                file, pointer, "outside-repository", f"{where} points outside the repository"
            )
        elif kind == "link":
            self._refuse_at(
                file,
                pointer,
                "link",
                f"{where} is a symbolic link; links are not followed: replace it with the file",
            )
        else:
            self._refuse_at(
                file, pointer, "missing", f"{where} is not in the repository at this commit"
            )

    def _outside_root(self, file: _File, pointer: Pointer, ref: str) -> None:
        self._refuse_at(
            file,
            pointer,
            "outside-root",
            f"{field_path(pointer)}: {ref!r} is outside {file.folder}/, and kustomize's root-only "
            f"load restriction forbids reading it: move the file below {file.folder}/, or "
            "put it in a folder with its own kustomization.yaml and list that folder",
        )

    def _plugin_configs(self, file: _File, pointer: Pointer, text: bytes) -> None:
        try:
            docs = list(parse_documents(text))
        except DocumentError as exc:
            self._refuse_at(
                file, pointer, "invalid-plugin", f"{field_path(pointer)}: {exc.message}"
            )
            return
        for doc in docs:
            problem = _function_problem(doc.data)
            if problem:
                self._refuse_at(
                    file, pointer, "function-refused", f"{field_path(pointer)}: {problem}"
                )

    def _refuse_at(self, file: _File, pointer: Pointer, rule: str, message: str) -> None:
        line = locate(file.text, file.line, pointer) or file.line
        self._refuse(rule, message, file.path, line)

    def _refuse(self, rule: str, message: str, path: str, line: int | None = None) -> None:
        self.findings.append(render_error(rule, message, path, line))


def _documents(text: bytes) -> tuple[Document, ...]:
    """The kustomization's documents; a small one's kept by its text, since a base shared
    by hundreds of Argo CD or Flux units is scanned for each of them at both commits."""
    if len(text) > _KEPT_TEXT_BYTES:
        return tuple(parse_documents(text))
    return _kept_documents(text)


@functools.lru_cache(maxsize=_KEPT_TEXTS)
def _kept_documents(text: bytes) -> tuple[Document, ...]:
    return tuple(parse_documents(text))  # the scan only reads what this returns


def _renaming(data: dict[str, Any]) -> Renaming:
    """The names and namespace a kustomization gives what it includes, to find their sources."""
    texts = [data.get(key) for key in ("namePrefix", "nameSuffix", "namespace")]
    prefix, suffix, namespace = (text if isinstance(text, str) else "" for text in texts)
    return Renaming(prefix, suffix, namespace)


def _function_problem(config: Any) -> str | None:
    """Why a generator/transformer config would run code; None for a builtin one."""
    if not isinstance(config, dict):
        return "a generator or transformer config must be a mapping"
    metadata = config.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and any(a in annotations for a in FUNCTION_ANNOTATIONS):
        return (
            "configures a KRM function (an executable or a container); the bot never runs "
            "functions: use kustomize's builtin generators and transformers"
        )
    if config.get("apiVersion") != "builtin":
        return (
            f"{config.get('apiVersion')!r} {config.get('kind')!r} is an external plugin; the "
            "bot runs only kustomize's builtin ones (apiVersion: builtin)"
        )
    return None


def _strings(data: dict[str, Any], name: str) -> Iterator[tuple[Pointer, str]]:
    items = data.get(name)
    if isinstance(items, list):
        for i, item in enumerate(items):
            if isinstance(item, str):
                yield (name, i), item


def _file_references(data: dict[str, Any]) -> Iterator[tuple[Pointer, str]]:
    """Every file a kustomization names for kustomize to load, with where it names it."""
    for name in _FILE_LIST_FIELDS:
        yield from ((p, ref) for p, ref in _strings(data, name) if "\n" not in ref)
    for name in _PATH_ITEM_FIELDS:
        for i, item in _dicts(data.get(name)):
            if isinstance(item.get("path"), str):
                yield (name, i, "path"), item["path"]
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        yield ("openapi", "path"), openapi["path"]
    for name in _DATA_GENERATORS:
        for i, item in _dicts(data.get(name)):
            yield from _generator_files(item, (name, i))


def _generator_files(item: dict[str, Any], at: Pointer) -> Iterator[tuple[Pointer, str]]:
    for key in ("files", "envs"):
        for pointer, ref in _strings(item, key):
            yield (*at, *pointer), ref.partition("=")[2] if "=" in ref else ref
    if isinstance(item.get("env"), str):
        yield (*at, "env"), item["env"]


def _dicts(items: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    if isinstance(items, list):
        yield from ((i, item) for i, item in enumerate(items) if isinstance(item, dict))


def _join(folder: str, name: str) -> str:
    return name if folder in ("", ".") else f"{folder}/{name}"


def _within(path: str, folder: str) -> bool:
    return folder in ("", ".") or path.startswith(folder + "/")
