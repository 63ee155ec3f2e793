"""An environment's path that is missing, removed, or not a folder: `gitops-bot plan` says so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers.githubbot import BotFactory, base_tree
from helpers.gitrepos import Repo, Symlink
from helpers.manifests import configmap, deployment
from test_plan import run_plan

KEEP = "environments:\n  prod: {path: %s, cluster: main, namespace: shop}\n"
PRUNE = "environments:\n  prod: {path: %s, cluster: main, namespace: shop, prune: true}\n"


def objects(folder: str) -> dict[str, str | bytes | Symlink]:
    return {f"{folder}/web.yaml": deployment(), f"{folder}/cm.yaml": configmap()}


def plan(repo: Repo, base: str, head: str) -> tuple[int, dict[str, Any]]:
    """Exit code and JSON output of one plan."""
    done = run_plan(repo.path, base, head, "json")
    return done.returncode, json.loads(done.stdout)


def views(repo: Repo, base: str, head: str) -> tuple[str, str]:
    """The text output and the Markdown comment of the same plan."""
    return tuple(  # type: ignore[return-value]
        run_plan(repo.path, base, head, fmt).stdout for fmt in ("text", "markdown")
    )


def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    [env] = data["environments"]
    return [(f["rule"], f["message"]) for f in env["findings"] if f["severity"] == "error"]


def test_a_typo_in_the_path_is_an_error_that_suggests_the_folder(repo: Repo) -> None:
    tree = {".gitops-bot.yaml": KEEP % "deplyo/guestbook", **objects("deploy/guestbook")}
    base = repo.commit(tree)
    head = repo.commit({**tree, "deploy/guestbook/cm.yaml": configmap(mode="new")})
    code, data = plan(repo, base, head)
    text, markdown = views(repo, base, head)
    assert code == 1 and "BLOCKED" in text and "No changes" not in markdown
    [(rule, message)] = errors(data)
    assert rule == "render.path-missing"
    assert f"path deplyo/guestbook does not exist at commit {head[:12]}" in message
    assert "did you mean deploy/guestbook?" in message
    assert "fix environments.prod.path in .gitops-bot.yaml" in message
    assert data["blocking"] and data["environments"][0]["failure"].startswith("cannot render")
    assert "❌ blocked" in markdown and "deplyo/guestbook does not exist" in markdown


def test_a_path_with_nothing_like_it_names_the_nearest_existing_folder(repo: Repo) -> None:
    tree = {".gitops-bot.yaml": KEEP % "deploy/zzzzzzzzzz", **objects("deploy/web")}
    commit = repo.commit(tree)
    code, data = plan(repo, commit, commit)
    [(_, message)] = errors(data)
    assert code == 1 and "(the nearest existing folder is deploy);" in message


def test_removing_an_environment_s_folder_lists_every_orphan_and_blocks(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": KEEP % "deploy", **objects("deploy")})
    head = repo.commit({".gitops-bot.yaml": KEEP % "deploy", "README.md": "gone"})
    code, data = plan(repo, base, head)
    text, markdown = views(repo, base, head)
    assert code == 1 and text.startswith(f"plan {base[:12]} -> {head[:12]}: BLOCKED")
    [(rule, message)] = errors(data)
    assert rule == "config.environment-removed"
    assert "the pull request removes deploy/, the folder of environment 'prod'" in message
    assert "all 2 objects in it would be left behind, orphaned, in cluster 'main'" in message
    assert data["environments"][0]["counts"]["orphan"] == 2
    assert "the pull request removes deploy/" in markdown


def test_removing_it_with_prune_on_says_everything_would_be_pruned(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": PRUNE % "deploy", **objects("deploy")})
    head = repo.commit({".gitops-bot.yaml": PRUNE % "deploy", "README.md": "gone"})
    code, data = plan(repo, base, head)
    messages = [message for _, message in errors(data)]
    assert code == 1 and data["environments"][0]["counts"]["prune"] == 2
    assert any("all 2 objects in it would be pruned from cluster 'main'" in m for m in messages)


def test_a_folder_replaced_by_a_link_in_the_pull_request_is_an_error(repo: Repo) -> None:
    tree = {".gitops-bot.yaml": KEEP % "deploy", **objects("real")}
    base = repo.commit({**tree, **objects("deploy")})
    head = repo.commit({**tree, "deploy": Symlink("real")})
    code, data = plan(repo, base, head)
    text, markdown = views(repo, base, head)
    assert code == 1 and "BLOCKED" in text
    [(rule, message)] = errors(data)
    assert rule == "render.path-not-folder"
    assert f"deploy is a symbolic link at commit {head[:12]}, not a folder" in message
    assert data["environments"][0]["counts"]["orphan"] == 0
    assert "symbolic link" in markdown and "ready to merge" not in markdown


def test_a_link_on_the_way_to_the_folder_is_named(repo: Repo) -> None:
    tree = {".gitops-bot.yaml": KEEP % "envs/prod", **objects("real/prod"), "envs": Symlink("real")}
    commit = repo.commit(tree)
    code, data = plan(repo, commit, commit)
    [(_, message)] = errors(data)
    assert code == 1 and "envs, on the way to it, is a symbolic link" in message


def test_a_file_where_the_folder_should_be_is_an_error(repo: Repo) -> None:
    commit = repo.commit({".gitops-bot.yaml": KEEP % "deploy", "deploy": deployment()})
    code, data = plan(repo, commit, commit)
    [(rule, message)] = errors(data)
    assert code == 1 and rule == "render.path-not-folder"
    assert "deploy is a file at commit" in message


def test_a_submodule_as_the_folder_is_an_error(repo: Repo, tmp_path: Path) -> None:
    inner = Repo(tmp_path / "inner")
    inner.commit(objects("."))
    base = repo.commit({".gitops-bot.yaml": KEEP % "deploy", **objects("deploy")})
    repo.git("rm", "-r", "--quiet", "deploy")
    repo.git(
        "-c", "protocol.file.allow=always", "submodule", "add", "--quiet", str(inner.path), "deploy"
    )
    repo.git("commit", "--quiet", "-m", "vendor")
    code, data = plan(repo, base, repo.git("rev-parse", "HEAD"))
    [(_, message)] = errors(data)
    assert code == 1 and "deploy is a submodule at commit" in message


def test_a_pull_request_that_creates_the_configured_folder_is_not_blocked(repo: Repo) -> None:
    base = repo.commit({".gitops-bot.yaml": KEEP % "deploy", "README.md": "soon"})
    head = repo.commit({".gitops-bot.yaml": KEEP % "deploy", **objects("deploy")})
    code, data = plan(repo, base, head)
    [env] = data["environments"]
    assert code == 0 and env["counts"]["create"] == 2, env["findings"]
    [finding] = env["findings"]
    assert (finding["severity"], finding["rule"]) == ("warning", "config.environment-created")


async def test_the_pull_request_comment_and_check_run_block_a_removed_or_linked_folder(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit(
        {
            ".gitops-bot.yaml": base_tree()[".gitops-bot.yaml"],
            "deploy/elsewhere/web.yaml": deployment(),
            "deploy/production": Symlink("elsewhere"),
        }
    )
    await bot.deliver("pull_request", bot.pull_request("opened", 9, base, head))
    assert await bot.drain() == 1
    [comment] = bot.fake.comments_on(9)
    assert "❌ blocked" in comment["body"]
    assert "the pull request removes deploy/staging/, the folder of environment" in comment["body"]
    assert "deploy/production is a symbolic link at commit" in comment["body"]
    [run] = bot.fake.check_runs.values()
    assert (run["head_sha"], run["conclusion"]) == (head, "failure")


def test_a_configured_policy_folder_that_is_missing_or_a_link_blocks_the_plan(
    repo: Repo,
) -> None:
    config = KEEP % "deploy" + "policies: [team-policies, linked-policies]\n"
    commit = repo.commit(
        {".gitops-bot.yaml": config, **objects("deploy"), "linked-policies": Symlink("/etc")}
    )
    code, data = plan(repo, commit, commit)
    found = {(f["path"], f["rule"], f["message"]) for f in data["findings"]}
    assert code == 1 and data["blocking"]
    assert (
        ".gitops-bot.yaml",
        "config.invalid",
        "policies: team-policies does not exist at the base commit; fix the path",
    ) in found
    assert any(path == "linked-policies" and "symbolic link" in m for path, _, m in found)


def test_a_kustomize_environment_whose_overlay_folder_is_removed_lists_its_objects(
    repo: Repo, render_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPS_BOT_KUSTOMIZE_COMMAND", str(render_tools / "kustomize"))
    config = "environments:\n  prod: {path: envs/prod, cluster: main, source: {type: kustomize}}\n"
    tree = {".gitops-bot.yaml": config, **objects("base")}
    tree["base/kustomization.yaml"] = "resources: [web.yaml, cm.yaml]\n"
    base = repo.commit({**tree, "envs/prod/kustomization.yaml": "resources: [../../base]\n"})
    head = repo.commit(tree)
    code, data = plan(repo, base, head)
    [(rule, message)] = errors(data)
    assert code == 1 and rule == "config.environment-removed"
    assert "all 2 objects in it would be left behind, orphaned" in message
    assert data["environments"][0]["counts"]["orphan"] == 2
