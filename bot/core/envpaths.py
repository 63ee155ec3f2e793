"""An environment's path at a commit: a folder, or a finding saying what it is instead."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from enum import StrEnum

from bot.core.findings import Finding, Severity, Stage
from bot.core.repoconfig import CONFIG_PATH, Environment

PATH_MISSING = "render.path-missing"
PATH_NOT_FOLDER = "render.path-not-folder"
REMOVED = "config.environment-removed"
CREATED = "config.environment-created"


class PathKind(StrEnum):
    FOLDER = "folder"
    MISSING = "missing"
    FILE = "file"
    LINK = "symbolic link"
    SUBMODULE = "submodule"


_WHY = {
    PathKind.FILE: "an environment's path names a folder of manifests",
    PathKind.LINK: "links are not followed (they could point outside the repository); "
    "replace the link with the folder itself",
    PathKind.SUBMODULE: "submodules are not read; vendor the manifests into this repository",
}


def ancestors(path: str) -> tuple[str, ...]:
    """`a`, `a/b`, `a/b/c` for `a/b/c`: each may be what stands in the way."""
    parts = path.split("/")
    return tuple("/".join(parts[: i + 1]) for i in range(len(parts)))


def path_problem(
    env: Environment,
    commit: str,
    found: tuple[str, PathKind],
    folders: Iterable[str],
) -> Finding | None:
    """Why the environment cannot be read at `commit`, given the deepest entry on its path.

    `found` is that entry's path and kind (`(".", FOLDER)` when nothing of the path exists);
    `folders` are the commit's folders, to suggest the one that was meant.
    """
    at, kind = found
    if env.path == ".":
        return None
    if kind is PathKind.FOLDER and at == env.path:
        return None
    where = f"environment {env.name!r}: path {env.path}"
    if kind is PathKind.FOLDER:
        hint = _did_you_mean(env.path, folders, at)
        message = f"{where} does not exist at commit {commit[:12]} ({hint})"
        return _error(PATH_MISSING, f"{message}; fix environments.{env.name}.path in {CONFIG_PATH}")
    what = env.path if at == env.path else f"{at}, on the way to it,"
    return _error(
        PATH_NOT_FOLDER,
        f"{where}: {what} is a {kind} at commit {commit[:12]}, not a folder; {_WHY[kind]}",
    )


def _did_you_mean(path: str, folders: Iterable[str], deepest: str) -> str:
    close = difflib.get_close_matches(path, [f for f in folders if f != "."], n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"the nearest existing folder is {deepest if deepest != '.' else 'the root'}"


def removed(env: Environment, objects: int) -> Finding:
    """The pull request deletes a configured environment's folder: never an "ok" plan."""
    fate = "pruned from" if env.prune else "left behind, orphaned, in"
    return _error(
        REMOVED,
        f"the pull request removes {env.path}/, the folder of environment {env.name!r}, which "
        f"{CONFIG_PATH} still configures: all {objects} objects in it would be {fate} cluster "
        f"{env.cluster!r}. To retire the environment, remove it from {CONFIG_PATH} first (and "
        "delete its objects by hand); otherwise restore the folder",
        stage=Stage.CONFIG,
    )


def created(env: Environment) -> Finding:
    """The pull request adds the folder a configured environment waited for."""
    return Finding(
        Stage.CONFIG,
        Severity.WARNING,
        CREATED,
        f"the pull request creates {env.path}/, the folder of environment {env.name!r}: "
        "every object in it shows as created",
        CONFIG_PATH,
    )


def is_path_problem(findings: Iterable[Finding]) -> bool:
    return any(f.rule in (PATH_MISSING, PATH_NOT_FOLDER) for f in findings)


def is_missing(findings: Iterable[Finding]) -> bool:
    return any(f.rule == PATH_MISSING for f in findings)


def _error(rule: str, message: str, stage: Stage = Stage.RENDER) -> Finding:
    return Finding(stage, Severity.ERROR, rule, message, CONFIG_PATH)
