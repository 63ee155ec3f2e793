"""Helm charts, rendered by the real `helm template` in its sandbox, previewed like plain files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import NetworkTrap
from helpers.gitrepos import Repo, Symlink

from bot.core.diffs import Action, Change
from bot.core.findings import Severity
from bot.core.manifests import Source
from bot.core.plans import EnvironmentPlan
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions
from bot.stages.plan import plan_change

CONFIG = textwrap.dedent("""\
    environments:
      prod:
        path: charts/shop
        cluster: main
        namespace: shop
        source:
          type: helm
          release: shop
          values: [envs/prod/values.yaml]
""")
CHART = "apiVersion: v2\nname: shop\nversion: 0.1.0\n"
DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: {{ .Release.Name }}-web
      labels: {app.kubernetes.io/name: web}
    spec:
      replicas: {{ .Values.replicas }}
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: web
              image: {{ .Values.image | quote }}
              resources:
                limits: {cpu: 100m, memory: 64Mi}
""")
SERVICE = textwrap.dedent("""\
    apiVersion: v1
    kind: Service
    metadata:
      name: {{ .Release.Name }}-web
      labels: {app.kubernetes.io/name: web}
    spec:
      ports: [{port: 80}]
""")
VALUES = "replicas: 2\nimage: registry.example.com/web:1.0.0\n"


def tree(
    values: str = VALUES, files: dict[str, str | Symlink] | None = None
) -> dict[str, str | Symlink]:
    return {
        ".gitops-bot.yaml": CONFIG,
        "charts/shop/Chart.yaml": CHART,
        "charts/shop/values.yaml": "replicas: 1\nimage: registry.example.com/web:0.9.0\n",
        "charts/shop/templates/deployment.yaml": DEPLOYMENT,
        "charts/shop/templates/service.yaml": SERVICE,
        "envs/prod/values.yaml": values,
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


def only_error(env: EnvironmentPlan) -> tuple[str, str | None, int | None, str]:
    errors = [f for f in env.findings if f.severity is Severity.ERROR]
    assert len(errors) == 1, errors
    return errors[0].rule, errors[0].path, errors[0].line, errors[0].message


async def test_a_values_change_shows_the_rendered_diff(repo: Repo, render_tools: Path) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree("replicas: 4\nimage: registry.example.com/web:1.0.1\n"))
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None and not env.blocking, env.findings
    [change] = changed(env)
    assert (str(change.key), change.action) == ("Deployment.apps shop/shop-web", Action.UPDATE)
    assert change.source == Source("charts/shop/templates/deployment.yaml", 2)
    assert "-  replicas: 2\n+  replicas: 4" in change.diff
    assert "+      - image: registry.example.com/web:1.0.1" in change.diff
    assert env.count(Action.UNCHANGED) == 1  # the Service


async def test_a_policy_violation_names_the_template(repo: Repo, render_tools: Path) -> None:
    base = repo.commit(tree())
    head = repo.commit(tree("replicas: 2\nimage: registry.example.com/web:latest\n"))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, line, _ = only_error(env)
    assert (rule, path, line) == ("pinned-images", "charts/shop/templates/deployment.yaml", 2)


@pytest.mark.parametrize("scheme", ["{trap}/charts", "oci://127.0.0.1:{port}/charts"])
async def test_a_remote_chart_dependency_is_refused_without_touching_the_network(
    repo: Repo, render_tools: Path, network_trap: NetworkTrap, scheme: str
) -> None:
    repository = scheme.format(trap=network_trap.url, port=network_trap.port)
    chart = (
        CHART
        + f"dependencies:\n  - name: redis\n    version: 1.0.0\n    repository: {repository}\n"
    )
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/Chart.yaml": chart}))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, line, message = only_error(env)
    assert (rule, path, line) == ("render.chart-refused", "charts/shop/Chart.yaml", 5)
    assert "helm dependency build charts/shop" in message and "without network access" in message
    assert env.failure is not None
    assert network_trap.connections == 0


async def test_credentials_in_a_dependency_url_are_not_repeated(
    repo: Repo, render_tools: Path
) -> None:
    chart = CHART + (
        "dependencies:\n  - name: redis\n    version: 1.0.0\n"
        "    repository: https://robot:hunter2@charts.example.com/stable\n"
    )
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/Chart.yaml": chart}))
    env = await plan_env(repo, base, head, options(render_tools))
    _, _, _, message = only_error(env)
    assert "https://charts.example.com/stable" in message and "hunter2" not in message


async def test_vendored_and_local_dependencies_render_and_name_their_files(
    repo: Repo, render_tools: Path
) -> None:
    chart = CHART + textwrap.dedent("""\
        dependencies:
          - name: cache
            version: 0.1.0
            repository: https://charts.example.com/stable
          - name: common
            version: 0.1.0
            repository: file://../../libs/common
    """)
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Chart.Name }}\n"
    files: dict[str, str | Symlink] = {
        "charts/shop/Chart.yaml": chart,
        "charts/shop/charts/cache/Chart.yaml": "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
        "charts/shop/charts/cache/templates/cm.yaml": configmap,
        "libs/common/Chart.yaml": "apiVersion: v2\nname: common\nversion: 0.1.0\n",
        "libs/common/templates/cm.yaml": configmap,
    }
    base = repo.commit(tree())
    head = repo.commit(tree(files=files))
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None, env.findings
    created = {str(c.key): c.source for c in env.changes if c.action is Action.CREATE}
    assert created == {
        "ConfigMap shop/cache": Source("charts/shop/charts/cache/templates/cm.yaml", 2),
        "ConfigMap shop/common": Source("libs/common/templates/cm.yaml", 2),
    }


async def test_a_template_that_loops_is_stopped_at_the_time_limit(
    repo: Repo, render_tools: Path
) -> None:
    loop = "{{- range until 100000 }}{{- range until 100000 }}{{- end }}{{- end }}\n"
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/templates/loop.yaml": loop}))
    env = await plan_env(repo, base, head, options(render_tools, timeout_seconds=2))
    rule, path, _, message = only_error(env)
    assert (rule, path) == ("render.timeout", "charts/shop")
    assert "did not finish within 2 seconds and was stopped" in message
    assert env.failure is not None and "did not finish" in env.failure


async def test_a_template_that_explodes_in_size_is_stopped_at_the_output_limit(
    repo: Repo, render_tools: Path
) -> None:
    bomb = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n"
        '{{- range $i := until 200000 }}\n  k{{ $i }}: "{{ $i }}"{{- end }}\n'
    )
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/templates/bomb.yaml": bomb}))
    env = await plan_env(repo, base, head, options(render_tools, max_output_bytes=100_000))
    rule, _, _, message = only_error(env)
    assert rule == "render.output-too-large"
    assert "more than 100000 bytes" in message


async def test_helm_s_own_error_is_reported_with_the_template_named(
    repo: Repo, render_tools: Path
) -> None:
    broken = '{{ required "set .Values.domain in your values file" .Values.domain }}\n'
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/templates/ingress.yaml": broken}))
    env = await plan_env(repo, base, head, options(render_tools))
    rule, _, _, message = only_error(env)
    assert rule == "render.failed"
    assert "set .Values.domain in your values file" in message
    assert "templates/ingress.yaml" in message
    assert "gitops-bot-render-" not in message


async def test_a_missing_values_file_is_refused(repo: Repo, render_tools: Path) -> None:
    base = repo.commit(tree())
    files = tree()
    del files["envs/prod/values.yaml"]
    head = repo.commit(files)
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, _, _ = only_error(env)
    assert (rule, path) == ("render.values-missing", "envs/prod/values.yaml")


async def test_test_hooks_are_left_out_and_crds_are_kept(repo: Repo, render_tools: Path) -> None:
    hook = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: smoke\n  annotations:\n"
    hook += '    "helm.sh/hook": test\nspec:\n  containers: [{name: t, image: busybox:1.36}]\n'
    crd = textwrap.dedent("""\
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: carts.shop.example.com}
        spec:
          group: shop.example.com
          names: {kind: Cart, plural: carts}
          scope: Namespaced
          versions:
            - name: v1
              served: true
              storage: true
              schema: {openAPIV3Schema: {type: object}}
    """)
    files: dict[str, str | Symlink] = {
        "charts/shop/templates/tests/smoke.yaml": hook,
        "charts/shop/crds/carts.yaml": crd,
    }
    base = repo.commit(tree())
    head = repo.commit(tree(files=files))
    env = await plan_env(repo, base, head, options(render_tools))
    created = {str(c.key): c.source for c in env.changes if c.action is Action.CREATE}
    assert created == {
        "CustomResourceDefinition.apiextensions.k8s.io carts.shop.example.com": Source(
            "charts/shop/crds/carts.yaml", 2
        )
    }


async def test_lookup_never_reaches_a_cluster(
    repo: Repo,
    render_tools: Path,
    network_trap: NetworkTrap,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: '{network_trap.url}'}}}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {token: bot-credential}}]\n"
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # the bot's own, never the tool's
    lookup = (
        '{{- $found := lookup "v1" "Secret" "shop" "token" }}\n'
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: seen}\n"
        "data: {count: {{ len $found | quote }}}\n"
    )
    base = repo.commit(tree())
    head = repo.commit(tree(files={"charts/shop/templates/lookup.yaml": lookup}))
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None, env.findings
    [change] = changed(env)
    assert "+  count: '0'" in change.diff
    assert network_trap.connections == 0


async def test_a_chart_at_the_repository_root_renders(repo: Repo, render_tools: Path) -> None:
    config = "environments:\n  web:\n    path: .\n    cluster: main\n    source: {type: helm}\n"
    files = {
        ".gitops-bot.yaml": config,
        "Chart.yaml": CHART,
        "values.yaml": VALUES,
        "templates/all.yaml": DEPLOYMENT + "---\n" + SERVICE,
    }
    base = repo.commit({".gitops-bot.yaml": config, "Chart.yaml": CHART})
    head = repo.commit(files)
    env = await plan_env(repo, base, head, options(render_tools))
    assert env.failure is None, env.findings
    created = {str(c.key): c.source for c in env.changes}
    assert created == {
        "Deployment.apps default/web-web": Source("templates/all.yaml", 2),
        "Service default/web-web": Source("templates/all.yaml", 21),
    }


async def test_an_archive_of_another_chart_whose_name_begins_alike_is_not_the_dependency(
    repo: Repo, render_tools: Path
) -> None:
    chart = CHART + "dependencies:\n  - name: web\n    version: 1.0.0\n    repository: oci://x/c\n"
    base = repo.commit(tree())
    head = repo.commit(
        tree(files={"charts/shop/Chart.yaml": chart, "charts/shop/charts/web-ui-1.0.0.tgz": "x"})
    )
    env = await plan_env(repo, base, head, options(render_tools))
    rule, path, _, message = only_error(env)
    assert (rule, path) == ("render.chart-refused", "charts/shop/Chart.yaml")
    assert "dependency 'web'" in message and "not vendored" in message
