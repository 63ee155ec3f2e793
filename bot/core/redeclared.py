"""Objects that a whole-tree read set aside because an earlier file declares the same key.

Reading every YAML file of a commit as one set keeps the first object of each kind,
namespace and name; a repository laid out per cluster declares many of them once per
cluster folder, and each of those declarations counts for Argo CD and Flux.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.manifests import (
    LoadResult,
    Manifest,
    ParsedFiles,
    Source,
    SourceFile,
    collect_manifests,
    parse_files,
)

DUPLICATE_RULE = "manifest.duplicate-object"


def redeclared(loaded: LoadResult, texts: Mapping[str, bytes], namespace: str) -> list[Manifest]:
    """The objects `loaded` left out as declared twice, read again from their files."""
    places = {
        Source(f.path, f.line or 0)
        for f in loaded.findings
        if f.rule == DUPLICATE_RULE and f.path is not None and f.path in texts
    }
    paths = sorted({place.path for place in places})
    parsed = parse_files(SourceFile(path, texts[path]) for path in paths)
    found: list[Manifest] = []
    for body, source in parsed.objects:
        if source in places:
            found += collect_manifests(ParsedFiles(((body, source),)), namespace)[0].manifests
    return found
