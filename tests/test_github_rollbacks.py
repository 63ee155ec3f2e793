"""Rollback and promotion pull requests through the real app on the fake GitHub: the bot
makes the branch, commit and pull request through the Git Data API (the fake makes them
with git in the origin repository), the PR's own webhook brings the preview, and a merged
rollback brings the real cluster back."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from asyncio.subprocess import PIPE
from pathlib import Path
from typing import Any

from helpers.githubbot import SLUG, BotFactory, BotHarness, deployment
from helpers.livecluster import LiveEnv, configmap
from test_drift_bot import _merge

from bot.core.audit import AuditEntry
from bot.core.markdown import parse_marker

ALICE = "alice"


def _tree(live_env: LiveEnv, level: str, extra: bool, readme: str) -> dict[str, str | bytes]:
    environment = {"path": "deploy", "cluster": "test", "namespace": live_env.namespace}
    config = {"version": 1, "environments": {"prod": environment | {"prune": True}}}
    tree: dict[str, str | bytes] = {
        ".gitops-bot.yaml": json.dumps(config),
        "README.md": readme,
        "deploy/web.yaml": configmap("web", level=level),
    }
    if extra:
        tree["deploy/extra.yaml"] = configmap("extra", added="yes")
    return tree


async def _command(bot: BotHarness, number: int, text: str, login: str = ALICE) -> None:
    assert (await bot.deliver("issue_comment", bot.comment(number, text, login))).status == 202
    await bot.drain()


def _level(live_env: LiveEnv, name: str) -> str | None:
    live = live_env.configmap(name)
    return None if live is None else str(live["data"].get("level"))


async def test_a_merged_rollback_pull_request_brings_the_cluster_back(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,))
    bot.fake.permissions[ALICE] = "write"
    good = await _merge(bot, 21, _tree(live_env, "1", extra=False, readme="one"))
    bad = await _merge(bot, 22, _tree(live_env, "2", extra=True, readme="two"))
    assert (_level(live_env, "web"), live_env.configmap("extra") is not None) == ("2", True)

    await _command(bot, 22, "/gitops rollback prod")

    [number] = bot.fake.opened
    pull = bot.fake.pulls[number]
    assert pull["base"]["ref"] == "master" and pull["base"]["sha"] == bad
    assert pull["title"] == f"Roll back prod to {good[:12]}"
    body = pull["body"]
    assert f"`{good}`" in body and f"`{bad}`" in body
    records = await bot.services.store.audit_records("prod")
    assert f"audit record #{records[-1].sequence}" in body  # the apply it undoes
    assert f"[#22](https://github.com/{SLUG}/pull/22)" in body
    assert "`deploy/web.yaml`" in body and "`deploy/extra.yaml`" in body
    assert "Warning" not in body  # no CRD on either side
    head = pull["head"]["sha"]
    assert bot.fake.git is not None
    assert bot.fake.git.parents_of(head) == [bad]
    changed = bot.origin.git("diff", "--name-status", bad, head).splitlines()
    assert changed == ["D\tdeploy/extra.yaml", "M\tdeploy/web.yaml"]  # README.md stays "two"
    [reply] = [c for c in bot.fake.comments_on(22) if "opened" in c["body"]]
    assert f"opened [#{number}]({pull['html_url']}): Roll back prod" in reply["body"]

    assert (await bot.deliver("pull_request", bot.opened_by_bot(number))).status == 202
    await bot.drain()
    [preview] = bot.fake.comments_on(number)  # the preview is the PR's first comment
    assert parse_marker(preview["body"], "plan") == 1
    assert f"ConfigMap {live_env.namespace}/extra" in preview["body"]
    assert "crosses a schema change" not in preview["body"]

    merge = bot.fake.merge_button(number)
    assert bot.fake.git.parents_of(merge) == [bad, head]  # a real merge commit
    assert (await bot.deliver("push", bot.merge(number, merge))).status == 202
    await bot.drain()

    assert _level(live_env, "web") == "1"
    assert live_env.configmap("extra") is None  # pruned: the rollback removed its file
    last = (await bot.services.store.audit_records("prod"))[-1].entry
    assert (last.commit, last.result, last.pr_number) == (merge, "succeeded", number)


async def test_rollback_to_a_named_commit_and_its_refusals(
    make_bot: BotFactory, live_env: LiveEnv, tmp_path: Path
) -> None:
    bot = await make_bot(clusters=(live_env.cluster,))
    bot.fake.permissions[ALICE] = "write"
    bot.fake.permissions["mallory"] = "read"
    first = await _merge(bot, 31, _tree(live_env, "1", extra=False, readme="r"))
    await _merge(bot, 32, _tree(live_env, "2", extra=False, readme="r"))
    await _merge(bot, 33, _tree(live_env, "3", extra=False, readme="r"))

    await _command(bot, 33, "/gitops rollback prod", login="mallory")
    await _command(bot, 33, "/gitops rollback staging")
    await _command(bot, 33, "/gitops rollback prod to 0000000")
    assert bot.fake.opened == []
    replies = [c["body"] for c in bot.fake.comments_on(33)]
    assert any("only people with write access" in r for r in replies)
    assert any("there is no environment 'staging'" in r for r in replies)
    assert any("commit 0000000 is not one the environment ran successfully" in r for r in replies)

    await _command(bot, 33, f"/gitops rollback prod to {first[:10]}")
    [number] = bot.fake.opened
    body = bot.fake.pulls[number]["body"]
    assert bot.fake.pulls[number]["title"] == f"Roll back prod to {first[:12]}"
    assert "[#32]" in body and "[#33]" in body  # both applies since are undone


async def test_a_rollback_across_a_crd_change_warns(make_bot: BotFactory, tmp_path: Path) -> None:
    bot = await make_bot()
    bot.fake.permissions[ALICE] = "write"
    config = json.dumps(
        {
            "version": 1,
            "crds": ["crds"],
            "environments": {"prod": {"path": "deploy", "cluster": "x"}},
        }
    )
    old = bot.origin.commit(
        {
            ".gitops-bot.yaml": config,
            "crds/a.yaml": _crd("v1"),
            "deploy/web.yaml": configmap("web", level="1"),
        }
    )
    new = bot.origin.commit(
        {
            ".gitops-bot.yaml": config,
            "crds/a.yaml": _crd("v2"),
            "deploy/web.yaml": configmap("web", level="2"),
        }
    )
    bot.fake.branches["master"] = new
    for sequence, commit in enumerate((old, new)):
        await bot.services.store.add_audit(_succeeded("prod", commit, 40 + sequence))

    on_issue = bot.comment(40, "/gitops rollback prod", ALICE)
    del on_issue["issue"]["pull_request"]  # an issue, not a pull request
    assert (await bot.deliver("issue_comment", on_issue)).status == 202
    await bot.drain()

    [number] = bot.fake.opened
    body = bot.fake.pulls[number]["body"]
    assert "this rollback crosses a schema change" in body and "`crds/a.yaml`" in body
    [reply] = [c for c in bot.fake.comments_on(40) if "opened" in c["body"]]
    assert "crosses a schema change" in reply["body"]
    changed = bot.origin.git("diff", "--name-only", new, bot.fake.pulls[number]["head"]["sha"])
    assert changed == "deploy/web.yaml"  # the CRD itself stays as on the default branch
    assert (await bot.deliver("pull_request", bot.opened_by_bot(number))).status == 202
    await bot.drain()
    [preview] = bot.fake.comments_on(number)
    assert parse_marker(preview["body"], "plan") == 1
    assert "This rollback crosses a schema change" in preview["body"]
    assert "crds/a.yaml" in preview["body"]


def _crd(version: str) -> str:
    return (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
        f"metadata:\n  name: widgets.example.com\n  labels: {{v: {version}}}\n"
    )


def _succeeded(environment: str, commit: str, pr_number: int, **extra: Any) -> AuditEntry:
    return AuditEntry(
        environment=environment,
        cluster="x",
        commit=commit,
        result="succeeded",
        trigger="merge",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        bot_version="test",
        pr_number=pr_number,
        pr_url=f"https://github.com/{SLUG}/pull/{pr_number}",
        repository=f"github:{SLUG}",
        **extra,
    )


WEB = "registry.example.com/web"
API = "registry.example.com/api"


async def test_a_promotion_changes_only_the_image_lines(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await make_bot()
    bot.fake.permissions[ALICE] = "write"
    environments = {
        "staging": {"path": "envs/staging", "cluster": "x", "source": {"type": "kustomize"}},
        "production": {"path": "envs/production", "cluster": "x"},
    }
    production = (
        "# production web: keep replicas at 3\n"
        + deployment("web", f"{WEB}:1.0.0").replace("replicas: 1", "replicas: 3  # peak")
        + "---\n"
        + deployment("api", f'"{API}:2.0.0"').replace("name: api\n", "name: api  # the api\n", 1)
    )
    tree: dict[str, str | bytes] = {
        ".gitops-bot.yaml": json.dumps({"version": 1, "environments": environments}),
        "envs/production/apps.yaml": production,
        "envs/staging/kustomization.yaml": "resources: [apps.yaml]\n",
        "envs/staging/apps.yaml": deployment("web", f"{WEB}:1.0.0")
        + "---\n"
        + deployment("api", f"{API}:2.0.0"),
    }
    bot.origin.commit(tree, "start")
    tree["envs/staging/apps.yaml"] = (
        deployment("web", f"{WEB}:1.4.2") + "---\n" + deployment("api", f"{API}@sha256:{'a' * 64}")
    )
    head = bot.origin.commit(tree, "Merge #51")
    bot.pull_request("opened", 51, head, head)
    bot.merge(51, head)
    bot.fake.branches["master"] = head

    await _command(bot, 51, "/gitops promote staging production")

    [number] = bot.fake.opened
    pull = bot.fake.pulls[number]
    assert bot.fake.git is not None
    assert bot.fake.git.changed_lines(pull["head"]["sha"]) == [
        f"-          image: {WEB}:1.0.0",
        f"+          image: {WEB}:1.4.2",
        f'-          image: "{API}:2.0.0"',
        f'+          image: "{API}@sha256:{"a" * 64}"',
    ]
    body = pull["body"]
    assert f"`{WEB}:1.0.0`" in body and f"`{WEB}:1.4.2`" in body
    assert "[#51](" in body  # the PR that brought the new images to staging
    assert (await bot.deliver("pull_request", bot.opened_by_bot(number))).status == 202
    await bot.drain()
    [preview] = bot.fake.comments_on(number)
    assert parse_marker(preview["body"], "plan") == 1


async def test_the_cli_opens_and_merges_a_break_glass_rollback(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await make_bot(mode="token")
    config = json.dumps(
        {"version": 1, "environments": {"prod": {"path": "deploy", "cluster": "x"}}}
    )
    good = bot.origin.commit(
        {".gitops-bot.yaml": config, "deploy/a.yaml": configmap("a", level="1")}
    )
    bad = bot.origin.commit(
        {".gitops-bot.yaml": config, "deploy/a.yaml": configmap("a", level="2")}
    )
    bot.fake.branches["master"] = bad
    for sequence, commit in enumerate((good, bad)):
        await bot.services.store.add_audit(_succeeded("prod", commit, 80 + sequence))
    assert bot.fake.personal_token is not None
    env = {
        **os.environ,
        "GITOPS_BOT_DATABASE_URL": f"sqlite:///{bot.database}",
        "GITOPS_BOT_GITHUB_API_URL": bot.services.settings.github_api_url,
        "GITOPS_BOT_GITHUB_TOKEN": bot.fake.personal_token,
    }
    command = ["-m", "bot", "rollback", "--env", "prod", "--repository", f"github:{SLUG}"]
    where = ["--repo", str(bot.origin.path), "--branch", "master", "--merge"]

    done = await asyncio.create_subprocess_exec(
        sys.executable, *command, *where, env=env, stdout=PIPE, stderr=PIPE
    )
    out, err = await done.communicate()

    assert done.returncode == 0, err.decode()
    [number] = bot.fake.opened
    pull = bot.fake.pulls[number]
    merge = pull["merge_commit_sha"]
    assert out.decode().splitlines() == [
        f"opened #{number}: Roll back prod to {good[:12]} {pull['html_url']}",
        f"merged #{number} as {merge}; the bot applies it from the push",
    ]
    assert bot.fake.git is not None
    assert bot.fake.git.parents_of(merge) == [bad, pull["head"]["sha"]]
    assert bot.origin.git("show", f"{merge}:deploy/a.yaml") == configmap("a", level="1").strip()
    assert (await bot.deliver("push", bot.merge(number, merge))).status == 202
    await bot.drain()
    last = (await bot.services.store.audit_records("prod"))[-1].entry
    assert (last.commit, last.trigger, last.pr_number) == (merge, "merge", number)

    again = await asyncio.create_subprocess_exec(
        sys.executable, *command, *where[:4], "--to", "abc", env=env, stdout=PIPE, stderr=PIPE
    )
    _, err = await again.communicate()
    assert again.returncode == 3
    assert "'abc' is not a commit id" in err.decode()


async def test_a_helm_promotion_carries_the_named_values_keys(
    make_bot: BotFactory, tmp_path: Path
) -> None:
    bot = await make_bot()
    bot.fake.permissions[ALICE] = "write"

    def helm(name: str) -> dict[str, Any]:
        source = {"type": "helm", "values": [f"values/{name}.yaml"]}
        return {"path": "chart", "cluster": "x", "source": source, "image_values": ["image.tag"]}

    config = {"version": 1, "environments": {"staging": helm("staging"), "prod": helm("prod")}}
    values = "replicas: 2  # two\nimage:\n  repository: r/web\n  tag: {tag}\n"
    tree: dict[str, str | bytes] = {
        ".gitops-bot.yaml": json.dumps(config),
        "chart/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        "chart/values.yaml": values.format(tag="0.0.1"),
        "chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n"
        "data:\n  image: {{ .Values.image.repository }}:{{ .Values.image.tag }}\n",
        "values/staging.yaml": values.format(tag="2.1.0"),
        "values/prod.yaml": "# prod values\n" + values.format(tag="2.0.0"),
    }
    head = bot.origin.commit(tree, "Merge #61")
    bot.fake.branches["master"] = head

    await _command(bot, 61, "/gitops promote staging prod")

    [number] = bot.fake.opened
    assert bot.fake.git is not None
    assert bot.fake.git.changed_lines(bot.fake.pulls[number]["head"]["sha"]) == [
        "-  tag: 2.0.0",
        "+  tag: 2.1.0",
    ]
    assert "`values/prod.yaml:5`" in bot.fake.pulls[number]["body"]
