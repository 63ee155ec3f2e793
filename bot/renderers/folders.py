"""Is an environment's path a folder at the commit? If not, the finding that says what it is."""

from __future__ import annotations

from bot.core.envpaths import PathKind, ancestors, path_problem
from bot.core.findings import Finding
from bot.core.repoconfig import Environment
from bot.git.repos import GitRepo
from bot.renderers.checkouts import read_index

_KINDS = {"040000": PathKind.FOLDER, "120000": PathKind.LINK, "160000": PathKind.SUBMODULE}


async def folder_problem(repo: GitRepo, commit: str, env: Environment) -> Finding | None:
    """None when the environment's path is a folder at `commit` (the root always is)."""
    if env.path == ".":
        return None
    if env.path in (await read_index(repo, commit)).folders:  # a folder that holds files
        return None
    found = await _deepest(repo, commit, env.path)
    missing = found[1] is PathKind.FOLDER and found[0] != env.path
    folders = await repo.folders(commit) if missing else []  # only to suggest one
    return path_problem(env, commit, found, folders)


async def _deepest(repo: GitRepo, commit: str, path: str) -> tuple[str, PathKind]:
    """The deepest entry that exists on the way to `path`, and what it is."""
    found = (".", PathKind.FOLDER)
    for step in ancestors(path):  # one at a time: ls-tree lists a folder's files when
        entry = await repo.entry(commit, step)  # given the folder and a path below it
        if entry is None:
            return found
        found = step, _KINDS.get(entry.mode, PathKind.FILE)
        if found[1] is not PathKind.FOLDER:
            return found
    return found
