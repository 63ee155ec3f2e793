"""Files in a plain environment that are not objects: `exclude:`, tool files skipped or refused."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
from helpers.gitrepos import Repo, Symlink
from helpers.manifests import configmap, crd, deployment
from test_plan import run_plan
from test_reading import run_cli

from bot.core.globs import GlobError, compile_glob
from bot.core.repoconfig import ConfigError, parse_config

FLUX_CRD = crd(
    "kustomize.toolkit.fluxcd.io",
    "Kustomization",
    "{type: object, x-kubernetes-preserve-unknown-fields: true}",
)
FLUX_SYNC = textwrap.dedent("""\
    apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: flux-system, namespace: flux-system}
    spec: {interval: 10m, path: ./clusters/prod, prune: true}
""")
LIST = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
LIST += "resources: [gotk-components.yaml, gotk-sync.yaml]\n"


def config(path: str, *extra: str) -> str:
    lines = "".join(f"    {line}\n" for line in extra)
    return f"environments:\n  prod:\n    path: {path}\n    cluster: main\n{lines}"


def plan(repo: Repo, tree: dict[str, str | bytes | Symlink]) -> tuple[int, dict[str, Any]]:
    """Plan a pull request that adds `tree` to a repository holding only its config."""
    base = repo.commit({".gitops-bot.yaml": tree[".gitops-bot.yaml"]})
    done = run_plan(repo.path, base, repo.commit(tree), "json")
    data = json.loads(done.stdout)
    [env] = data["environments"]
    return done.returncode, env


def errors(env: dict[str, Any]) -> list[tuple[str | None, str, str]]:
    return [
        (f["path"], f["rule"], f["message"]) for f in env["findings"] if f["severity"] == "error"
    ]


def skipped(env: dict[str, Any]) -> dict[str, str]:
    return {s["path"]: s["reason"] for s in env["skipped"]}


def created(env: dict[str, Any]) -> set[str]:
    return {c["object"] for c in env["changes"] if c["action"] == "create"}


def test_a_flux_cluster_folder_plans_its_objects_and_notes_flux_s_kustomization(
    repo: Repo,
) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("clusters/prod"),
        "clusters/prod/flux-system/kustomization.yaml": LIST,
        "clusters/prod/flux-system/gotk-components.yaml": FLUX_CRD,
        "clusters/prod/flux-system/gotk-sync.yaml": FLUX_SYNC,
        "clusters/prod/settings.yaml": configmap(),
    }
    code, env = plan(repo, tree)
    assert code == 0 and errors(env) == [], env["findings"]
    assert skipped(env) == {
        "clusters/prod/flux-system/kustomization.yaml": "kustomize's list of the files beside "
        "it, which are read as they are"
    }
    assert "Kustomization.kustomize.toolkit.fluxcd.io flux-system/flux-system" in created(env)
    text = run_plan(repo.path, "HEAD~1", "HEAD", "text").stdout
    assert "not read: clusters/prod/flux-system/kustomization.yaml: kustomize's list" in text
    markdown = run_plan(repo.path, "HEAD~1", "HEAD", "markdown").stdout
    assert "Not read as manifests (1;" in markdown
    assert "<code>clusters/prod/flux-system/kustomization.yaml</code>" in markdown


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml", "Kustomization"])
def test_a_kustomization_at_the_root_of_a_plain_environment_is_refused(
    repo: Repo, name: str
) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy"),
        f"deploy/{name}": "resources: [web.yaml]\nnamePrefix: prod-\n",
        "deploy/web.yaml": deployment(),
    }
    code, env = plan(repo, tree)
    [(path, rule, message)] = errors(env)
    assert code == 1 and (path, rule) == (f"deploy/{name}", "manifest.tool-file")
    assert "set `source: {type: kustomize}`" in message and f"`exclude: [{name}]`" in message
    assert "metadata.name" not in json.dumps(env)


def test_excluding_the_root_kustomization_reads_the_rest_as_plain_files(repo: Repo) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy", "exclude: [kustomization.yaml]"),
        "deploy/kustomization.yaml": "resources: [web.yaml]\n",
        "deploy/web.yaml": deployment(),
    }
    code, env = plan(repo, tree)
    assert code == 0 and errors(env) == [] and env["skipped"] == []
    assert created(env) == {"Deployment.apps default/web"}


def test_a_kustomization_with_any_apiversion_file_name_counts_but_flux_s_object_does_not(
    repo: Repo,
) -> None:
    component = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy"),
        "deploy/team/component.yaml": component + "patches: [{path: p.yaml}]\n",
        "deploy/flux/kustomization.yaml": FLUX_SYNC,
        "deploy/flux/crd.yaml": FLUX_CRD,
    }
    code, env = plan(repo, tree)
    [(path, rule, message)] = errors(env)
    assert code == 1 and (path, rule) == ("deploy/team/component.yaml", "manifest.tool-file")
    assert "changes or adds to what it lists (patches)" in message
    assert "Make deploy/team/ an environment of its own" in message
    assert "`exclude: [team/**]`" in message
    assert "Kustomization.kustomize.toolkit.fluxcd.io flux-system/flux-system" in created(env)


def test_a_nested_kustomization_reaching_outside_its_folder_is_refused(repo: Repo) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy"),
        "deploy/app/kustomization.yaml": "resources: [web.yaml, ../../base]\n",
        "deploy/app/web.yaml": deployment(),
    }
    code, env = plan(repo, tree)
    [(_, _, message)] = errors(env)
    assert code == 1 and "(resources: ../../base)" in message


def test_a_nested_helm_chart_is_skipped_whole_with_one_note(repo: Repo) -> None:
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("."),
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        "charts/web/values.yaml": "replicas: 2\n",
        "charts/web/values-prod.yaml": "replicas: 3\n",
        "charts/web/templates/cm.yaml": template,
        "deploy/web.yaml": deployment(),
    }
    code, env = plan(repo, tree)
    assert code == 0 and errors(env) == [], env["findings"]
    notes = skipped(env)
    assert notes["charts/web/"].startswith("a Helm chart (4 files): its templates and values")
    assert "`source: {type: helm}`" in notes["charts/web/"]
    assert notes[".gitops-bot.yaml"] == "this bot's own configuration, not a Kubernetes object"
    assert created(env) == {"Deployment.apps default/web"}


def test_a_plain_environment_on_a_chart_folder_is_refused_naming_the_helm_source(
    repo: Repo,
) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("charts/web"),
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        "charts/web/values.yaml": "replicas: 2\n",
        "charts/web/templates/cm.yaml": "{{ broken\n",
    }
    code, env = plan(repo, tree)
    [(path, rule, message)] = errors(env)
    assert code == 1 and (path, rule) == ("charts/web/Chart.yaml", "manifest.tool-file")
    assert "is a Helm chart" in message and "set `source: {type: helm}`" in message


def test_ci_and_linter_files_at_the_root_are_skipped_with_notes(repo: Repo) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("."),
        ".github/workflows/ci.yaml": "on: push\njobs: {}\n",
        ".github/dependabot.yml": "version: 2\n",
        ".gitlab-ci.yml": "stages: [test]\n",
        ".pre-commit-config.yaml": "repos: []\n",
        ".sops.yaml": "creation_rules: []\n",
        "web.yaml": deployment(),
    }
    code, env = plan(repo, tree)
    assert code == 0 and errors(env) == [], env["findings"]
    assert set(skipped(env)) == {
        ".github/workflows/ci.yaml",
        ".github/dependabot.yml",
        ".gitlab-ci.yml",
        ".pre-commit-config.yaml",
        ".sops.yaml",
        ".gitops-bot.yaml",
    }
    assert skipped(env)[".gitlab-ci.yml"] == "GitLab CI's configuration, not a Kubernetes object"


def test_exclude_globs_leave_files_and_links_unread(repo: Repo) -> None:
    globs = 'exclude: ["docs/**", "**/*.example.yaml", "tests", "ci/*.yml"]'
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy", globs),
        "deploy/web.yaml": deployment(),
        "deploy/docs/deep/er/notes.yaml": "a: [\n",
        "deploy/docs/link": Symlink("/etc"),
        "deploy/apps/web.example.yaml": "not: an object\n",
        "deploy/web.example.yaml": "not: an object\n",
        "deploy/tests/case.yaml": "not: an object\n",
        "deploy/ci/lint.yml": "not: an object\n",
        "deploy/ci/deeper/kept.yml": configmap(),
    }
    code, env = plan(repo, tree)
    assert code == 0 and errors(env) == [] and env["skipped"] == [], env["findings"]
    assert created(env) == {"Deployment.apps default/web", "ConfigMap default/settings"}


def test_a_values_file_in_a_plain_folder_says_it_is_not_an_object_and_how_to_exclude_it(
    repo: Repo,
) -> None:
    tree: dict[str, str | bytes | Symlink] = {
        ".gitops-bot.yaml": config("deploy"),
        "deploy/values.yaml": "replicas: 2\n",
    }
    code, env = plan(repo, tree)
    [(path, rule, message)] = errors(env)
    assert code == 1 and (path, rule) == ("deploy/values.yaml", "manifest.shape")
    assert "not a Kubernetes object" in message and "`exclude:`" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "source: {type: kustomize}\n    exclude: [x]",
            "environments.prod.exclude: only a plain environment reads files one by one",
        ),
        ("exclude: ['[abc']", "'[abc': '[' opens a character class that never closes"),
        ("exclude: [../secrets]", "exclude[0]: '../secrets' must not contain '..'"),
        ("exclude: [/etc]", "exclude[0]: '/etc' must be a relative path"),
    ],
)
def test_unusable_exclude_settings_are_config_errors(extra: str, expected: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(config("deploy", extra))
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("glob", "inside", "outside"),
    [
        ("docs", ["docs", "docs/a.yaml", "docs/x/y.yaml"], ["docs2/a.yaml", "a/docs/b.yaml"]),
        ("*.yaml", ["a.yaml", "a.yaml/x"], ["d/a.yaml", "a.yml"]),
        ("**/*.yaml", ["a.yaml", "d/e/a.yaml"], ["a.yml"]),
        ("a/**/b.yaml", ["a/b.yaml", "a/x/y/b.yaml"], ["b.yaml", "ab.yaml", "a/xb.yaml"]),
        ("v?.yaml", ["v1.yaml"], ["v10.yaml", "v/.yaml"]),
        ("[!a]*.json", ["b.json"], ["a.json", "x/b.json"]),
        ("docs/", ["docs/a.yaml"], ["docsa"]),
    ],
)
def test_glob_dialect(glob: str, inside: list[str], outside: list[str]) -> None:
    pattern = compile_glob(glob)
    assert [p for p in inside if not pattern.fullmatch(p)] == []
    assert [p for p in outside if pattern.fullmatch(p)] == []


def test_an_unclosed_class_is_a_glob_error() -> None:
    with pytest.raises(GlobError):
        compile_glob("a[b")


def test_validate_names_a_kustomize_file_as_such(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(LIST)
    (tmp_path / "values.yaml").write_text("replicas: 2\n")
    done = run_cli("validate", str(tmp_path))
    assert done.returncode == 1
    assert "kustomization.yaml:1: error: [manifest.shape]" in done.stdout
    assert "kustomize.config.k8s.io/v1beta1 is kustomize's own file" in done.stdout
    assert "values.yaml:1: error: [manifest.shape] this document is not a Kubernetes" in done.stdout
    assert "metadata.name" not in done.stdout
