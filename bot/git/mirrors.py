"""Git mirror cache: one bare repository per forge repository; fetch exact commits only.

Hardened: only https (and file:// when settings allow it, for tests) is spoken; no
submodules, hooks or credential helpers; the credential travels as an http.extraHeader in
the environment of the one fetch command, so it is never in a URL, the mirror's config,
the command line or an error message.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.config.secrets import Secret
from bot.events import Repository
from bot.git.repos import GitError, GitRepo, run_git

_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class MirrorError(RuntimeError):
    """A repository could not be mirrored or lacks a commit; the message says which."""


class Mirrors:
    def __init__(self, root: Path, allow_file: bool = False) -> None:
        self.root = root
        self._allow_file = allow_file
        self._locks: dict[Path, asyncio.Lock] = {}

    def path_for(self, repo: Repository) -> Path:
        digest = hashlib.sha256(f"{repo.forge}\n{repo.clone_url}".encode()).hexdigest()[:16]
        name = _NAME.sub("-", repo.slug).strip("-.")[:80] or "repo"
        return self.root / "mirrors" / repo.forge / f"{name}-{digest}.git"

    async def fetch(
        self, repo: Repository, commits: Sequence[str], auth_header: Secret | None
    ) -> GitRepo:
        """The mirror of `repo`, holding every commit in `commits` (fetched when missing)."""
        url = self._checked_url(repo.clone_url)
        path = self.path_for(repo)
        async with self._locks.setdefault(path, asyncio.Lock()):
            mirror = await self._open(path)
            missing = [c for c in dict.fromkeys(commits) if not await _has_commit(mirror, c)]
            if missing:
                await self._fetch(path, url, missing, auth_header, repo.slug)
            absent = [c for c in missing if not await _has_commit(mirror, c)]
            if absent:
                raise MirrorError(f"{repo.slug} has no commit {', '.join(absent)}")
        return mirror

    def _checked_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise MirrorError("clone URLs must not carry credentials; the bot adds its own")
        if parts.scheme == "https" and parts.hostname:
            return url
        if parts.scheme == "file" and self._allow_file:
            return url
        raise MirrorError(
            f"refusing to fetch from {parts.scheme or 'a relative'} URL {url!r}: only https "
            "remotes are mirrored (file:// needs GITOPS_BOT_GIT_ALLOW_FILE_REMOTES, for tests)"
        )

    async def _open(self, path: Path) -> GitRepo:
        if not (path / "HEAD").exists():
            path.mkdir(parents=True, exist_ok=True)
            await run_git(path, ["init", "--quiet", "--bare"])
            # Fetched commits are kept without refs; never let gc prune them.
            await run_git(path, ["config", "gc.auto", "0"])
        return GitRepo(path)

    async def ref_target(
        self, repo: Repository, ref: str, auth_header: Secret | None
    ) -> str | None:
        """The commit `ref` points at in `repo` now (a forge's merge ref), or None when
        the forge has no such ref."""
        url = self._checked_url(repo.clone_url)
        args = [*self._hardening(), "ls-remote", "--end-of-options", url, ref]
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            out = await run_git(self.root, args, env=_auth_env(auth_header))
        except GitError as exc:
            raise MirrorError(f"cannot read {ref} of {repo.slug}: {exc}") from exc
        for line in out.decode().splitlines():
            commit, _, name = line.partition("\t")
            if name == ref:
                return commit
        return None

    def _hardening(self) -> list[str]:
        protocols = ["-c", "protocol.allow=never", "-c", "protocol.https.allow=always"]
        if self._allow_file:
            protocols += ["-c", "protocol.file.allow=always"]
        return [*protocols, "-c", "credential.helper="]

    async def _fetch(
        self, path: Path, url: str, commits: list[str], auth: Secret | None, slug: str
    ) -> None:
        args = [
            *self._hardening(),
            "-c",
            "fetch.recurseSubmodules=false",
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--no-write-fetch-head",
            "--end-of-options",
            url,
            *commits,
        ]
        try:
            await run_git(path, args, env=_auth_env(auth))
        except GitError as exc:
            raise MirrorError(f"cannot fetch {len(commits)} commit(s) of {slug}: {exc}") from exc


def _auth_env(auth: Secret | None) -> dict[str, str]:
    """The credential as an http.extraHeader in the environment of one git command."""
    env = {"GIT_PROTOCOL_FROM_USER": "0"}
    if auth:
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": auth.reveal(),
        }
    return env


async def parents(repo: GitRepo, commit: str) -> tuple[str, ...]:
    """The parents of `commit` (present in the mirror), first parent first."""
    out = await repo.git("rev-list", "--parents", "-n", "1", commit)
    return tuple(out.decode().split()[1:])


async def _has_commit(repo: GitRepo, commit: str) -> bool:
    try:
        await repo.git("cat-file", "-e", f"{commit}^{{commit}}")
    except GitError:
        return False
    return True


async def is_ancestor(repo: GitRepo, older: str, newer: str) -> bool:
    """Whether `older` is in the history of `newer` (both present in the mirror)."""
    try:
        await repo.git("merge-base", "--is-ancestor", older, newer)
    except GitError:
        return False
    return True
