"""Rendered output -> objects that name the repository file (and line) that produced them."""

from __future__ import annotations

import bisect
import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.core.documents import (
    DEFAULT_LIMITS,
    Document,
    DocumentError,
    locate,
    parse_documents,
)
from bot.core.findings import Finding
from bot.core.manifests import LoadResult, Manifest, Source, SourceFile
from bot.core.namings import UNRENAMED, Naming, declares, folder_of
from bot.renderers.loading import load_paused

ORIGIN_ANNOTATION = "config.kubernetes.io/origin"  # kustomize's buildMetadata: [originAnnotations]
_HELM_SOURCE = re.compile(rb"^# Source: (.+?)\s*$", re.MULTILINE)
_GENERATOR_FIELDS = {
    "ConfigMapGenerator": "configMapGenerator",
    "SecretGenerator": "secretGenerator",
}
_MAX_OUTPUT_DOCUMENTS = 20_000


def load_output(output: bytes, label: str, namespace: str, max_bytes: int) -> LoadResult:
    """The tool's output parsed like any manifest file: same safe loader, same limits."""
    limits = replace(DEFAULT_LIMITS, max_file_bytes=max_bytes, max_documents=_MAX_OUTPUT_DOCUMENTS)
    return load_paused([SourceFile(label, output)], namespace, limits)


Locator = Callable[[Manifest, Mapping[str, Any] | None], Source]


def relocate(loaded: LoadResult, locator: Locator) -> LoadResult:
    """Give each object its origin as source; drop the origin annotation from its body."""
    manifests = []
    for manifest in loaded.manifests:
        body, origin = _pop_origin(manifest.body)
        manifests.append(replace(manifest, body=body, source=locator(manifest, origin)))
    return LoadResult(tuple(manifests), loaded.findings)


def _pop_origin(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any] | None]:
    metadata = dict(body.get("metadata") or {})
    annotations = dict(metadata.get("annotations") or {})
    text = annotations.pop(ORIGIN_ANNOTATION, None)
    if text is None:
        return body, None
    if annotations:
        metadata["annotations"] = annotations
    else:
        del metadata["annotations"]
    return {**body, "metadata": metadata}, _parse_origin(text)


def _parse_origin(text: object) -> Mapping[str, Any] | None:
    if not isinstance(text, str):
        return None
    try:
        docs = list(parse_documents(text))
    except DocumentError:
        return None
    return docs[0].data if docs and isinstance(docs[0].data, dict) else None


@dataclass
class FileLines:
    """Finds where an object starts in the repository file it came from."""

    root: Path  # the checkout the tool read
    texts: dict[str, bytes] = field(default_factory=dict)
    _documents: dict[str, list[Document]] = field(default_factory=dict)

    def text(self, path: str) -> bytes | None:
        if path not in self.texts:
            target = self.root.joinpath(*path.split("/"))
            if not target.is_file() or target.is_symlink():
                return None
            self.texts[path] = target.read_bytes()
        return self.texts[path]

    def documents(self, path: str) -> list[Document]:
        """The file's YAML documents (none when it is not YAML), parsed once."""
        if path not in self._documents:
            text = self.text(path)
            try:
                self._documents[path] = list(parse_documents(text)) if text is not None else []
            except DocumentError:
                self._documents[path] = []
        return self._documents[path]

    def object_line(
        self, path: str, manifest: Manifest, namings: frozenset[Naming] = UNRENAMED
    ) -> int:
        """The line of the document that, renamed as kustomize did, is exactly the object.

        When no document matches exactly (a transformer renamed it in a way the bot does
        not follow), the file's only document of that kind, else the file's first line.
        """
        docs = [d for d in self.documents(path) if isinstance(d.data, dict)]
        same_kind = [d for d in docs if d.data.get("kind") == manifest.key.kind]
        exact = [d for d in same_kind if declares(d.data, manifest.key, namings)]
        for candidates in (exact, same_kind):
            if len(candidates) == 1:
                return candidates[0].line
        return 1

    def key_line(self, path: str, key: str) -> int:
        """The line of a top-level key of the file's first document."""
        docs, text = self.documents(path), self.texts.get(path)
        if not docs or text is None:
            return 1
        return locate(text, docs[0].line, (key,)) or docs[0].line


def kustomize_locator(
    lines: FileLines,
    checkout: str,
    work: str,
    fallback: str,
    namings: Mapping[str, frozenset[Naming]],
) -> Locator:
    """Sources from kustomize origin annotations, which are relative to the `work` folder.

    `namings` says, per kustomization folder, how names change on the way to the root.
    """

    def locate_origin(manifest: Manifest, origin: Mapping[str, Any] | None) -> Source:
        origin = origin or {}
        if isinstance(origin.get("repo"), str):  # a remote base, allowed by the operator
            return Source(f"{origin['repo']}//{origin.get('path', '')}", 1)
        path = _inside(checkout, work, origin.get("path"))
        if path is not None:
            folder = folder_of(path, namings)
            ways = namings[folder] if folder is not None else UNRENAMED
            return Source(path, lines.object_line(path, manifest, ways))
        path = _inside(checkout, work, origin.get("configuredIn"))
        if path is not None:
            by = origin.get("configuredBy")
            kind = by.get("kind") if isinstance(by, dict) else None
            key = _GENERATOR_FIELDS.get(kind) if isinstance(kind, str) else None
            return Source(path, lines.key_line(path, key) if key else 1)
        return Source(fallback, 1)

    return locate_origin


def _inside(checkout: str, work: str, relative: object) -> str | None:
    """A path relative to `work` as a repository path, if it lies in the checkout."""
    if not isinstance(relative, str) or relative.startswith("/"):
        return None
    path = posixpath.normpath(posixpath.join(work, relative))
    return path.removeprefix(checkout + "/") if path.startswith(checkout + "/") else None


def helm_locator(output: bytes, lines: FileLines, chart: str, copies: Mapping[str, str]) -> Locator:
    """Sources from Helm's `# Source: <chart>/templates/x.yaml` comment above each document.

    `copies` maps a folder the bot copied into the chart (a file:// dependency) back to
    the folder it came from, so the object names the file a reviewer can open.
    """
    marks = list(_source_comments(output))
    starts = [line for line, _ in marks]

    def locate_template(manifest: Manifest, origin: Mapping[str, Any] | None) -> Source:
        index = bisect.bisect_left(starts, manifest.source.line) - 1
        if index < 0:
            return Source(chart, 1)
        template = marks[index][1].partition("/")[2]
        path = _original(posixpath.normpath(posixpath.join(chart, template)), copies)
        return Source(path, _kind_line(lines.text(path), manifest.key.kind))

    return locate_template


def _source_comments(output: bytes) -> Iterator[tuple[int, str]]:
    """(line, template) of each `# Source:` comment, counting lines in one pass."""
    line, position = 1, 0
    for match in _HELM_SOURCE.finditer(output):
        line += output.count(b"\n", position, match.start())
        position = match.start()
        yield line, match.group(1).decode("utf-8", "replace")


def _original(path: str, copies: Mapping[str, str]) -> str:
    for copy, source in sorted(copies.items(), key=lambda item: -len(item[0])):
        if path.startswith(copy + "/"):
            return source + path[len(copy) :]
    return path


def _kind_line(text: bytes | None, kind: str) -> int:
    """The template line saying `kind: <kind>`, when exactly one line says so."""
    if text is None:
        return 1
    pattern = rb"^kind:\s*[\"']?" + re.escape(kind.encode()) + rb"[\"']?\s*$"
    found = [m.start() for m in re.finditer(pattern, text, re.MULTILINE)]
    return text.count(b"\n", 0, found[0]) + 1 if len(found) == 1 else 1


def relabel(findings: tuple[Finding, ...], path: str, tool: str) -> tuple[Finding, ...]:
    """Findings about the tool's output stream name the environment, not a line of output."""
    return tuple(
        replace(f, path=path, line=None, message=f"in the output of {tool}: {f.message}")
        for f in findings
    )
