"""ApplicationSet generators: the parameter sets they give, and the Applications they make.

Supported: `list`, `git` (`directories` with `exclude`, `files` of JSON or YAML), `matrix`
(two children; the second may use the first's parameters), `merge` (`mergeKeys`), and
`clusters` from the clusters the server settings name. Any other generator, a generator's
own `template`, `selector` or `templatePatch` is a `GeneratorError` with the reason.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from bot.core.apptemplates import TemplateError, TemplateStyle, normalize, render_value
from bot.core.globs import compile_glob
from bot.core.identities import ArgoCluster

Params = Mapping[str, Any]


class GeneratorError(ValueError):
    """The ApplicationSet uses something that cannot be previewed; the message says what."""


@dataclass(frozen=True)
class GitView:
    """What the git generators read of this repository: its files, and the contents of
    the files a `files` generator may name (see `file_globs`)."""

    paths: frozenset[str]
    contents: Mapping[str, bytes]
    owns: Callable[[str], bool]  # whether a repoURL names this repository
    follows: Callable[[str], bool]  # whether a revision follows the branch of the merge


@dataclass(frozen=True)
class Generation:
    style: TemplateStyle
    git: GitView
    clusters: tuple[ArgoCluster, ...]


def generate(spec: Mapping[str, Any], git: GitView, clusters: Sequence[ArgoCluster]) -> list[Any]:
    """The Application specs (metadata and spec) an ApplicationSet's generators make."""
    if "templatePatch" in spec:
        raise GeneratorError("spec.templatePatch is not previewed yet")
    options = [str(o) for o in spec.get("goTemplateOptions") or []]
    style = TemplateStyle(bool(spec.get("goTemplate")), "missingkey=error" in options)
    generation = Generation(style, git, tuple(clusters))
    template = spec.get("template") or {}
    params = [p for g in spec.get("generators") or [] for p in _params(g, generation, {})]
    try:
        return [render_value(template, p, style) for p in params]
    except TemplateError as exc:
        raise GeneratorError(f"its template cannot be rendered: {exc}") from None


def file_globs(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The `files` globs anywhere in the generators, a templated part as `*`: what to read."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for item in value.get("files") or [] if isinstance(value.get("files"), list) else []:
                if isinstance(item, Mapping) and "path" in item:
                    found.append(re.sub(r"\{\{.*?\}\}", "*", str(item["path"])))
            for child in value.values():
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(spec.get("generators") or [])
    return tuple(found)


def matching(glob: str, paths: frozenset[str]) -> list[str]:
    """The paths the glob names exactly (`*` within a level, `**` across levels)."""
    pattern = re.compile(compile_glob(glob).pattern.removesuffix("(?:/.*)?"))
    return sorted(p for p in paths if pattern.fullmatch(p))


def _params(generator: Any, generation: Generation, outer: Params) -> list[dict[str, Any]]:
    if not isinstance(generator, Mapping) or len(generator) == 0:
        raise GeneratorError("a generator is not a mapping")
    if outer:  # a matrix's second child may use the first's parameters
        try:
            generator = render_value(generator, outer, generation.style)
        except TemplateError as exc:
            raise GeneratorError(f"a matrix child cannot be rendered: {exc}") from None
    kinds = [key for key in generator if key not in ("selector", "values")]
    kind = str(kinds[0]) if kinds else "selector"
    body = generator.get(kind) if isinstance(generator.get(kind), Mapping) else {}
    if "template" in body or "selector" in generator:
        field = "template" if "template" in body else "selector"
        raise GeneratorError(f"a {kind} generator's {field} is not previewed yet")
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise GeneratorError(f"the {kind} generator is not previewed (it needs Argo CD)")
    return handler(body, generation)


def _list(body: Params, generation: Generation) -> list[dict[str, Any]]:
    if "elementsYaml" in body:
        raise GeneratorError("list.elementsYaml is not previewed yet")
    elements = [e for e in body.get("elements") or [] if isinstance(e, Mapping)]
    if generation.style.go:
        return [dict(e) for e in elements]
    return [_flat(e) for e in elements]


def _git(body: Params, generation: Generation) -> list[dict[str, Any]]:
    git = generation.git
    url, revision = str(body.get("repoURL", "")), str(body.get("revision", ""))
    if not git.owns(url):
        raise GeneratorError(f"its git generator reads another repository ({url})")
    if not git.follows(revision):
        raise GeneratorError(
            f"its git generator's revision {revision!r} does not follow the branch"
        )
    if "pathParamPrefix" in body:
        raise GeneratorError("git.pathParamPrefix is not previewed yet")
    if body.get("directories"):
        return [_path_params(d, generation.style) for d in _directories(body, git.paths)]
    return [p for path in _files(body, git.paths) for p in _file_params(path, git, generation)]


def _directories(body: Params, paths: frozenset[str]) -> list[str]:
    folders = frozenset(
        "/".join(parts[:end])
        for parts in (path.split("/")[:-1] for path in paths)
        for end in range(1, len(parts) + 1)
    )
    entries = [d for d in body["directories"] if isinstance(d, Mapping)]
    chosen: set[str] = set()
    for entry in entries:
        if not entry.get("exclude"):
            chosen |= set(matching(str(entry.get("path", "")), folders))
    for entry in entries:
        if entry.get("exclude"):
            chosen -= set(matching(str(entry.get("path", "")), folders))
    return sorted(chosen)


def _files(body: Params, paths: frozenset[str]) -> list[str]:
    globs = [str(f.get("path", "")) for f in body.get("files") or [] if isinstance(f, Mapping)]
    return sorted({p for glob in globs for p in matching(glob, paths)})


def _file_params(path: str, git: GitView, generation: Generation) -> list[dict[str, Any]]:
    text = git.contents.get(path)
    if text is None:
        raise GeneratorError(f"its git files generator's {path} could not be read")
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise GeneratorError(f"{path} is not JSON or YAML: {exc}") from None
    documents = data if isinstance(data, list) else [data]
    folder_params = _path_params(posixpath.dirname(path), generation.style, path)
    return [
        (dict(d) if generation.style.go else _flat(d)) | folder_params
        for d in documents
        if isinstance(d, Mapping)
    ]


def _path_params(folder: str, style: TemplateStyle, file: str = "") -> dict[str, Any]:
    """`path`, `path.basename`, `path[n]` (and `path.filename` for a file), as Argo CD has."""
    base = posixpath.basename(folder)
    fields: dict[str, Any] = {
        "path": folder,
        "basename": base,
        "basenameNormalized": normalize(base),
    }
    if file:
        name = posixpath.basename(file)
        fields |= {"filename": name, "filenameNormalized": normalize(name)}
    segments = folder.split("/")
    if style.go:
        return {"path": fields | {"segments": segments}}
    flat = {"path": folder} | {f"path.{k}": v for k, v in fields.items() if k != "path"}
    return flat | {f"path[{i}]": s for i, s in enumerate(segments)}


def _matrix(body: Params, generation: Generation) -> list[dict[str, Any]]:
    children = body.get("generators") or []
    if len(children) != 2:
        raise GeneratorError("a matrix generator needs exactly two child generators")
    first = _params(children[0], generation, {})
    return [p | q for p in first for q in _params(children[1], generation, p)]


def _merge(body: Params, generation: Generation) -> list[dict[str, Any]]:
    keys = [str(k) for k in body.get("mergeKeys") or []]
    children = body.get("generators") or []
    if not keys or not children:
        raise GeneratorError("a merge generator needs mergeKeys and child generators")
    merged = _params(children[0], generation, {})
    for child in children[1:]:
        overrides = {_merge_key(p, keys): p for p in _params(child, generation, {})}
        merged = [p | overrides.get(_merge_key(p, keys), {}) for p in merged]
    return merged


def _merge_key(params: Params, keys: list[str]) -> str:
    return json.dumps([_lookup(params, key) for key in keys], default=str)


def _lookup(params: Params, key: str) -> Any:
    if key in params:
        return params[key]
    value: Any = params
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _clusters(body: Params, generation: Generation) -> list[dict[str, Any]]:
    wanted = body.get("selector") or {}
    if set(wanted) - {"matchLabels"}:
        raise GeneratorError("a clusters selector other than matchLabels is not previewed yet")
    labels = {str(k): str(v) for k, v in (wanted.get("matchLabels") or {}).items()}
    chosen = [c for c in generation.clusters if labels.items() <= dict(c.labels).items()]
    values = body.get("values") or {}
    return [_cluster_params(c, values, generation.style) for c in chosen]


def _cluster_params(cluster: ArgoCluster, values: Params, style: TemplateStyle) -> dict[str, Any]:
    metadata = {"labels": dict(cluster.labels), "annotations": dict(cluster.annotations)}
    own: dict[str, Any] = {"name": cluster.name, "nameNormalized": normalize(cluster.name)}
    own |= {"server": cluster.server, "metadata": metadata}
    rendered = render_value(dict(values), own if style.go else _flat(own), style)
    params = own | {"values": rendered}
    return params if style.go else _flat(params)


def _flat(value: Params, prefix: str = "") -> dict[str, Any]:
    """Nested keys as `a.b`, as Argo CD flattens parameters for fasttemplate."""
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            flat |= _flat(item, f"{name}.")
        elif isinstance(item, list):
            flat |= _flat({str(i): v for i, v in enumerate(item)}, f"{name}.")
        else:
            flat[name] = "" if item is None else _scalar(item)
    return flat


def _scalar(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


_HANDLERS = {
    "list": _list,
    "git": _git,
    "matrix": _matrix,
    "merge": _merge,
    "clusters": _clusters,
}
