"""Hostile Secrets: whatever the spelling or the kind, a secret value never reaches an output.

Each case is a commit of a real repository; `plan` (Markdown, text and JSON) and
`validate` (text and JSON) run as subprocesses, and none of their output, standard error
included, holds the value in any encoding.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from helpers.gitrepos import Repo
from helpers.hostile import run_bot

VALUE = "hunter2-do-not-show"
ENCODED = base64.b64encode(VALUE.encode()).decode()
CONFIG = "version: 1\nenvironments:\n  prod:\n    path: deploy\n    cluster: c\n"
CASES = {
    "misspelled stringdata": (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringdata:\n  password: {VALUE}\n",
        "schema.invalid",
    ),
    "a field of no known name": (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\npassword: {VALUE}\n",
        "schema.invalid",
    ),
    "data that is not base64": (
        f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: '{VALUE}!'\n",
        "secret.not-base64",
    ),
    "a Secret of another group": (
        f"apiVersion: example.com/v1\nkind: Secret\nmetadata:\n  name: s\n"
        f"data:\n  password: {ENCODED}\n",
        "schema.unknown-kind",
    ),
    "a SealedSecret": (
        f"apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata:\n  name: s\n"
        f"spec:\n  encryptedData:\n    password: {VALUE}\n  template:\n    data:\n"
        f"      user: {VALUE}\n",
        "schema.unknown-kind",
    ),
    "an ExternalSecret with a literal": (
        f"apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: s\n"
        f"spec:\n  target:\n    template:\n      data:\n        password: {VALUE}\n",
        "schema.unknown-kind",
    ),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str, str, str]:
    """A repository whose head adds the hostile object; its expected rule."""
    manifest, rule = CASES[request.param]
    repo = Repo(tmp_path / "repo")
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/keep.yaml": _configmap()})
    head = repo.commit(
        {".gitops-bot.yaml": CONFIG, "deploy/keep.yaml": _configmap(), "deploy/s.yaml": manifest}
    )
    return repo.path, base, head, rule


def _exit_code(rule: str) -> int:
    """An error finding blocks (1); a kind with no schema anywhere is a warning by default
    (README "Custom resources"), so its plan passes (0), and must not leak either."""
    return 0 if rule == "schema.unknown-kind" else 1


def _configmap() -> str:
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  a: '1'\n"


def _leaks(text: str) -> list[str]:
    decoded_forms = (VALUE, ENCODED, VALUE.replace("-", "\\-"))
    return [form for form in decoded_forms if form in text]


def test_plan_outputs_show_no_value_in_any_format(case: tuple[Path, str, str, str]) -> None:
    repo, base, head, rule = case
    for fmt in ("markdown", "text", "json"):
        done = run_bot(
            "plan",
            "--repo",
            str(repo),
            "--base",
            base,
            "--head",
            head,
            "--format",
            fmt,
            cwd=repo.parent,
            secret_fingerprint_key="k",
        )
        assert done.returncode == _exit_code(rule), done.stderr
        assert rule in done.stdout
        assert not _leaks(done.stdout + done.stderr), fmt
    data = json.loads(done.stdout)
    (change,) = [c for c in data["environments"][0]["changes"] if c["object"].endswith("/s")]
    assert "(hidden, fingerprint" in change["diff"]  # the keys show, their values do not


def test_validate_shows_no_value(case: tuple[Path, str, str, str]) -> None:
    repo, _, _, rule = case
    for fmt in ("text", "json"):
        done = run_bot(
            "validate", str(repo / "deploy" / "s.yaml"), "--format", fmt, cwd=repo.parent
        )
        assert done.returncode == _exit_code(rule), done.stderr
        assert rule in done.stdout
        assert not _leaks(done.stdout + done.stderr), fmt


def test_data_that_is_not_base64_says_what_to_do(tmp_path: Path) -> None:
    manifest = tmp_path / "s.yaml"
    manifest.write_text(CASES["data that is not base64"][0])
    done = run_bot("validate", str(manifest), cwd=tmp_path)
    assert done.returncode == 1
    assert "data.password is not valid base64" in done.stdout
    assert "move it to stringData" in done.stdout
