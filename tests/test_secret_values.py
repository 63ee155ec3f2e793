"""No Secret value, in data or stringData, base64 or plain, appears in any output."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.gitrepos import Repo
from helpers.manifests import CONFIG, secret

from bot.core.diffs import compare, normalise
from bot.core.manifests import ObjectKey

OLD = {"password": "old-Pa55word-zq81", "token": "old-tkn-4f9a77"}
NEW = {"password": "new-Pa55word-xk27", "token": "new-tkn-88b3c1"}
# An invalid Secret: the schema check fails on the value itself.
BROKEN = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\nstringData:\n  pin: 918273\n"


def forbidden_strings() -> list[str]:
    values = [*OLD.values(), *NEW.values(), "918273"]
    return values + [base64.b64encode(v.encode()).decode() for v in values]


def assert_clean(text: str) -> None:
    for value in forbidden_strings():
        assert value not in text, f"secret value {value!r} leaked"


@pytest.fixture
def secret_change(repo: Repo) -> tuple[Repo, str, str]:
    base = repo.commit(
        {
            ".gitops-bot.yaml": CONFIG,
            "deploy/a.yaml": secret("a", data=OLD),
            "deploy/b.yaml": secret("b", string_data=OLD),
            "deploy/gone.yaml": secret("gone", data=OLD),
        }
    )
    head = repo.commit(
        {
            ".gitops-bot.yaml": CONFIG,
            "deploy/a.yaml": secret("a", data=NEW),
            "deploy/b.yaml": secret("b", string_data=NEW, data={"extra": OLD["token"]}),
            "deploy/new.yaml": secret("new", string_data=NEW),
            "deploy/broken.yaml": BROKEN,
        }
    )
    return repo, base, head


@pytest.mark.parametrize("fmt", ["markdown", "text", "json"])
def test_plan_outputs_never_show_secret_values(
    secret_change: tuple[Repo, str, str], fmt: str
) -> None:
    repo, base, head = secret_change
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "plan",
            "--repo",
            str(repo.path),
            "--base",
            base,
            "--head",
            head,
            "--format",
            fmt,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1  # the broken Secret is an error
    assert "(hidden, fingerprint" in done.stdout
    assert "Secret values are never shown" in done.stdout
    assert_clean(done.stdout + done.stderr)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_validate_never_shows_secret_values(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "s.yaml").write_text(secret("a", data=OLD) + "---\n" + BROKEN)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "validate", str(tmp_path), "--format", fmt],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert_clean(done.stdout + done.stderr)


def test_the_same_value_in_data_or_string_data_is_no_change() -> None:
    key = ObjectKey("", "Secret", "shop", "s")
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in OLD.items()}
    before = {
        key: {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": encoded}
    }
    after = {
        key: {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": OLD}
    }
    [change] = compare(before, after, prune=True, secret_key=b"k")
    assert change.action == "unchanged"


def test_fingerprints_depend_on_the_key_so_values_cannot_be_looked_up() -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": OLD}
    assert normalise(body, b"key-one") != normalise(body, b"key-two")


def test_secret_diff_names_keys_not_values() -> None:
    key = ObjectKey("", "Secret", "shop", "s")
    before = {
        key: {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": OLD}
    }
    after = {
        key: {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "stringData": {**NEW, "added": "brand-new-value"},
        }
    }
    [change] = compare(before, after, prune=True, secret_key=b"k")
    assert "+  added: (hidden" in change.diff and "-  password: (hidden" in change.diff
    assert "brand-new-value" not in change.diff
    assert_clean(change.diff)
