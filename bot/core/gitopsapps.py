"""Argo CD Applications and Flux Kustomizations in a commit, as units of a preview."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.core.appsets import (
    GeneratorError,
    GitView,
    file_globs,
    generate,
    matching,
)
from bot.core.controllerapply import flux_destination
from bot.core.generated import merged
from bot.core.gitdata import DataObjects, data_objects, describe_missing, lookup, nearest
from bot.core.identities import RepoIdentity
from bot.core.manifests import Manifest
from bot.core.repoconfig import Environment, EnvironmentSource, SourceType, check_repo_path

ARGOCD_GROUP = "argoproj.io"
FLUX_GROUP = "kustomize.toolkit.fluxcd.io"
FLUX_SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_APP_KINDS = frozenset({"Application", "ApplicationSet"})
# Revisions that follow the branch a pull request merges into.
_ARGO_KUSTOMIZE = frozenset(
    {
        "images",
        "namePrefix",
        "nameSuffix",
        "namespace",
        "commonLabels",
        "commonAnnotations",
        "patches",
    }
)
_ARGO_HELM = frozenset({"valueFiles", "values", "valuesObject", "parameters", "releaseName"})
_ARGO_DIRECTORY = frozenset({"recurse", "include", "exclude", "jsonnet"})


@dataclass(frozen=True)
class PreviewUnit:
    """One Application or Kustomization: previewed as `environment`, or `reason` why not."""

    name: str  # argocd/<app> or flux/<namespace>/<name>
    destination: str  # the cluster and namespace it deploys to, as the object says
    origin: str  # the file that declares it
    environment: Environment | None = None
    reason: str = ""  # why it is not previewed; empty when it is
    # Folders of this repository a unit that is not previewed is known to read: a change
    # below them touches it.
    folders: tuple[str, ...] = ()
    definition: str = ""  # the declaring object as written: a change to it redefines the unit
    file: str = ""  # the file that declares it (for a unit an app of apps renders, too)
    line: int = field(default=0, compare=False)  # where in `file`: moving it changes nothing
    declared_by: str = ""  # e.g. "ApplicationSet argocd/teams (apps/teams.yaml)"
    plain_name: str = ""  # the name before it was told apart from a namesake (unitnames)
    duplicates: tuple[str, ...] = ()  # the declarations of one Application name, if several

    @property
    def key(self) -> str:
        """The name as its object gives it, whatever declares it where."""
        return self.plain_name or self.name


def discover_units(
    manifests: Iterable[Manifest],
    paths: Iterable[str],
    identity: RepoIdentity,
    contents: Mapping[str, bytes] | None = None,
    generated: DataObjects | None = None,
) -> tuple[PreviewUnit, ...]:
    """Every unit the objects of a commit declare; `paths` are the commit's files,
    `contents` those an ApplicationSet's git files generator may read (`generator_files`)
    and `generated` the ConfigMaps and Secrets its kustomizations generate."""
    objects = tuple(manifests)
    files = frozenset(paths)
    sources = git_repositories(objects)
    data = merged(data_objects(objects), generated or {})
    git = GitView(files, contents or {}, identity.owns, identity.follows)
    units: list[PreviewUnit] = []
    for manifest in objects:
        group, kind = manifest.key.group, manifest.key.kind
        if (group, kind) == (ARGOCD_GROUP, "Application"):
            body, path = manifest.body, manifest.source.path
            unit = _argocd_unit(manifest.key.name, body, path, files, identity)
            units.append(declared(unit, manifest))
        elif (group, kind) == (ARGOCD_GROUP, "ApplicationSet"):
            units += [declared(u, manifest) for u in _appset_units(manifest, git, identity)]
        elif (group, kind) == (FLUX_GROUP, "Kustomization"):
            units.append(declared(_flux_unit(manifest, files, identity, sources, data), manifest))
    return tuple(sorted(units, key=lambda unit: unit.name))


def declared(unit: PreviewUnit, manifest: Manifest) -> PreviewUnit:
    """The unit with where it is declared: the object's file and line, kind and name."""
    key, source = manifest.key, manifest.source
    by = f"{key.kind} {key.namespace}/{key.name} ({source.path})"
    return replace(unit, file=source.path, line=source.line, declared_by=by)


def generator_files(manifests: Iterable[Manifest], paths: Iterable[str]) -> tuple[str, ...]:
    """The files an ApplicationSet's git files generators may read: to be passed as `contents`."""
    globs = [
        glob
        for m in manifests
        if (m.key.group, m.key.kind) == (ARGOCD_GROUP, "ApplicationSet")
        for glob in file_globs(_mapping(m.body.get("spec")))
    ]
    files = frozenset(paths)
    return tuple(sorted({path for glob in globs for path in matching(glob, files)}))


def declares_apps(manifest: Manifest) -> bool:
    """An Argo CD Application or ApplicationSet: what an app of apps renders."""
    return manifest.key.group == ARGOCD_GROUP and manifest.key.kind in _APP_KINDS


def children_of(
    parent: PreviewUnit,
    manifests: Iterable[Manifest],
    paths: Iterable[str],
    identity: RepoIdentity,
    contents: Mapping[str, bytes] | None = None,
) -> tuple[PreviewUnit, ...]:
    """The units of the Applications and ApplicationSets a unit's render gives (app of apps)."""
    apps = [m for m in manifests if declares_apps(m)]
    found = discover_units(apps, paths, identity, contents)
    return tuple(replace(u, origin=f"{u.origin}, rendered by {parent.name}") for u in found)


def _is_git_repository(manifest: Manifest) -> bool:
    return (manifest.key.group, manifest.key.kind) == (FLUX_SOURCE_GROUP, "GitRepository")


# --- Argo CD


def _appset_units(manifest: Manifest, git: GitView, identity: RepoIdentity) -> list[PreviewUnit]:
    """The Applications an ApplicationSet generates, each a unit; or the set, refused."""
    origin = manifest.source.path
    set_name = f"applicationset/{manifest.key.namespace}/{manifest.key.name}"
    refused = PreviewUnit(set_name, "", origin, definition=definition(manifest.body))
    try:
        apps = generate(_mapping(manifest.body.get("spec")), git, identity.clusters)
    except GeneratorError as exc:
        return [replace(refused, reason=str(exc))]
    units = []
    for app in apps:
        name = str(_mapping(_mapping(app).get("metadata")).get("name") or "")
        if not name:
            return [
                replace(refused, reason="its template gives an Application without metadata.name")
            ]
        units.append(_argocd_unit(name, _mapping(app), origin, git.paths, identity))
    return units


def _argocd_unit(
    app: str, body: Mapping[str, Any], origin: str, files: frozenset[str], identity: RepoIdentity
) -> PreviewUnit:
    spec = _mapping(body.get("spec"))
    dest = _mapping(spec.get("destination"))
    cluster = str(dest.get("name") or dest.get("server") or "in-cluster")
    namespace = str(dest.get("namespace") or "default")
    unit = PreviewUnit(
        f"argocd/{app}", f"{cluster} {namespace}", origin, definition=definition(body)
    )
    chosen = _chosen_source(spec, identity)
    if isinstance(chosen, str):
        return _refused(unit, chosen)
    source, refs = chosen
    path = _repo_folder(source.get("path", "."))
    if path is None:
        return _refused(unit, f"the source path {source.get('path')!r} is not a repository folder")
    built = _argocd_source(app, path, source, files, refs)
    if isinstance(built, str):
        return _refused(unit, built, path)
    env = Environment(
        unit.name, path, cluster, namespace, False, False, source=built[0], **built[1]
    )
    return replace(unit, environment=env)


def _chosen_source(
    spec: Mapping[str, Any], identity: RepoIdentity
) -> tuple[Mapping[str, Any], frozenset[str]] | str:
    """The one source that deploys, and the `ref` names of `sources` in this repository."""
    if "sources" not in spec:
        source = _mapping(spec.get("source"))
        return _argocd_refusal(source, identity) or (source, frozenset())
    sources = [_mapping(s) for s in spec.get("sources") or []]
    refs = [s for s in sources if s.get("ref")]
    for ref in refs:
        if why_not := _argocd_refusal(ref, identity, f"the ref source {ref['ref']!r}"):
            return why_not
    deploying = [s for s in sources if "path" in s or "chart" in s or not s.get("ref")]
    if len(deploying) != 1:
        return f"{len(deploying)} sources deploy objects; only one is previewed yet"
    why_not = _argocd_refusal(deploying[0], identity)
    return why_not or (deploying[0], frozenset(str(r["ref"]) for r in refs))


def _argocd_refusal(source: Mapping[str, Any], identity: RepoIdentity, which: str = "") -> str:
    which = which or "its source"
    url = str(source.get("repoURL", ""))
    if "chart" in source:
        return f"a chart from a Helm repository ({url}) is not in this repository"
    if not identity.owns(url):
        return f"{which} is another repository ({url})"
    revision = str(source.get("targetRevision", ""))
    if not identity.follows(revision):
        return f"targetRevision {revision!r} does not follow the branch this change merges into"
    if "plugin" in source:
        return "config management plugins are not run"
    return ""


def _argocd_source(
    app: str, path: str, source: Mapping[str, Any], files: frozenset[str], refs: frozenset[str]
) -> tuple[EnvironmentSource, dict[str, Any]] | str:
    kind = _argocd_kind(path, source, files)
    if kind is SourceType.HELM:
        return _argocd_helm(app, path, _mapping(source.get("helm")), refs)
    if kind is SourceType.KUSTOMIZE:
        return _argocd_kustomize(_mapping(source.get("kustomize")))
    return _argocd_directory(_mapping(source.get("directory")))


def _argocd_kind(path: str, source: Mapping[str, Any], files: frozenset[str]) -> SourceType:
    """What Argo CD would pick: the explicit block, else the files in the folder."""
    if "helm" in source or _join(path, "Chart.yaml") in files:
        return SourceType.HELM
    if "kustomize" in source or any(_join(path, f) in files for f in KUSTOMIZATION_FILES):
        return SourceType.KUSTOMIZE
    return SourceType.PLAIN


def _argocd_helm(
    app: str, path: str, helm: Mapping[str, Any], refs: frozenset[str]
) -> tuple[EnvironmentSource, dict[str, Any]] | str:
    if unknown := sorted(set(helm) - _ARGO_HELM):
        return f"spec.source.helm.{unknown[0]} is not previewed yet"
    values = []
    for value_file in helm.get("valueFiles") or []:
        joined = _value_file(path, str(value_file), refs)
        if joined is None:
            return f"value file {value_file!r} is not a file of this repository"
        values.append(joined)
    inline = helm.get("valuesObject") or helm.get("values") or ""
    inline_text = inline if isinstance(inline, str) else json.dumps(inline)
    parameters = tuple(
        (str(p.get("name", "")), str(p.get("value", "")), bool(p.get("forceString", False)))
        for p in helm.get("parameters") or []
        if isinstance(p, Mapping)
    )
    release = str(helm.get("releaseName") or app)
    source = EnvironmentSource(
        SourceType.HELM, release, tuple(values), inline_values=inline_text, parameters=parameters
    )
    return source, {}


def _argocd_kustomize(
    kustomize: Mapping[str, Any],
) -> tuple[EnvironmentSource, dict[str, Any]] | str:
    if unknown := sorted(set(kustomize) - _ARGO_KUSTOMIZE):
        return f"spec.source.kustomize.{unknown[0]} is not previewed yet"
    overrides = {k: v for k, v in kustomize.items() if k != "images" and v}
    if images := kustomize.get("images"):
        overrides["images"] = [image_override(str(image)) for image in images]
    return EnvironmentSource(SourceType.KUSTOMIZE, overrides=_json(overrides)), {}


def _argocd_directory(
    directory: Mapping[str, Any],
) -> tuple[EnvironmentSource, dict[str, Any]] | str:
    if unknown := sorted(set(directory) - _ARGO_DIRECTORY):
        return f"spec.source.directory.{unknown[0]} is not previewed yet"
    if directory.get("jsonnet"):
        return "Jsonnet (spec.source.directory.jsonnet) is not rendered"
    include = _braces(str(directory.get("include") or ""))
    exclude = _braces(str(directory.get("exclude") or ""))
    if not directory.get("recurse"):
        exclude += ("*/**",)  # Argo CD reads only the folder itself unless told to recurse
    return EnvironmentSource(SourceType.PLAIN, include=include), {"exclude": exclude}


def image_override(text: str) -> dict[str, str]:
    """An Argo CD image override (`name=newName:tag`, `name:tag`, `name@digest`) for kustomize."""
    name, _, new = text.partition("=") if "=" in text else ("", "", text)
    new, _, digest = new.partition("@")
    base, tag = new, ""
    if ":" in new.rsplit("/", 1)[-1]:
        base, _, tag = new.rpartition(":")
    override = {"name": name or base}
    if name and base:
        override["newName"] = base
    if tag:
        override["newTag"] = tag
    if digest:
        override["digest"] = digest
    return override


def _braces(text: str) -> tuple[str, ...]:
    """Argo CD's `{a,b}` alternatives as separate globs."""
    if not text:
        return ()
    if text.startswith("{") and text.endswith("}"):
        return tuple(part.strip() for part in text[1:-1].split(",") if part.strip())
    return (text,)


# --- Flux


_BAD_COMPONENT = "a spec.components entry is not a folder of this repository"


def _flux_unit(
    manifest: Manifest,
    files: frozenset[str],
    identity: RepoIdentity,
    sources: GitRepositories,
    data: DataObjects,
) -> PreviewUnit:
    spec = _mapping(manifest.body.get("spec"))
    namespace = str(spec.get("targetNamespace") or "default")
    cluster = flux_destination(spec, manifest.key.namespace)
    name = f"flux/{manifest.key.namespace}/{manifest.key.name}"
    unit = PreviewUnit(
        name, f"{cluster} {namespace}", manifest.source.path, definition=definition(manifest.body)
    )
    why_not = _flux_refusal(manifest, spec, identity, sources)
    if why_not:
        return _refused(unit, why_not)
    path = _repo_folder(spec.get("path", "."))
    if path is None:
        return _refused(unit, f"spec.path {spec.get('path')!r} is not a repository folder")
    overrides = _flux_overrides(spec)
    substitute = _substitutions(spec, manifest.key.namespace, data, manifest.source.path)
    components = tuple(_repo_file(path, str(c)) or "" for c in spec.get("components") or [])
    if isinstance(substitute, str) or "" in components:
        why_not = substitute if isinstance(substitute, str) else _BAD_COMPONENT
        return _refused(unit, why_not, path)
    if not any(_join(path, f) in files for f in KUSTOMIZATION_FILES):
        if overrides or substitute or components:
            why_not = "overrides on a folder without a kustomization are not previewed yet"
            return _refused(unit, why_not, path)
        source = EnvironmentSource(SourceType.PLAIN)
    else:
        source = EnvironmentSource(
            SourceType.KUSTOMIZE,
            overrides=_json(overrides),
            substitute=substitute,
            components=components,
        )
    env = Environment(name, path, cluster, namespace, False, False, source=source)
    return replace(unit, environment=env)


def _flux_refusal(
    manifest: Manifest,
    spec: Mapping[str, Any],
    identity: RepoIdentity,
    sources: GitRepositories,
) -> str:
    ref = _mapping(spec.get("sourceRef"))
    near = manifest.source.path
    return git_repository_refusal(ref, manifest.key.namespace, identity, sources, near)


def git_repository_refusal(
    ref: Mapping[str, Any],
    namespace: str,
    identity: RepoIdentity,
    sources: GitRepositories,
    near: str = "",
) -> str:
    """Why a Flux sourceRef is not this repository at the merge branch; empty when it is.
    Of several GitRepositories of that name, the one declared nearest `near` counts."""
    if ref.get("kind") != "GitRepository":
        return f"its sourceRef is {ref.get('kind', 'missing')!r}, not a GitRepository"
    key = (str(ref.get("namespace") or namespace), str(ref.get("name", "")))
    repository = nearest(sources.get(key, ()), near, lambda m: m.source.path)
    if repository is None:
        return f"GitRepository {key[0]}/{key[1]} is not in this repository, so its URL is unknown"
    repo_spec = _mapping(repository.body.get("spec"))
    url = str(repo_spec.get("url", ""))
    if not identity.owns(url):
        return f"its source is another repository ({url})"
    git_ref = _mapping(repo_spec.get("ref"))
    if set(git_ref) - {"branch"} or not identity.follows(str(git_ref.get("branch", ""))):
        return f"GitRepository {key[0]}/{key[1]} does not follow the branch this change merges into"
    return ""


GitRepositories = Mapping[tuple[str, str], tuple[Manifest, ...]]


def git_repositories(manifests: Iterable[Manifest]) -> GitRepositories:
    """The Flux GitRepository objects of a commit, by namespace and name (each cluster
    folder may declare its own)."""
    found: dict[tuple[str, str], tuple[Manifest, ...]] = {}
    for m in manifests:
        if _is_git_repository(m):
            key = (m.key.namespace, m.key.name)
            found[key] = (*found.get(key, ()), m)
    return found


def _flux_overrides(spec: Mapping[str, Any]) -> dict[str, Any]:
    names = {"targetNamespace": "namespace", "namePrefix": "namePrefix", "nameSuffix": "nameSuffix"}
    overrides = {kustomize: spec[flux] for flux, kustomize in names.items() if spec.get(flux)}
    for key in ("images", "patches"):
        if spec.get(key):
            overrides[key] = spec[key]
    return overrides


def _substitutions(
    spec: Mapping[str, Any], namespace: str, data: DataObjects, near: str
) -> tuple[tuple[str, str], ...] | str:
    """`substituteFrom` objects in order, then `substitute`, which wins; or why not."""
    postbuild = _mapping(spec.get("postBuild"))
    values: dict[str, str] = {}
    for reference in postbuild.get("substituteFrom") or []:
        reference = _mapping(reference)
        kind, name = str(reference.get("kind", "")), str(reference.get("name", ""))
        found = lookup(data, kind, namespace, name, near)
        if found is None or found.unreadable:
            if reference.get("optional"):
                continue
            why = f"{kind} {name}: {found.unreadable}" if found else ""
            return f"postBuild.substituteFrom {why or describe_missing(kind, namespace, name)}"
        values |= found.data
    values |= {str(k): str(v) for k, v in _mapping(postbuild.get("substitute")).items()}
    return tuple(sorted(values.items()))


# --- shared


def definition(body: Mapping[str, Any]) -> str:
    """An object's fields as one canonical text, to tell whether two declarations differ."""
    return json.dumps(body, sort_keys=True, default=str)


def _refused(unit: PreviewUnit, reason: str, *folders: str) -> PreviewUnit:
    return replace(unit, environment=None, reason=reason, folders=folders)


def _repo_folder(path: object) -> str | None:
    text = posixpath.normpath(str(path or ".").strip())
    return None if check_repo_path(text) else text


def _value_file(chart: str, path: str, refs: frozenset[str]) -> str | None:
    """A value file relative to the chart, or `$ref/...` from the root of a ref source."""
    ref, _, rest = path.partition("/")
    if ref.startswith("$") and ref[1:] in refs:
        return _repo_file(".", rest)
    return _repo_file(chart, path)


def _repo_file(folder: str, path: str) -> str | None:
    joined = posixpath.normpath(_join(folder, path))
    return None if "$" in path or check_repo_path(joined) else joined


def _join(folder: str, name: str) -> str:
    return name if folder == "." else f"{folder}/{name}"


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _json(overrides: Mapping[str, Any]) -> str:
    return json.dumps(overrides, sort_keys=True) if overrides else ""
