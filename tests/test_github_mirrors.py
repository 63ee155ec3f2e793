"""The git mirror cache: exact commits from real remotes, hardened, no credential kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.gitrepos import Repo

from bot.config.secrets import Secret
from bot.events import Repository
from bot.git.mirrors import MirrorError, Mirrors

TOKEN = "ghs_very_secret_token_value"


def _repository(url: str) -> Repository:
    return Repository("github", "octo/shop", url, "main", 1)


async def test_exact_commits_are_fetched_even_without_a_branch(tmp_path: Path) -> None:
    origin = Repo(tmp_path / "origin")
    first = origin.commit({"a.yaml": "a: 1\n"})
    origin.git("checkout", "--quiet", "-b", "topic")
    loose = origin.commit({"a.yaml": "a: 2\n"})
    origin.git("checkout", "--quiet", "main")
    origin.git("branch", "--quiet", "-D", "topic")  # reachable by id only, like a PR head
    mirrors = Mirrors(tmp_path / "data", allow_file=True)

    mirror = await mirrors.fetch(_repository(origin.path.as_uri()), (first, loose), None)

    assert await mirror.read_file(loose, "a.yaml") == b"a: 2\n"
    assert mirror.path == mirrors.path_for(_repository(origin.path.as_uri()))
    again = await mirrors.fetch(_repository(origin.path.as_uri()), (first,), None)
    assert again.path == mirror.path


async def test_a_missing_commit_is_named(tmp_path: Path) -> None:
    origin = Repo(tmp_path / "origin")
    origin.commit({"a.yaml": "a: 1\n"})
    mirrors = Mirrors(tmp_path / "data", allow_file=True)

    with pytest.raises(MirrorError, match="0" * 40):
        await mirrors.fetch(_repository(origin.path.as_uri()), ("0" * 40,), None)


@pytest.mark.parametrize(
    "url",
    [
        "file:///tmp/repo",
        "http://github.example.com/o/r.git",
        "ext::sh -c touch% /tmp/pwned",
        "https://user:pass@github.com/o/r.git",
        "/tmp/repo",
    ],
)
async def test_only_https_remotes_are_mirrored(tmp_path: Path, url: str) -> None:
    with pytest.raises(MirrorError, match=r"refusing|must not carry credentials"):
        await Mirrors(tmp_path).fetch(_repository(url), ("a" * 40,), None)


async def test_the_credential_is_never_written_down_or_reported(tmp_path: Path) -> None:
    mirrors = Mirrors(tmp_path / "data")
    repo = _repository("https://127.0.0.1:9/octo/shop.git")  # nothing listens there

    with pytest.raises(MirrorError) as failure:
        await mirrors.fetch(repo, ("a" * 40,), Secret(f"Authorization: Basic {TOKEN}"))

    assert TOKEN not in str(failure.value)
    for path in mirrors.path_for(repo).rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
