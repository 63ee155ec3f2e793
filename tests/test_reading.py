"""Nothing outside the checkout is read: links, '..' and absolute paths are refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.gitrepos import Repo, Symlink
from helpers.manifests import CONFIG, configmap, deployment

from bot.core.documents import Limits
from bot.git.repos import GitRepo
from bot.git.sources import read_commit_folder, read_local_paths


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def plan_json(repo: Repo, base: str, head: str) -> tuple[int, dict[str, object]]:
    done = run_cli(
        "plan", "--repo", str(repo.path), "--base", base, "--head", head, "--format", "json"
    )
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def outside_secret(tmp_path: Path) -> Path:
    target = tmp_path / "outside" / "stolen.yaml"
    target.parent.mkdir()
    target.write_text(configmap("stolen", token="do-not-read-me"))
    return target


def test_symlink_in_commit_to_file_outside_is_reported_not_read(
    repo: Repo, outside_secret: Path
) -> None:
    base = repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    head = repo.commit(
        {
            ".gitops-bot.yaml": CONFIG,
            "deploy/web.yaml": deployment(),
            "deploy/stolen.yaml": Symlink(str(outside_secret)),
            "deploy/folder": Symlink("../../.."),
        }
    )
    code, plan = plan_json(repo, base, head)
    assert code == 1
    text = json.dumps(plan)
    assert "do-not-read-me" not in text
    [env] = plan["environments"]  # type: ignore[index]
    rules = {(f["path"], f["rule"]) for f in env["findings"]}
    assert ("deploy/stolen.yaml", "manifest.symlink") in rules
    assert ("deploy/folder", "manifest.symlink") in rules


def test_local_validate_reports_symlinks_and_does_not_follow_them(
    tmp_path: Path, outside_secret: Path
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "web.yaml").write_text(deployment())
    (checkout / "stolen.yaml").symlink_to(outside_secret)
    (checkout / "linked-dir").symlink_to(outside_secret.parent)
    done = run_cli("validate", str(checkout))
    assert done.returncode == 1
    assert "do-not-read-me" not in done.stdout + done.stderr
    assert f"{checkout}/stolen.yaml: error: [manifest.symlink]" in done.stdout
    assert f"{checkout}/linked-dir: error: [manifest.symlink]" in done.stdout


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("../outside", "must not contain '..'"),
        ("deploy/../../outside", "must not contain '..'"),
        ("/etc/kubernetes", "must be a relative path inside the repository"),
    ],
)
def test_config_paths_outside_the_checkout_are_refused(repo: Repo, path: str, says: str) -> None:
    config = CONFIG.replace("path: deploy", f"path: {path}")
    base = repo.commit({".gitops-bot.yaml": config, "deploy/web.yaml": deployment()})
    code, plan = plan_json(repo, base, base)
    assert code == 1
    assert plan["failure"] == ".gitops-bot.yaml at the base commit cannot be used"
    [finding] = plan["findings"]  # type: ignore[misc]
    assert says in finding["message"] and "environments.prod.path" in finding["message"]


def test_policy_paths_outside_the_checkout_are_refused(repo: Repo) -> None:
    config = CONFIG + "policies: [../../etc]\n"
    base = repo.commit({".gitops-bot.yaml": config, "deploy/web.yaml": deployment()})
    code, plan = plan_json(repo, base, base)
    assert code == 1
    assert "policies[0]" in plan["findings"][0]["message"]  # type: ignore[index]


async def test_oversized_file_in_a_commit_is_refused_before_reading(repo: Repo) -> None:
    big = configmap("big", blob="x" * 5_000)
    commit = repo.commit({"deploy/big.yaml": big, "deploy/web.yaml": deployment()})
    files, refused = await read_commit_folder(
        GitRepo(repo.path), commit, "deploy", Limits(max_file_bytes=1_000)
    )
    assert [f.path for f in files] == ["deploy/web.yaml"]
    assert [(f.path, f.rule) for f in refused] == [("deploy/big.yaml", "yaml.file-too-large")]


async def test_only_the_named_folder_is_read(repo: Repo) -> None:
    commit = repo.commit(
        {
            "deploy/web.yaml": deployment(),
            "deploy-other/x.yaml": configmap(),
            "deploy/notes.txt": "not a manifest",
            "deploy/sub/cm.json": json.dumps(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "j"}}
            ),
        }
    )
    files, refused = await read_commit_folder(GitRepo(repo.path), commit, "deploy")
    assert sorted(f.path for f in files) == ["deploy/sub/cm.json", "deploy/web.yaml"]
    assert refused == ()


def test_oversized_local_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text(configmap("big", blob="x" * 5_000))
    files, refused = read_local_paths([tmp_path], Limits(max_file_bytes=1_000))
    assert files == ()
    assert refused[0].rule == "yaml.file-too-large"


def test_submodule_in_commit_is_reported(repo: Repo, tmp_path: Path) -> None:
    inner = Repo(tmp_path / "inner")
    inner_commit = inner.commit({"x.yaml": configmap()})
    repo.commit({".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment()})
    repo.git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "--quiet",
        str(inner.path),
        "deploy/vendored",
    )
    repo.git("commit", "--quiet", "-m", "vendor")
    head = repo.git("rev-parse", "HEAD")
    code, plan = plan_json(repo, "HEAD~1", head)
    env = plan["environments"][0]  # type: ignore[index]
    assert ("deploy/vendored", "manifest.submodule") in {
        (f["path"], f["rule"]) for f in env["findings"]
    }
    assert code == 1 and inner_commit
