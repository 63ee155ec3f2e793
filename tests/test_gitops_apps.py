"""Preview-only units from Argo CD Applications and Flux Kustomizations, on real repositories."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.gitopsrepo import RAW, REMOTE, URL, WEB, tree
from helpers.gitrepos import Repo
from helpers.manifests import configmap
from test_plan import run_plan

from bot.core.gitopsapps import PreviewUnit, image_override
from bot.core.identities import RepoIdentity, normalize_url
from bot.core.repoconfig import ConfigError, parse_config
from bot.core.substitutions import substitute
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render
from bot.stages.controllers import units_at

IDENTITY = RepoIdentity((URL,), branches=("main",))
CONFIG_ENV = "environments:\n  plain: {path: raw, cluster: main}\n"


def options(tools: Path) -> RenderOptions:
    return RenderOptions(kustomize=str(tools / "kustomize"), helm=str(tools / "helm"))


async def units(repo: Repo, commit: str, tools: Path) -> dict[str, PreviewUnit]:
    found = await units_at(GitRepo(repo.path), commit, IDENTITY, "1.33", options(tools))
    return {unit.name: unit for unit in found}


async def rendered(repo: Repo, commit: str, unit: PreviewUnit, tools: Path) -> list[Any]:
    assert unit.environment is not None, unit.reason
    request = RenderRequest(GitRepo(repo.path), commit, unit.environment, "1.33", options(tools))
    result = await render(request)
    assert not result.loaded.findings, result.loaded.findings
    return sorted((dict(m.body) for m in result.loaded.manifests), key=_identity)


def _identity(body: Mapping[str, Any]) -> tuple[str, str]:
    return str(body["kind"]), str(body["metadata"]["name"])


def tool_output(argv: list[str], cwd: Path) -> list[Any]:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True)
    return sorted((d for d in yaml.safe_load_all(done.stdout) if d), key=_identity)


def kustomize_build(repo: Repo, unit: PreviewUnit, tools: Path, where: Path) -> list[Any]:
    """What `kustomize build` gives for the unit's folder with its overrides laid over it."""
    assert unit.environment is not None
    checkout(repo, where / "clone")
    wrapper = json.loads(unit.environment.source.overrides or "{}")
    wrapper["resources"] = [f"../clone/{unit.environment.path}"]
    (where / "work").mkdir()
    (where / "work/kustomization.yaml").write_text(json.dumps(wrapper))
    return tool_output([str(tools / "kustomize"), "build", "work"], where)


def in_namespace(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    metadata = {"namespace": namespace} | body["metadata"]
    return body | {"metadata": metadata}


def checkout(repo: Repo, where: Path) -> Path:
    subprocess.run(["git", "clone", "--quiet", str(repo.path), str(where)], check=True)
    return where


# --- discovery


async def test_each_object_becomes_a_unit_or_says_why_not(repo: Repo, render_tools: Path) -> None:
    found = await units(repo, repo.commit(tree()), render_tools)
    previewed = {name: u.environment.source.type for name, u in found.items() if u.environment}
    assert previewed == {
        "argocd/api": "helm",
        "argocd/raw": "plain",
        "argocd/web": "kustomize",
        "flux/flux-system/infra": "kustomize",
    }
    reasons = {name: u.reason for name, u in found.items() if not u.environment}
    assert reasons == {
        "applicationset/argocd/teams": (
            "the pullRequest generator is not previewed (it needs Argo CD)"
        ),
        "argocd/remote": "its source is another repository (https://github.com/other/elsewhere.git)",
        "flux/flux-system/secrets": (
            "postBuild.substituteFrom Secret flux-system/vault-values is not in Git, so its "
            "values are unknown"
        ),
    }
    web = found["argocd/web"]
    assert (web.destination, web.origin) == ("https://kubernetes.default.svc shop", "apps/web.yaml")
    assert web.environment and not web.environment.apply_on_merge and not web.environment.prune


async def test_a_pinned_revision_and_an_unknown_url_are_not_previewed(
    repo: Repo, render_tools: Path
) -> None:
    pinned = tree({"apps/web.yaml": WEB.replace("HEAD", "v1.2.0")})
    found = await units(repo, repo.commit(pinned), render_tools)
    assert "'v1.2.0' does not follow" in found["argocd/web"].reason
    anywhere = RepoIdentity(any_url=True)
    commit = repo.git("rev-parse", "HEAD")
    every = await units_at(GitRepo(repo.path), commit, anywhere, "1.33", options(render_tools))
    assert "argocd/remote" in {u.name for u in every if u.environment}


def test_repository_urls_match_whatever_their_form() -> None:
    forms = [
        "https://git.example.com/team/deploy.git",
        "https://git.example.com/Team/deploy/",
        "ssh://git@git.example.com/team/deploy",
        "git@git.example.com:team/deploy.git",
    ]
    assert {normalize_url(form) for form in forms} == {"git.example.com/team/deploy"}
    assert not IDENTITY.owns("https://git.example.com/team/other.git")


def test_argo_cd_image_overrides_become_kustomize_images() -> None:
    assert image_override("nginx:1.27") == {"name": "nginx", "newTag": "1.27"}
    assert image_override("nginx=mirror:5000/nginx:1.27") == {
        "name": "nginx",
        "newName": "mirror:5000/nginx",
        "newTag": "1.27",
    }
    assert image_override("nginx@sha256:abc") == {"name": "nginx", "digest": "sha256:abc"}


def test_flux_substitution_follows_its_documented_forms() -> None:
    kept = b"---\nmetadata:\n  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}\n"
    kept += b"e: ${X}\n"
    text = b"a: ${X}\nb: ${Y:=dflt}\nc: $${X}\nd: ${Z}\ne: ${Y:-other}\n" + kept
    assert substitute(text, {"X": "1"}) == b"a: 1\nb: dflt\nc: ${X}\nd: \ne: other\n" + kept


def test_the_switches_stand_without_environments_but_not_alone() -> None:
    config = parse_config("argocd: true\nrepo_urls: ['*']\n")
    assert (config.argocd, config.flux, config.environments, config.repo_urls) == (
        True,
        False,
        (),
        ("*",),
    )
    with pytest.raises(ConfigError, match="turn on argocd: true"):
        parse_config("kubernetes_version: '1.33'\n")


# --- rendering, compared with the real tools


async def test_argo_cd_kustomize_overrides_match_kustomize_build(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    commit = repo.commit(tree())
    unit = (await units(repo, commit, render_tools))["argocd/web"]
    expected = kustomize_build(repo, unit, render_tools, tmp_path)
    got = await rendered(repo, commit, unit, render_tools)
    # Argo CD applies an object without a namespace to the destination's, as the plan shows it
    assert got == [in_namespace(body, "shop") for body in expected]
    deployment = next(body for body in got if body["kind"] == "Deployment")
    assert deployment["metadata"]["name"] == "prod-web"
    assert deployment["metadata"]["labels"]["team"] == "shop"
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "mirror.example.com/web:2.0.0"


async def test_argo_cd_helm_values_match_helm_template(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    commit = repo.commit(tree())
    unit = (await units(repo, commit, render_tools))["argocd/api"]
    where = checkout(repo, tmp_path / "clone")
    (tmp_path / "inline.yaml").write_text("greeting: inline\n")
    argv = [str(render_tools / "helm"), "template", "api-prod", "charts/api", "--namespace", "shop"]
    argv += ["--values", "charts/api/values-prod.yaml", "--values", str(tmp_path / "inline.yaml")]
    argv += ["--set", "replicas=4", "--set-string", "tag=1.10", "--kube-version", "1.33"]
    expected = tool_output(argv, where)
    [got] = await rendered(repo, commit, unit, render_tools)
    assert [got] == expected
    assert got["metadata"] == {
        "name": "api-prod",
        "namespace": "shop",
        "labels": {"file": "prod", "greeting": "inline"},
    }
    assert got["spec"]["replicas"] == 4
    assert got["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":1.10")


async def test_argo_cd_directory_recurses_and_excludes(repo: Repo, render_tools: Path) -> None:
    commit = repo.commit(tree())
    unit = (await units(repo, commit, render_tools))["argocd/raw"]
    names = [body["metadata"]["name"] for body in await rendered(repo, commit, unit, render_tools)]
    assert names == ["one", "two"]
    flat = tree({"apps/raw.yaml": RAW.replace("recurse: true", "recurse: false")})
    commit = repo.commit(flat)
    unit = (await units(repo, commit, render_tools))["argocd/raw"]
    names = [body["metadata"]["name"] for body in await rendered(repo, commit, unit, render_tools)]
    assert names == ["one"]


async def test_flux_overrides_match_kustomize_build_then_substitute(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    commit = repo.commit(tree())
    unit = (await units(repo, commit, render_tools))["flux/flux-system/infra"]
    built = kustomize_build(repo, unit, render_tools, tmp_path)
    region, job = await rendered(repo, commit, unit, render_tools)
    assert job == built[1]  # the substitute: disabled annotation keeps ${REGION}
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "${REGION}"]
    assert region == built[0] | {
        "data": {
            "region": "eu-1",
            "zone": "b",
            "fallback": "fallback",
            "literal": "${REGION}",
            "patched": "yes",
        }
    }
    assert region["metadata"] == {"name": "x-region", "namespace": "infra"}


# --- the plan, end to end


@pytest.fixture(autouse=True)
def tools_for_the_cli(render_tools: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`gitops-bot plan` as a subprocess finds the real kustomize and helm through its settings."""
    monkeypatch.setenv("GITOPS_BOT_KUSTOMIZE_COMMAND", str(render_tools / "kustomize"))
    monkeypatch.setenv("GITOPS_BOT_HELM_COMMAND", str(render_tools / "helm"))


def plan_json(repo: Repo, base: str, head: str, *extra: str) -> dict[str, Any]:
    done = run_plan(repo.path, base, head, "json", "--repo-url", URL, "--branch", "main", *extra)
    assert done.returncode in (0, 1), done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def environments(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        env["name"]: {k: v for k, v in env["counts"].items() if v} for env in data["environments"]
    }


NOT_PREVIEWED = [
    "not previewed: applicationset/argocd/teams (declared in apps/teams.yaml): "
    "the pullRequest generator is not previewed (it needs Argo CD)",
    "not previewed: argocd/remote (declared in apps/remote.yaml): its source is another "
    "repository (https://github.com/other/elsewhere.git)",
    "not previewed: flux/flux-system/secrets (declared in clusters/prod/flux.yaml): "
    "postBuild.substituteFrom Secret flux-system/vault-values is not in Git, so its values "
    "are unknown",
]


def test_without_a_config_only_the_affected_unit_is_previewed(repo: Repo) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree({"charts/api/values-prod.yaml": "file: changed\n"}))
    data = plan_json(repo, base, head)
    assert data["failure"] is None and not data["blocking"], data
    assert environments(data) == {"argocd/api": {"update": 1}}
    [api] = data["environments"]
    assert api["cluster"] == "https://kubernetes.default.svc"
    assert [c["object"] for c in api["changes"]] == ["Deployment.apps shop/api-prod"]
    assert "+    file: changed" in api["changes"][0]["diff"]
    assert data["notes"][1:] == [
        "3 Argo CD or Flux unit(s) not affected by this change (none of their inputs "
        "changed), so not rendered",
        *NOT_PREVIEWED,
    ]
    assert data["notes"][0].startswith("no .gitops-bot.yaml at the base commit")


def test_a_shared_base_change_previews_every_unit_that_reaches_it(repo: Repo) -> None:
    shared = {"base/settings.yaml": configmap(mode="slow")}
    both = {
        **shared,
        "envs/stage/kustomization.yaml": "resources: [../../base]\n",
        "apps/stage.yaml": WEB.replace("name: web", "name: stage").replace(
            "envs/prod", "envs/stage"
        ),
    }
    base = repo.commit(tree(both | {"base/settings.yaml": configmap(mode="fast")}))
    head = repo.commit(tree(both))
    data = plan_json(repo, base, head, "--format", "json")
    assert environments(data) == {
        "argocd/stage": {"unchanged": 1, "update": 1},
        "argocd/web": {"unchanged": 1, "update": 1},
    }
    assert data["notes"][1].startswith("3 Argo CD or Flux unit(s) not affected")


def test_a_new_application_creates_everything_it_deploys(repo: Repo) -> None:
    base = repo.commit({"apps/web.yaml": WEB.replace("path: envs/prod", "path: envs/none")})
    head = repo.commit(tree())
    data = plan_json(repo, base, head)
    assert environments(data)["argocd/web"] == {"create": 2}
    assert environments(data)["flux/flux-system/infra"] == {"create": 2}


def test_the_comment_has_a_section_per_unit_and_lists_the_others(repo: Repo) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree({"charts/api/values-prod.yaml": "file: changed\n", "raw/one.yaml": ""}))
    done = run_plan(repo.path, base, head, "markdown", "--repo-url", URL, "--branch", "main")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "#### Environment `argocd/api` → cluster `https://kubernetes.default.svc`" in done.stdout
    assert "#### Environment `argocd/raw`" in done.stdout
    assert "#### Environment `argocd/web`" not in done.stdout
    assert "2 Argo CD or Flux unit(s) not affected" in done.stdout.replace("&#50;", "2")
    assert "the pullRequest generator is not previewed (it needs Argo CD)" in done.stdout


def test_a_config_switch_previews_one_controller_beside_environments(repo: Repo) -> None:
    config = CONFIG_ENV + "flux: true\nrepo_urls: [ssh://git@git.example.com/team/deploy]\n"
    base = repo.commit(tree({".gitops-bot.yaml": config}))
    head = repo.commit(
        tree({".gitops-bot.yaml": config, "infra/region.yaml": configmap("region", a="b")})
    )
    done = run_plan(repo.path, base, head, "json", "--branch", "main")
    data = json.loads(done.stdout)
    assert environments(data) == {
        "flux/flux-system/infra": {"update": 1, "unchanged": 1},
        "plain": {"unchanged": 4},
    }
    # Every unit is affected, so no "not affected" count; Argo CD objects are not looked at.
    assert data["notes"] == [NOT_PREVIEWED[2]]


def test_without_a_config_or_such_objects_the_config_is_missing(repo: Repo) -> None:
    commit = repo.commit({"app.yaml": configmap()})
    data = plan_json(repo, commit, commit)
    assert data["failure"] == ".gitops-bot.yaml at the base commit cannot be used"
    assert data["findings"][0]["rule"] == "config.missing"


def test_a_removed_application_leaves_its_objects_to_its_controller(repo: Repo) -> None:
    base = repo.commit(tree())
    head = repo.commit({k: v for k, v in tree().items() if k != "apps/web.yaml"})
    data = plan_json(repo, base, head, "--env", "argocd/web")
    [web] = data["environments"]
    assert (web["name"], {k: v for k, v in web["counts"].items() if v}) == (
        "argocd/web",
        {"orphan": 2},
    )
    [warning] = web["findings"]
    assert warning["rule"] == "unit.removed"
    assert "depends on its controller" in warning["message"]


# --- affected units that cannot be previewed


def test_a_change_below_a_unit_that_cannot_be_previewed_is_not_ready_to_merge(
    repo: Repo,
) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree({"secrets/kustomization.yaml": "resources: [token.yaml]\n"}))
    data = plan_json(repo, base, head)
    assert not data["blocking"] and environments(data) == {}
    assert data["unpreviewed"] == [
        {
            "name": "flux/flux-system/secrets",
            "origin": "clusters/prod/flux.yaml",
            "reason": "postBuild.substituteFrom Secret flux-system/vault-values is not in Git, "
            "so its values are unknown",
        }
    ]
    # Listed once, as affected; the untouched ones stay notes and change nothing.
    assert NOT_PREVIEWED[2] not in data["notes"]
    assert NOT_PREVIEWED[:2] == data["notes"][-2:]
    done = run_plan(repo.path, base, head, "markdown", "--repo-url", URL, "--branch", "main")
    heading = done.stdout.splitlines()[2]
    assert heading == "### gitops-bot plan: ⚠️ 1 affected application could not be previewed"
    assert "ready to merge" not in done.stdout


def test_a_redefined_unit_that_cannot_be_previewed_is_affected(repo: Repo) -> None:
    moved = REMOTE.replace("path: deploy", "path: deploy/v2")
    base = repo.commit(tree())
    head = repo.commit(tree({"apps/remote.yaml": moved}))
    data = plan_json(repo, base, head)
    text = run_plan(repo.path, base, head, "text", "--repo-url", URL, "--branch", "main").stdout
    assert [u["name"] for u in data["unpreviewed"]] == ["argocd/remote"]
    assert text.splitlines()[0].endswith(": INCOMPLETE")
    assert "affected, not previewed: argocd/remote (declared in apps/remote.yaml)" in text


def test_units_the_change_leaves_alone_do_not_change_the_verdict(repo: Repo) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree({"charts/api/values-prod.yaml": "file: changed\n"}))
    data = plan_json(repo, base, head)
    assert data["unpreviewed"] == [] and len(data["notes"]) == 5
