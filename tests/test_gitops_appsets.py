"""ApplicationSets: generators and templates on real repositories, renders against the tools."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers.gitopsrepo import URL
from helpers.gitrepos import Repo
from helpers.manifests import configmap, deployment
from test_gitops_apps import (
    checkout,
    environments,
    in_namespace,
    kustomize_build,
    options,
    plan_json,
    rendered,
    run_plan,
    tool_output,
    tools_for_the_cli,  # noqa: F401  (autouse: the CLI in a subprocess finds kustomize and helm)
)

from bot.config.settings import SettingsError, load_settings
from bot.core.appsets import GeneratorError, GitView, generate
from bot.core.apptemplates import TemplateError, TemplateStyle, render_text
from bot.core.gitopsapps import PreviewUnit
from bot.core.identities import ArgoCluster, RepoIdentity
from bot.git.repos import GitRepo
from bot.stages.controllers import units_at

CLUSTERS = (
    ArgoCluster("prod-eu", "https://prod-eu.example.com", (("env", "prod"),)),
    ArgoCluster("stage", "https://stage.example.com", (("env", "stage"),)),
)
IDENTITY = RepoIdentity((URL,), branches=("main",), clusters=CLUSTERS)


def appset(name: str, generators: str, template: str, go: bool = False) -> str:
    head = textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata: {{name: {name}, namespace: argocd}}
        spec:
          goTemplate: {"true" if go else "false"}
          generators:
        """)
    return (
        head
        + textwrap.indent(textwrap.dedent(generators), "    ")
        + "  template:\n"
        + textwrap.indent(textwrap.dedent(template), "    ")
    )


TEMPLATE = f"""\
metadata: {{name: "{{{{path.basename}}}}"}}
spec:
  project: default
  source: {{repoURL: "{URL}", targetRevision: HEAD, path: "{{{{path}}}}"}}
  destination: {{server: https://kubernetes.default.svc, namespace: "{{{{path.basename}}}}"}}
"""


def services(*names: str) -> dict[str, str]:
    files = {"base/kustomization.yaml": "resources: [deployment.yaml]\n"}
    files["base/deployment.yaml"] = deployment()
    for name in names:
        files[f"services/{name}/kustomization.yaml"] = (
            f"resources: [../../base]\nnamePrefix: {name}-\n"
        )
    return files


async def units(repo: Repo, commit: str, tools: Path) -> dict[str, PreviewUnit]:
    found = await units_at(GitRepo(repo.path), commit, IDENTITY, "1.33", options(tools))
    return {unit.name: unit for unit in found}


# --- generators, on a real repository


async def test_git_directories_with_an_exclude_make_one_app_per_folder(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    generators = f"""\
    - git:
        repoURL: {URL}
        revision: HEAD
        directories: [{{path: "services/*"}}, {{path: services/legacy, exclude: true}}]
    """
    files = services("web", "api", "legacy") | {
        "apps/set.yaml": appset("svc", generators, TEMPLATE)
    }
    commit = repo.commit(files)
    found = await units(repo, commit, render_tools)
    assert sorted(found) == ["argocd/api", "argocd/web"]
    web = found["argocd/web"]
    assert web.environment is not None and web.origin == "apps/set.yaml"
    assert (web.environment.path, web.environment.namespace) == ("services/web", "web")
    expected = kustomize_build(repo, web, render_tools, tmp_path)
    got = await rendered(repo, commit, web, render_tools)
    assert got == [in_namespace(body, "web") for body in expected]
    assert got[0]["metadata"]["name"] == "web-web"


async def test_git_files_expose_their_keys_and_path(repo: Repo, render_tools: Path) -> None:
    generators = f"""\
    - git:
        repoURL: {URL}
        revision: main
        files: [{{path: "config/**/app.json"}}, {{path: "config/*/app.yaml"}}]
    """
    template = f"""\
    metadata: {{name: "{{{{app.name}}}}-{{{{path.basename}}}}"}}
    spec:
      project: default
      source: {{repoURL: "{URL}", targetRevision: HEAD, path: "services/{{{{app.name}}}}"}}
      destination: {{name: "{{{{cluster}}}}", namespace: "{{{{path[1]}}}}"}}
    """
    files = services("web", "api") | {
        "apps/set.yaml": appset("cfg", generators, template),
        "config/eu/app.json": '{"app": {"name": "web"}, "cluster": "prod-eu"}',
        "config/us/app.yaml": (
            "- {app: {name: api}, cluster: us}\n- {app: {name: web}, cluster: us}\n"
        ),
    }
    found = await units(repo, repo.commit(files), render_tools)
    assert {n: u.destination for n, u in found.items()} == {
        "argocd/api-us": "us us",
        "argocd/web-eu": "prod-eu eu",
        "argocd/web-us": "us us",
    }
    assert all(u.environment for u in found.values())


def view(paths: dict[str, str]) -> GitView:
    contents = {p: t.encode() for p, t in paths.items()}
    return GitView(frozenset(paths), contents, IDENTITY.owns, IDENTITY.follows)


def spec(generators: list[object], template: object, go: bool = False) -> dict[str, object]:
    return {"goTemplate": go, "generators": generators, "template": template}


def test_matrix_combines_and_feeds_the_first_childs_parameters_to_the_second() -> None:
    git = {
        "git": {
            "repoURL": URL,
            "revision": "HEAD",
            "files": [{"path": "envs/{{.env}}/apps.yaml"}],
        }
    }
    envs = {"list": {"elements": [{"env": "dev"}, {"env": "prod"}]}}
    files = view({"envs/dev/apps.yaml": "app: a\n", "envs/prod/apps.yaml": "app: b\n"})
    made = generate(
        spec(
            [{"matrix": {"generators": [envs, git]}}], "{{.env}}-{{.app}}-{{.path.basename}}", True
        ),
        files,
        (),
    )
    assert made == ["dev-a-dev", "prod-b-prod"]


def test_merge_overrides_the_base_parameters_by_key() -> None:
    clusters = {"clusters": {"values": {"replicas": "1", "tier": "{{metadata.labels.env}}"}}}
    override = {"list": {"elements": [{"name": "prod-eu", "values.replicas": "3"}]}}
    merged = {"merge": {"mergeKeys": ["name"], "generators": [clusters, override]}}
    made = generate(
        spec([merged], "{{name}}:{{server}}:{{values.replicas}}:{{values.tier}}"),
        view({}),
        CLUSTERS,
    )
    assert made == [
        "prod-eu:https://prod-eu.example.com:3:prod",
        "stage:https://stage.example.com:1:stage",
    ]


def test_the_cluster_generator_selects_by_label_from_the_settings() -> None:
    settings = load_settings(
        {
            "GITOPS_BOT_ARGOCD_CLUSTERS": '[{"name": "prod-eu", "server": "https://prod-eu.example.com",'
            ' "labels": {"env": "prod"}}, {"name": "stage", "server": "https://stage.example.com",'
            ' "labels": {"env": "stage"}}]'
        }
    )
    assert settings.argocd_clusters == CLUSTERS
    with pytest.raises(SettingsError, match="ARGOCD_CLUSTERS: entry 0 needs a name and a server"):
        load_settings({"GITOPS_BOT_ARGOCD_CLUSTERS": '[{"name": "x"}]'})
    chosen = {"clusters": {"selector": {"matchLabels": {"env": "prod"}}}}
    made = generate(
        spec([chosen], "{{.nameNormalized}} {{.metadata.labels.env}}", True), view({}), CLUSTERS
    )
    assert made == ["prod-eu prod"]


@pytest.mark.parametrize(
    ("generator", "reason"),
    [
        ({"scmProvider": {}}, "the scmProvider generator is not previewed (it needs Argo CD)"),
        (
            {"list": {"elements": []}, "selector": {}},
            "a list generator's selector is not previewed",
        ),
        (
            {"git": {"repoURL": "https://other.example.com/x", "directories": [{"path": "*"}]}},
            "its git generator reads another repository (https://other.example.com/x)",
        ),
        ({"matrix": {"generators": [{"list": {}}]}}, "exactly two child generators"),
    ],
)
def test_what_cannot_be_generated_says_why(generator: dict[str, object], reason: str) -> None:
    with pytest.raises(GeneratorError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        generate(spec([generator], "x"), view({}), ())


# --- templates


def test_fasttemplate_leaves_unknown_keys_and_go_templates_take_the_common_functions() -> None:
    fast = TemplateStyle()
    assert render_text("{{ a }}-{{b}}-{{ c.d }}", {"a": "1", "c.d": "2"}, fast) == "1-{{b}}-2"
    go = TemplateStyle(go=True)
    params = {"path": {"basename": "Web_App", "segments": ["apps", "web"]}, "env": "prod"}
    text = '{{ .path.basename | normalize }}-{{ index .path.segments 1 }}-{{ default "x" .nope }}'
    assert render_text(text, params, go) == "web-app-web-x"
    assert render_text('{{ printf "%s-%s" .env (upper .env) }}', params, go) == "prod-PROD"
    assert render_text("a  {{- .env -}}  b", params, go) == "aprodb"
    assert render_text("{{ .nope }}", params, go) == "<no value>"
    with pytest.raises(TemplateError, match="no entry for key 'nope'"):
        render_text("{{ .nope }}", params, TemplateStyle(go=True, missing_is_error=True))


async def test_an_unsupported_template_function_is_not_previewed_with_the_reason(
    repo: Repo, render_tools: Path
) -> None:
    generators = "- list: {elements: [{env: prod}]}\n"
    template = f"""\
    metadata: {{name: '{{{{ .env | sha256sum }}}}'}}
    spec: {{project: default, source: {{repoURL: "{URL}", path: base}}, destination: {{}}}}
    """
    files = services() | {"apps/set.yaml": appset("hashed", generators, template, go=True)}
    found = await units(repo, repo.commit(files), render_tools)
    [unit] = found.values()
    assert unit.name == "applicationset/argocd/hashed" and unit.environment is None
    assert unit.reason == (
        "its template cannot be rendered: the template function 'sha256sum' is not supported"
    )


# --- multiple sources


async def test_helm_value_files_from_a_values_ref_source_match_helm_template(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    chart = {
        "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
        "charts/app/values.yaml": "color: blue\nsize: s\n",
        "charts/app/templates/cm.yaml": (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}}\n"
            "data: {color: {{ .Values.color | quote }}, size: {{ .Values.size | quote }}}\n"
        ),
        "values/prod.yaml": "color: red\n",
    }
    app = textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: multi, namespace: argocd}}
        spec:
          project: default
          destination: {{server: https://kubernetes.default.svc, namespace: paint}}
          sources:
            - repoURL: {URL}
              path: charts/app
              helm: {{valueFiles: [$values/values/prod.yaml], values: "size: l"}}
            - {{repoURL: {URL}, targetRevision: HEAD, ref: values}}
        """)
    commit = repo.commit(chart | {"apps/multi.yaml": app})
    unit = (await units(repo, commit, render_tools))["argocd/multi"]
    assert unit.environment is not None, unit.reason
    assert unit.environment.source.values == ("values/prod.yaml",)
    where = checkout(repo, tmp_path / "clone")
    (tmp_path / "inline.yaml").write_text("size: l\n")
    argv = [str(render_tools / "helm"), "template", "multi", "charts/app", "--namespace", "paint"]
    argv += ["--values", "values/prod.yaml", "--values", str(tmp_path / "inline.yaml")]
    expected = tool_output(argv, where)
    got = await rendered(repo, commit, unit, render_tools)
    assert got == [in_namespace(body, "paint") for body in expected]
    assert got[0]["data"] == {"color": "red", "size": "l"}


async def test_a_ref_source_elsewhere_or_two_deploying_sources_are_not_previewed(
    repo: Repo, render_tools: Path
) -> None:
    def app(name: str, sources: str) -> str:
        return textwrap.dedent(f"""\
            apiVersion: argoproj.io/v1alpha1
            kind: Application
            metadata: {{name: {name}, namespace: argocd}}
            spec:
              destination: {{server: https://kubernetes.default.svc, namespace: x}}
              sources: {sources}
            """)

    files = {
        "a.yaml": app(
            "elsewhere",
            f'[{{repoURL: "{URL}", path: base}}, '
            '{repoURL: "https://other.example.com/v", ref: values}]',
        ),
        "b.yaml": app("two", f'[{{repoURL: "{URL}", path: base}}, {{repoURL: "{URL}", path: b}}]'),
        "base/cm.yaml": configmap(),
    }
    found = await units(repo, repo.commit(files), render_tools)
    assert found["argocd/elsewhere"].reason == (
        "the ref source 'values' is another repository (https://other.example.com/v)"
    )
    assert found["argocd/two"].reason == "2 sources deploy objects; only one is previewed yet"


def test_a_change_to_one_generated_application_renders_only_that_one(repo: Repo) -> None:
    generators = (
        f"- git: {{repoURL: '{URL}', revision: HEAD, directories: [{{path: 'services/*'}}]}}\n"
    )
    files = services("web", "api", "db") | {"apps/set.yaml": appset("svc", generators, TEMPLATE)}
    base = repo.commit(files)
    changed = "resources: [../../base, extra.yaml]\nnamePrefix: api-\n"
    head = repo.commit(
        files
        | {"services/api/kustomization.yaml": changed, "services/api/extra.yaml": configmap()}
        | services("web", "api", "db", "new")
        | {"services/api/kustomization.yaml": changed}
    )
    data = plan_json(repo, base, head)
    assert [e.get("failure") for e in data["environments"]] == [None, None], data
    assert environments(data) == {
        "argocd/api": {"create": 1, "unchanged": 1},
        "argocd/new": {"create": 1},
    }
    assert "2 Argo CD or Flux unit(s) not affected" in data["notes"][1]


# --- app of apps


def chart_of_apps(level: int, last: int) -> dict[str, str]:
    """charts/c<level>: renders the Application of the next level, or a ConfigMap at the last."""
    folder = f"charts/c{level}"
    files = {f"{folder}/Chart.yaml": f"apiVersion: v2\nname: c{level}\nversion: 0.1.0\n"}
    if level == last:
        files[f"{folder}/templates/cm.yaml"] = configmap("leaf", release="{{ .Release.Name }}")
        return files
    files[f"{folder}/values.yaml"] = f"child: l{level + 1}\n"
    files[f"{folder}/templates/app.yaml"] = textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: {{{{ .Values.child }}}}, namespace: argocd}}
        spec:
          project: default
          destination:
            server: https://kubernetes.default.svc
            namespace: {{{{ .Values.child }}}}
          source: {{repoURL: "{URL}", targetRevision: HEAD, path: charts/c{level + 1}}}
        """)
    return files


def root_app(path: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: l0, namespace: argocd}}
        spec:
          destination: {{server: https://kubernetes.default.svc, namespace: l0}}
          source: {{repoURL: "{URL}", targetRevision: HEAD, path: {path}}}
        """)


async def test_apps_of_apps_are_expanded_three_levels_deep_then_listed(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    files = {"apps/root.yaml": root_app("charts/c0")}
    for level in range(6):
        files |= chart_of_apps(level, 5)
    commit = repo.commit(files)
    found = await units(repo, commit, render_tools)
    assert sorted(found) == ["argocd/l0", "argocd/l1", "argocd/l2", "argocd/l3", "argocd/l3/apps"]
    assert found["argocd/l3/apps"].reason == (
        "the Applications it renders are not previewed: apps of apps are expanded 3 levels deep"
    )
    child = found["argocd/l1"]
    assert child.origin == "charts/c0/templates/app.yaml, rendered by argocd/l0"
    argv = [str(render_tools / "helm"), "template", "l0", "charts/c0", "--namespace", "l0"]
    [app] = tool_output(argv, checkout(repo, tmp_path / "clone"))
    assert child.environment is not None
    assert (child.environment.path, child.environment.namespace) == (
        app["spec"]["source"]["path"],
        app["spec"]["destination"]["namespace"],
    )
    [leaf] = await rendered(repo, commit, found["argocd/l3"], render_tools)
    assert leaf["kind"] == "Application" and leaf["metadata"]["name"] == "l4"


async def test_a_kustomize_folder_of_applications_renders_its_children_with_its_overrides(
    repo: Repo, render_tools: Path
) -> None:
    child = textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: child, namespace: argocd}}
        spec:
          destination: {{server: https://kubernetes.default.svc, namespace: c}}
          source: {{repoURL: "{URL}", targetRevision: HEAD, path: base}}
        """)
    files = services() | {
        "apps/root.yaml": root_app("children"),
        "children/kustomization.yaml": "resources: [child.yaml]\nnameSuffix: -eu\n",
        "children/child.yaml": child,
    }
    found = await units(repo, repo.commit(files), render_tools)
    # The file alone would declare argocd/child; what Argo CD gets from the root is child-eu.
    assert sorted(found) == ["argocd/child-eu", "argocd/l0"]
    assert found["argocd/child-eu"].origin == "children/child.yaml, rendered by argocd/l0"
    assert found["argocd/child-eu"].environment is not None


def test_the_same_change_in_several_applications_is_shown_once(repo: Repo) -> None:
    generators = (
        f"- git: {{repoURL: '{URL}', revision: HEAD, directories: [{{path: 'services/*'}}]}}\n"
    )
    files = services("web", "api", "db") | {"apps/set.yaml": appset("svc", generators, TEMPLATE)}
    pinned = "images: [{name: registry.example.com/web, newTag: '9'}]\n"
    files["services/db/kustomization.yaml"] += pinned
    base = repo.commit(files)
    newer = deployment(image="registry.example.com/web:2.0.0")
    head = repo.commit(files | {"base/deployment.yaml": newer})
    done = run_plan(repo.path, base, head, "markdown", "--repo-url", URL, "--branch", "main")
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert "#### The same change in 2 applications" in text
    assert "Shown once, as `argocd/api` renders it; it is also the change of:" in text
    assert "`argocd/api` → `https://kubernetes.default.svc`, `argocd/web` →" in text
    # db pins its own image tag, so the new base changes nothing there: it is not folded
    assert "#### Environment `argocd/db`" in text and text.count("<summary>") == 1, text


async def test_a_template_without_a_name_is_not_previewed(repo: Repo, render_tools: Path) -> None:
    generators = "- list: {elements: [{env: prod}]}\n"
    template = f"spec: {{source: {{repoURL: '{URL}', path: base}}}}\n"
    files = services() | {"apps/set.yaml": appset("nameless", generators, template)}
    [unit] = (await units(repo, repo.commit(files), render_tools)).values()
    assert unit.reason == "its template gives an Application without metadata.name"
