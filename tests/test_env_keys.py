"""The environment key the server and break-glass share, and how break-glass finds the
repository a clone belongs to."""

from __future__ import annotations

import pytest

from bot.core.envkeys import environment_key, parse_repository, repository_from_remote

FORGES = ("github", "gitlab")
HOSTS = {"github.com": "github", "ghe.example.com": "github", "gitlab.example.com": "gitlab"}


@pytest.mark.parametrize(
    ("url", "repository"),
    [
        ("https://github.com/acme/shop.git", "github:acme/shop"),
        ("https://x-access-token:t@github.com/acme/shop", "github:acme/shop"),
        ("git@github.com:acme/shop.git", "github:acme/shop"),
        ("ssh://git@ghe.example.com:2222/acme/shop.git", "github:acme/shop"),
        ("https://GitLab.example.com/platform/team/deploy.git/", "gitlab:platform/team/deploy"),
        ("https://elsewhere.example.com/acme/shop.git", None),
        ("/srv/git/shop.git", None),
        ("https://github.com/", None),
    ],
)
def test_a_remote_names_the_repository_the_server_knows(url: str, repository: str | None) -> None:
    assert repository_from_remote(url, HOSTS) == repository


def test_break_glass_and_the_server_name_an_environment_alike() -> None:
    repository = parse_repository("github:Codertocat/Hello-World", FORGES)
    assert environment_key(repository, "prod") == "github:Codertocat/Hello-World:prod"


@pytest.mark.parametrize("text", ["acme/shop", "bitbucket:acme/shop", "github:", "github:/acme/"])
def test_a_malformed_repository_says_what_to_write(text: str) -> None:
    with pytest.raises(ValueError, match="write github:OWNER/NAME or gitlab:OWNER/NAME"):
        parse_repository(text, FORGES)
