"""Flux HelmReleases and Kustomizations with values and substitutions from the repository."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path

from helpers.gitopsrepo import URL
from helpers.gitrepos import Repo
from helpers.manifests import configmap
from test_gitops_apps import checkout, in_namespace, options, rendered, tool_output

from bot.core.gitopsapps import PreviewUnit
from bot.core.identities import RepoIdentity
from bot.git.repos import GitRepo
from bot.stages.controllers import units_at

IDENTITY = RepoIdentity((URL,), branches=("main",))
SOURCE = textwrap.dedent(f"""\
    apiVersion: source.toolkit.fluxcd.io/v1
    kind: GitRepository
    metadata: {{name: repo, namespace: flux-system}}
    spec: {{url: "{URL}", ref: {{branch: main}}, interval: 1m}}
    """)
CHART = {
    "charts/app/Chart.yaml": "apiVersion: v2\nname: app\nversion: 0.1.0\n",
    "charts/app/values.yaml": "color: blue\nsize: s\nreplicas: 1\nnested: {a: 1, b: 1}\n",
    "charts/app/templates/cm.yaml": textwrap.dedent("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: {{ .Release.Name }}}
        data:
          color: {{ .Values.color | quote }}
          size: {{ .Values.size | quote }}
          replicas: {{ .Values.replicas | quote }}
          nested: {{ .Values.nested | toJson | quote }}
        """),
}


def flux_object(api_version: str, kind: str, name: str, spec: str) -> str:
    head = f"---\napiVersion: {api_version}\nkind: {kind}\n"
    head += f"metadata: {{name: {name}, namespace: flux-system}}\nspec:\n  interval: 10m\n"
    return head + textwrap.indent(textwrap.dedent(spec), "  ")


def helm_release(name: str, spec: str) -> str:
    return flux_object("helm.toolkit.fluxcd.io/v2", "HelmRelease", name, spec)


def secret(name: str, **data: str) -> str:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": encoded}
    return json.dumps(body)


def values_map(name: str, values: str) -> str:
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    return json.dumps(body | {"data": {"values.yaml": values}})


async def units(repo: Repo, commit: str, tools: Path) -> dict[str, PreviewUnit]:
    found = await units_at(GitRepo(repo.path), commit, IDENTITY, "1.33", options(tools))
    return {unit.name: unit for unit in found}


HELM_GIT = """\
targetNamespace: paint
chart:
  spec:
    chart: ./charts/app
    sourceRef: {kind: GitRepository, name: repo}
valuesFrom:
  - {kind: ConfigMap, name: app-values}
  - {kind: Secret, name: app-secret, valuesKey: replicas, targetPath: replicas}
  - {kind: ConfigMap, name: not-here, optional: true}
values:
  size: l
  nested: {b: 2}
"""


async def test_a_helm_release_from_this_repository_matches_helm_template(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    files = CHART | {
        "flux/source.yaml": SOURCE,
        "flux/app.yaml": helm_release("app", HELM_GIT),
        "flux/values.yaml": values_map("app-values", "color: red\nsize: m\n"),
        "flux/secret.yaml": secret("app-secret", replicas="3"),
    }
    commit = repo.commit(files)
    unit = (await units(repo, commit, render_tools))["helmrelease/flux-system/app"]
    assert unit.environment is not None, unit.reason
    assert (unit.environment.namespace, unit.environment.source.release) == ("paint", "paint-app")
    where = checkout(repo, tmp_path / "clone")
    # What Flux merges: the ConfigMap's values, the Secret's value at replicas, spec.values.
    (tmp_path / "from.yaml").write_text("color: red\nsize: m\n")
    (tmp_path / "values.yaml").write_text("size: l\nnested: {b: 2}\n")
    argv = [str(render_tools / "helm"), "template", "paint-app", "charts/app"]
    argv += ["--namespace", "paint", "--values", str(tmp_path / "from.yaml")]
    argv += ["--set", "replicas=3", "--values", str(tmp_path / "values.yaml")]
    expected = tool_output(argv, where)
    got = await rendered(repo, commit, unit, render_tools)
    assert got == [in_namespace(body, "paint") for body in expected]
    assert got[0]["data"] == {
        "color": "red",
        "size": "l",
        "replicas": "3",
        "nested": '{"a":1,"b":2}',
    }


async def test_a_helm_chart_ref_to_a_helm_chart_of_this_repository_is_previewed(
    repo: Repo, render_tools: Path
) -> None:
    helm_chart = textwrap.dedent("""\
        ---
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: HelmChart
        metadata: {name: app-chart, namespace: flux-system}
        spec: {chart: charts/app, sourceRef: {kind: GitRepository, name: repo}, interval: 1m}
        """)
    files = CHART | {
        "flux/source.yaml": SOURCE + helm_chart,
        "flux/app.yaml": helm_release("app", "chartRef: {kind: HelmChart, name: app-chart}\n"),
    }
    commit = repo.commit(files)
    unit = (await units(repo, commit, render_tools))["helmrelease/flux-system/app"]
    assert unit.environment is not None, unit.reason
    [got] = await rendered(repo, commit, unit, render_tools)
    assert got["metadata"] == {"name": "app", "namespace": "flux-system"}
    assert got["data"]["color"] == "blue"


async def test_remote_charts_and_missing_values_are_not_previewed_with_the_reason(
    repo: Repo, render_tools: Path
) -> None:
    remote = """\
    chart:
      spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}
    """
    oci = "chartRef: {kind: OCIRepository, name: podinfo}\n"
    vault = HELM_GIT.replace("name: app-secret,", "name: vault,")
    files = CHART | {
        "flux/source.yaml": SOURCE,
        "flux/apps.yaml": helm_release("remote", remote)
        + helm_release("oci", oci)
        + helm_release("vault", vault),
        "flux/values.yaml": values_map("app-values", "color: red\n"),
    }
    found = await units(repo, repo.commit(files), render_tools)
    reasons = {name: unit.reason for name, unit in found.items()}
    assert reasons == {
        "helmrelease/flux-system/oci": (
            "its chartRef is of kind OCIRepository, not a HelmChart of this repository"
        ),
        "helmrelease/flux-system/remote": (
            "its chart comes from a HelmRepository, not from this repository"
        ),
        "helmrelease/flux-system/vault": (
            "Secret flux-system/vault is not in Git, so its values are unknown"
        ),
    }


# --- Kustomizations


def kustomization(name: str, spec: str) -> str:
    source = "sourceRef: {kind: GitRepository, name: repo}\n"
    return flux_object(
        "kustomize.toolkit.fluxcd.io/v1", "Kustomization", name, source + textwrap.dedent(spec)
    )


SUBSTITUTED = {
    "infra/kustomization.yaml": "resources: [settings.yaml]\n",
    "infra/settings.yaml": configmap("settings", region="${REGION}", tier="${TIER}", key="${KEY}"),
    "infra/vars.yaml": configmap("cluster-vars", REGION="eu-1", TIER="gold"),
    "infra/secret-vars.yaml": secret("secret-vars", KEY="s3cr3t", TIER="silver"),
}


async def test_substitute_from_reads_config_maps_and_secrets_in_order(
    repo: Repo, render_tools: Path
) -> None:
    spec = """\
    path: ./infra
    postBuild:
      substitute: {REGION: us-2}
      substituteFrom:
        - {kind: ConfigMap, name: cluster-vars}
        - {kind: Secret, name: secret-vars}
        - {kind: Secret, name: absent, optional: true}
    """
    files = SUBSTITUTED | {"flux/source.yaml": SOURCE + kustomization("infra", spec)}
    commit = repo.commit(files)
    unit = (await units(repo, commit, render_tools))["flux/flux-system/infra"]
    bodies = await rendered(repo, commit, unit, render_tools)
    settings = next(body for body in bodies if body["metadata"]["name"] == "settings")
    # substitute wins over substituteFrom; a later object wins over an earlier one
    assert settings["data"] == {"region": "us-2", "tier": "silver", "key": "s3cr3t"}


async def test_a_secret_not_in_git_is_not_previewed(repo: Repo, render_tools: Path) -> None:
    spec = "path: ./infra\npostBuild:\n  substituteFrom: [{kind: Secret, name: vault-vars}]\n"
    files = SUBSTITUTED | {"flux/source.yaml": SOURCE + kustomization("infra", spec)}
    unit = (await units(repo, repo.commit(files), render_tools))["flux/flux-system/infra"]
    assert unit.reason == (
        "postBuild.substituteFrom Secret flux-system/vault-vars is not in Git, "
        "so its values are unknown"
    )


async def test_components_are_added_to_the_folders_kustomization_as_flux_adds_them(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    component = textwrap.dedent("""\
        apiVersion: kustomize.config.k8s.io/v1alpha1
        kind: Component
        patches:
          - target: {kind: ConfigMap, name: settings}
            patch: |
              - {op: add, path: /data/extra, value: "on"}
        """)
    spec = """\
    path: ./app
    targetNamespace: apps
    namePrefix: x-
    components: [../components/extra]
    """
    files = {
        "flux/source.yaml": SOURCE + kustomization("app", spec),
        "app/kustomization.yaml": "resources: [settings.yaml]\nnameSuffix: -v1\n",
        "app/settings.yaml": configmap("settings", mode="fast"),
        "components/extra/kustomization.yaml": component,
    }
    commit = repo.commit(files)
    unit = (await units(repo, commit, render_tools))["flux/flux-system/app"]
    assert unit.environment is not None, unit.reason
    # What Flux does: the components join the folder's kustomization, the overrides wrap it.
    where = checkout(repo, tmp_path / "clone")
    own = "resources: [settings.yaml]\nnameSuffix: -v1\ncomponents: [../components/extra]\n"
    (where / "app/kustomization.yaml").write_text(own)
    (tmp_path / "wrap").mkdir()
    wrapper = {"resources": ["../clone/app"], "namespace": "apps", "namePrefix": "x-"}
    (tmp_path / "wrap/kustomization.yaml").write_text(json.dumps(wrapper))
    expected = tool_output([str(render_tools / "kustomize"), "build", "wrap"], tmp_path)
    got = await rendered(repo, commit, unit, render_tools)
    assert got == expected
    assert got[0]["metadata"]["name"] == "x-settings-v1"
    assert got[0]["data"] == {"mode": "fast", "extra": "on"}


# --- ConfigMaps and Secrets that kustomizations generate


GENERATED_VARS = {
    # As `flux bootstrap` repositories often do: the cluster's variables generated in the
    # flux-system kustomization, without the hash so that substituteFrom can name them.
    "clusters/a/flux-system/kustomization.yaml": textwrap.dedent("""\
        resources: [source.yaml]
        configMapGenerator:
          - {name: cluster-vars, namespace: flux-system, envs: [vars.env]}
        secretGenerator:
          - {name: secret-vars, namespace: flux-system, literals: [KEY=from-generator]}
        generatorOptions: {disableNameSuffixHash: true}
        """),
    "clusters/a/flux-system/vars.env": "REGION=eu-3\nTIER=bronze\n",
    "clusters/a/flux-system/source.yaml": SOURCE,
    "infra/kustomization.yaml": SUBSTITUTED["infra/kustomization.yaml"],
    "infra/settings.yaml": SUBSTITUTED["infra/settings.yaml"],
}
FROM_VARS = """\
path: ./infra
postBuild:
  substituteFrom:
    - {kind: ConfigMap, name: cluster-vars}
    - {kind: Secret, name: secret-vars}
"""


async def test_substitute_from_finds_generated_config_maps_and_secrets(
    repo: Repo, render_tools: Path
) -> None:
    files = GENERATED_VARS | {"clusters/a/infra.yaml": kustomization("infra", FROM_VARS)}
    commit = repo.commit(files)
    unit = (await units(repo, commit, render_tools))["flux/flux-system/infra"]
    bodies = await rendered(repo, commit, unit, render_tools)
    settings = next(body for body in bodies if body["metadata"]["name"] == "settings")
    assert settings["data"] == {"region": "eu-3", "tier": "bronze", "key": "from-generator"}


def hashed_values(configurations: bool) -> dict[str, str]:
    """A HelmRelease and the values kustomize generates for it, with the hash suffix."""
    kustomization_file = textwrap.dedent("""\
        namespace: flux-system
        resources: [release.yaml]
        configMapGenerator:
          - name: app-values
            files: [values.yaml=values-a.yaml]
        """)
    if configurations:
        kustomization_file += "configurations: [kustomizeconfig.yaml]\n"
    spec = HELM_GIT.replace(
        "  - {kind: Secret, name: app-secret, valuesKey: replicas, targetPath: replicas}\n", ""
    )
    return CHART | {
        "flux/source.yaml": SOURCE,
        "apps/a/kustomization.yaml": kustomization_file,
        "apps/a/kustomizeconfig.yaml": textwrap.dedent("""\
            nameReference:
              - kind: ConfigMap
                version: v1
                fieldSpecs:
                  - {path: spec/valuesFrom/name, kind: HelmRelease}
            """),
        "apps/a/values-a.yaml": "color: green\n",
        "apps/a/release.yaml": helm_release("app", spec),
    }


async def test_values_from_a_hashed_config_map_follow_its_name_reference(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    commit = repo.commit(hashed_values(configurations=True))
    unit = (await units(repo, commit, render_tools))["helmrelease/flux-system/app"]
    [values] = await rendered(repo, commit, unit, render_tools)
    assert values["data"]["color"] == "green"
    # kustomize does rewrite the HelmRelease's reference to the hashed name, as assumed.
    built = tool_output(
        [str(render_tools / "kustomize"), "build", "apps/a"], checkout(repo, tmp_path / "c")
    )
    release = next(b for b in built if b["kind"] == "HelmRelease")
    generated = next(b for b in built if b["kind"] == "ConfigMap")
    assert release["spec"]["valuesFrom"][0]["name"] == generated["metadata"]["name"]
    assert generated["metadata"]["name"].startswith("app-values-")


async def test_a_hashed_config_map_named_without_its_hash_is_not_found(
    repo: Repo, render_tools: Path
) -> None:
    commit = repo.commit(hashed_values(configurations=False))
    unit = (await units(repo, commit, render_tools))["helmrelease/flux-system/app"]
    assert unit.environment is None
    assert unit.reason.startswith(
        "valuesFrom ConfigMap app-values: it is generated by apps/a/kustomization.yaml with a "
        "hash suffix, so the cluster has it as app-values-"
    )
    assert "disableNameSuffixHash" in unit.reason


async def test_a_generated_config_map_is_found_by_its_hashed_name(
    repo: Repo, render_tools: Path, tmp_path: Path
) -> None:
    files = hashed_values(configurations=False)
    first = repo.commit(files)
    built = tool_output(
        [str(render_tools / "kustomize"), "build", "apps/a"], checkout(repo, tmp_path / "c")
    )
    hashed = next(b for b in built if b["kind"] == "ConfigMap")["metadata"]["name"]
    release = files["apps/a/release.yaml"].replace("name: app-values}", f"name: {hashed}}}")
    commit = repo.commit(files | {"apps/a/release.yaml": release})
    assert first != commit
    unit = (await units(repo, commit, render_tools))["helmrelease/flux-system/app"]
    [values] = await rendered(repo, commit, unit, render_tools)
    assert values["data"]["color"] == "green"
