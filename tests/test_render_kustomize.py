"""kustomize overlays, rendered by the real kustomize in its sandbox, previewed like plain files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import NetworkTrap
from helpers.gitrepos import Repo, Symlink
from helpers.manifests import configmap, deployment

from bot.core.comments import render_plan
from bot.core.diffs import Action, Change
from bot.core.findings import Severity, Stage
from bot.core.manifests import Source
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.repoconfig import Environment, EnvironmentSource, SourceType
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render
from bot.stages.plan import plan_change

CONFIG = textwrap.dedent("""\
    environments:
      prod:
        path: envs/prod
        cluster: main
        namespace: shop
        source: {type: kustomize}
""")
BASE_OVERLAY = "resources:\n  - ../../base\n"
HEAD_OVERLAY = BASE_OVERLAY + textwrap.dedent("""\
    images:
      - name: registry.example.com/web
        newTag: 1.1.0
    replicas:
      - name: web
        count: 3
""")
PROD = Environment(
    "prod", "envs/prod", "main", "shop", source=EnvironmentSource(SourceType.KUSTOMIZE)
)


def tree(
    overlay: str = BASE_OVERLAY, files: dict[str, str | Symlink] | None = None
) -> dict[str, str | Symlink]:
    return {
        ".gitops-bot.yaml": CONFIG,
        "base/kustomization.yaml": "resources: [deployment.yaml, settings.yaml]\n",
        "base/deployment.yaml": deployment(),
        "base/settings.yaml": configmap(mode="fast"),
        "envs/prod/kustomization.yaml": overlay,
        **(files or {}),
    }


def options(tools: Path, **limits: float) -> RenderOptions:
    return RenderOptions(kustomize=str(tools / "kustomize"), helm=str(tools / "helm"), **limits)


async def plan_env(repo: Repo, base: str, head: str, opts: RenderOptions) -> EnvironmentPlan:
    plan = await plan_change(GitRepo(repo.path), base, head, b"key", render_options=opts)
    assert plan.failure is None, plan.findings
    return plan.environments[0]


def changed(env: EnvironmentPlan) -> list[Change]:
    return [c for c in env.changes if c.action is not Action.UNCHANGED]


def changed_lines(diff: str) -> list[str]:
    return [
        line
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def only_error(env: EnvironmentPlan) -> tuple[str, str | None, int | None, str]:
    errors = [f for f in env.findings if f.severity is Severity.ERROR]
    assert len(errors) == 1, errors
    return errors[0].rule, errors[0].path, errors[0].line, errors[0].message


async def test_an_overlay_shows_exactly_its_replica_and_image_changes(
    repo: Repo, render_tools: Path
) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree(HEAD_OVERLAY))
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None and not env.blocking, env.findings
    [change] = changed(env)
    assert (str(change.key), change.action) == ("Deployment.apps shop/web", Action.UPDATE)
    assert change.source == Source("base/deployment.yaml", 1)
    assert changed_lines(change.diff) == [
        "-  replicas: 1",
        "+  replicas: 3",
        "-      - image: registry.example.com/web:1.0.0",
        "+      - image: registry.example.com/web:1.1.0",
    ]
    assert env.count(Action.UNCHANGED) == 1  # the ConfigMap


async def test_rendered_objects_name_their_file_and_carry_no_origin_annotation(
    repo: Repo, render_tools: Path
) -> None:
    overlay = BASE_OVERLAY + "configMapGenerator:\n  - name: flags\n    literals: [beta=on]\n"
    commit = repo.commit(tree(overlay))
    request = RenderRequest(GitRepo(repo.path), commit, PROD, "1.33", options(render_tools))
    loaded = (await render(request)).loaded
    assert loaded.findings == ()
    sources = {str(m.key): m.source for m in loaded.manifests}
    assert sources["Deployment.apps shop/web"] == Source("base/deployment.yaml", 1)
    assert sources["ConfigMap shop/settings"] == Source("base/settings.yaml", 1)
    generated = next(k for k in sources if k.startswith("ConfigMap shop/flags-"))
    assert sources[generated] == Source("envs/prod/kustomization.yaml", 3)
    for manifest in loaded.manifests:
        assert "annotations" not in manifest.body["metadata"], manifest.key


async def test_a_policy_violation_in_a_rendered_object_names_the_source_file_and_line(
    repo: Repo, render_tools: Path
) -> None:
    base = repo.commit(tree())
    overlay = BASE_OVERLAY + "images:\n  - name: registry.example.com/web\n    newTag: latest\n"
    head = repo.commit(tree(overlay))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, line, message = only_error(env)
    assert (rule, path, line) == ("pinned-images", "base/deployment.yaml", 16)
    assert "latest" in message


@pytest.mark.parametrize(
    "ref",
    [
        "{trap}/base.yaml",
        "git::{trap}/org/repo.git//base?ref=v1",
        "127.0.0.1:{port}/org/repo//base?ref=v1",
    ],
)
async def test_a_remote_base_is_refused_without_touching_the_network(
    repo: Repo, render_tools: Path, network_trap: NetworkTrap, ref: str
) -> None:
    remote = ref.format(trap=network_trap.url, port=network_trap.port)
    base = repo.commit(tree())
    head = repo.commit(tree(f"resources:\n  - ../../base\n  - {remote}\n"))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, line, message = only_error(env)
    assert (rule, path, line) == ("render.remote-refused", "envs/prod/kustomization.yaml", 3)
    assert "without network access" in message and "GITOPS_BOT_RENDER_ALLOW_NETWORK" in message
    assert env.failure is not None and "is remote" in env.failure
    assert network_trap.connections == 0


@pytest.mark.parametrize(
    ("overlay", "rule"),
    [
        ("resources: [../../base, ../../outside.yaml]\n", "render.outside-root"),
        (
            "resources: [../../base]\npatches:\n  - path: ../../outside.yaml\n",
            "render.outside-root",
        ),
        (
            "resources: [../../base]\nconfigMapGenerator:\n  - name: c\n"
            "    files: [key=../../outside.yaml]\n",
            "render.outside-root",
        ),
        ("resources: [../../base, ../../../outside]\n", "render.outside-repository"),
        ("resources: [../../base, /etc/passwd]\n", "render.outside-repository"),
    ],
)
async def test_a_kustomization_reading_outside_its_folder_is_refused(
    repo: Repo, render_tools: Path, overlay: str, rule: str
) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree(overlay, {"outside.yaml": configmap("outside")}))
    env = await plan_env(repo, base, head, options(render_tools))
    found, path, _, message = only_error(env)
    assert (found, path) == (rule, "envs/prod/kustomization.yaml")
    assert "outside" in message
    assert env.failure is not None and not env.changes


@pytest.mark.parametrize(
    ("field", "config"),
    [
        (
            "transformers",
            "apiVersion: example.com/v1\nkind: Run\nmetadata:\n  name: fn\n  annotations:\n"
            "    config.kubernetes.io/function: |\n      exec:\n        path: ./run.sh\n",
        ),
        ("generators", "apiVersion: example.com/v1\nkind: MyPlugin\nmetadata: {name: p}\n"),
    ],
)
async def test_functions_and_external_plugins_are_refused(
    repo: Repo, render_tools: Path, field: str, config: str
) -> None:
    base = repo.commit(tree())
    overlay = f"resources: [../../base]\n{field}: [plugin.yaml]\n"
    head = repo.commit(tree(overlay, {"envs/prod/plugin.yaml": config}))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, line, _ = only_error(env)
    assert (rule, path, line) == ("render.function-refused", "envs/prod/kustomization.yaml", 2)


async def test_builtin_transformers_still_run(repo: Repo, render_tools: Path) -> None:
    label = "apiVersion: builtin\nkind: LabelTransformer\nmetadata: {name: team}\n"
    label += "labels: {team: shop}\nfieldSpecs: [{path: metadata/labels, create: true}]\n"
    base = repo.commit(tree())
    overlay = "resources: [../../base]\ntransformers: [team.yaml]\n"
    head = repo.commit(tree(overlay, {"envs/prod/team.yaml": label}))
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None
    assert {str(c.key) for c in changed(env)} == {
        "Deployment.apps shop/web",
        "ConfigMap shop/settings",
    }


async def test_a_linked_file_is_not_followed(repo: Repo, render_tools: Path) -> None:
    base = repo.commit(tree())
    overlay = "resources: [../../base, extra.yaml]\n"
    head = repo.commit(tree(overlay, {"envs/prod/extra.yaml": Symlink("/etc/hostname")}))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, _, message = only_error(env)
    assert (rule, path) == ("render.link", "envs/prod/kustomization.yaml")
    assert "symbolic link" in message


async def test_a_failed_build_is_reported_with_kustomize_s_message_never_as_no_changes(
    repo: Repo, render_tools: Path
) -> None:
    base = repo.commit(tree())
    patch = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: missing}\nspec: {replicas: 2}\n"
    )
    overlay = "resources: [../../base]\npatches:\n  - path: patch.yaml\n"
    head = repo.commit(tree(overlay, {"envs/prod/patch.yaml": patch}))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, _, message = only_error(env)
    assert (rule, path) == ("render.failed", "envs/prod")
    assert "kustomize failed (exit code 1): Error: no resource matches" in message
    assert "Deployment.v1.apps/missing" in message
    assert "gitops-bot-render-" not in message  # scratch paths are not shown
    assert env.failure is not None and env.failure.startswith("cannot render the head")
    comment = "".join(render_plan(Plan(base, head, (env,))))
    assert "Cannot preview this environment" in comment and "No changes" not in comment


async def test_an_output_over_the_limit_is_stopped_with_a_clear_error(
    repo: Repo, render_tools: Path
) -> None:
    big = configmap("big", blob="x" * 200_000)
    base = repo.commit(tree())
    head = repo.commit(tree(BASE_OVERLAY, {"base/settings.yaml": big}))
    env = await plan_env(repo, base, head, options(render_tools, max_output_bytes=100_000))
    rule, _, _, message = only_error(env)
    assert rule == "render.output-too-large"
    assert "more than 100000 bytes" in message


async def test_a_base_that_cannot_be_rendered_is_a_warning_not_a_silent_empty_base(
    repo: Repo, render_tools: Path
) -> None:
    base = repo.commit(tree("resources: [../../nowhere]\n"))
    head = repo.commit(tree())
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None
    warnings = [f for f in env.findings if f.stage is Stage.RENDER]
    assert [w.rule for w in warnings] == ["render.base-failed"]
    assert warnings[0].severity is Severity.WARNING
    assert {c.action for c in env.changes} == {Action.CREATE}
