"""Units on repositories laid out per cluster: one unit per declaration, named apart."""

from __future__ import annotations

import textwrap
from typing import Any

from helpers.gitopsrepo import URL, application
from helpers.gitrepos import Repo
from test_gitops_apps import environments, plan_json, tools_for_the_cli

from bot.core.generated import may_be_referenced
from bot.core.gitopsapps import PreviewUnit
from bot.core.unitnames import named_apart, scope_labels

__all__ = ["tools_for_the_cli"]  # the CLI finds the real kustomize and helm


def flux(kind: str, name: str, spec: str) -> str:
    group = {
        "GitRepository": "source.toolkit.fluxcd.io",
        "Kustomization": "kustomize.toolkit.fluxcd.io",
    }[kind]
    head = f"---\napiVersion: {group}/v1\nkind: {kind}\n"
    head += f"metadata: {{name: {name}, namespace: flux-system}}\nspec:\n  interval: 10m\n"
    return head + textwrap.indent(textwrap.dedent(spec), "  ")


def cluster(name: str, region: str) -> dict[str, str]:
    """A cluster folder as `flux bootstrap` writes it, with the apps of its environment."""
    source = "sourceRef: {kind: GitRepository, name: flux-system}\n"
    sync = flux("GitRepository", "flux-system", f"url: {URL}\nref: {{branch: main}}\n")
    sync += flux("Kustomization", "flux-system", f"path: ./clusters/{name}\nprune: true\n{source}")
    apps = flux(
        "Kustomization",
        "apps",
        f"path: ./apps/{name}\nprune: true\n{source}"
        "postBuild:\n  substituteFrom: [{kind: ConfigMap, name: cluster-vars}]\n",
    )
    variables = (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata: {{name: cluster-vars, namespace: flux-system}}\ndata: {{REGION: {region}}}\n"
    )
    return {
        f"clusters/{name}/flux-system/gotk-sync.yaml": sync,
        f"clusters/{name}/flux-system/kustomization.yaml": "resources: [gotk-sync.yaml]\n",
        f"clusters/{name}/apps.yaml": apps,
        f"clusters/{name}/vars.yaml": variables,
        f"apps/{name}/kustomization.yaml": "resources: [../base]\n",
    }


def app_base(replicas: int) -> dict[str, str]:
    settings = textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: podinfo, namespace: podinfo}}
        data: {{region: "${{REGION}}", replicas: "{replicas}"}}
        """)
    return {
        "apps/base/kustomization.yaml": "resources: [settings.yaml]\n",
        "apps/base/settings.yaml": settings,
    }


def diff_of(data: dict[str, Any], unit: str) -> str:
    [env] = [e for e in data["environments"] if e["name"] == unit]
    [change] = [c for c in env["changes"] if c["action"] == "update"]
    return str(change["diff"])


def test_each_cluster_folder_is_a_unit_of_its_own(repo: Repo) -> None:
    both = cluster("staging", "eu-1") | cluster("production", "us-2")
    base = repo.commit(both | app_base(1))
    head = repo.commit(both | app_base(2))
    data = plan_json(repo, base, head)
    assert environments(data) == {
        "flux/production/flux-system/apps": {"update": 1},
        "flux/staging/flux-system/apps": {"update": 1},
    }
    # Each reads its own cluster's variables, not the first cluster-vars found.
    assert '+  region: "us-2"' not in diff_of(data, "flux/production/flux-system/apps")
    assert "region: us-2" in diff_of(data, "flux/production/flux-system/apps")
    assert "region: eu-1" in diff_of(data, "flux/staging/flux-system/apps")
    assert data["notes"][1].startswith("2 Argo CD or Flux unit(s) not affected")


def test_a_second_cluster_keeps_the_first_one_paired(repo: Repo) -> None:
    base = repo.commit(cluster("staging", "eu-1") | app_base(1))
    head = repo.commit(cluster("staging", "eu-1") | cluster("production", "us-2") | app_base(2))
    data = plan_json(repo, base, head)
    assert environments(data) == {
        "flux/production/flux-system/apps": {"create": 1},
        "flux/production/flux-system/flux-system": {"create": 4},
        "flux/staging/flux-system/apps": {"update": 1},
    }


def test_a_unique_name_keeps_its_plain_form(repo: Repo) -> None:
    base = repo.commit(cluster("staging", "eu-1") | app_base(1))
    head = repo.commit(cluster("staging", "eu-1") | app_base(2))
    assert environments(plan_json(repo, base, head)) == {"flux/flux-system/apps": {"update": 1}}


def test_scopes_are_the_part_of_the_folder_that_tells_declarations_apart() -> None:
    assert scope_labels(["clusters/production/apps.yaml", "clusters/staging/apps.yaml"]) == {
        "clusters/production/apps.yaml": "production",
        "clusters/staging/apps.yaml": "staging",
    }
    nested = ["clusters/a/flux-system/sync.yaml", "clusters/b/flux-system/sync.yaml"]
    assert list(scope_labels(nested).values()) == ["a", "b"]
    same_folder = ["deploy/one.yaml", "deploy/two.yaml"]
    assert list(scope_labels(same_folder).values()) == ["one.yaml", "two.yaml"]
    nested_in_other = ["clusters/apps.yaml", "clusters/prod/apps.yaml"]
    assert list(scope_labels(nested_in_other).values()) == nested_in_other


def test_names_are_qualified_alike_on_both_sides_of_a_change() -> None:
    staging = PreviewUnit("flux/ns/apps", "", "c/staging/a.yaml", file="c/staging/a.yaml")
    production = PreviewUnit("flux/ns/apps", "", "c/prod/a.yaml", file="c/prod/a.yaml")
    [base] = named_apart([staging], [staging, production])
    assert (base.name, base.key) == ("flux/staging/ns/apps", "flux/ns/apps")
    assert [u.name for u in named_apart([staging], [staging])] == ["flux/ns/apps"]


# --- one Application name, declared twice


def list_set(name: str, *apps: str) -> str:
    elements = ", ".join(f"{{app: {app}}}" for app in apps)
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata: {{name: {name}, namespace: argocd}}
        spec:
          generators: [{{list: {{elements: [{elements}]}}}}]
          template:
            metadata: {{name: "{{{{app}}}}"}}
            spec:
              project: default
              destination: {{server: https://kubernetes.default.svc, namespace: "{{{{app}}}}"}}
              source: {{repoURL: "{URL}", targetRevision: HEAD, path: "apps/{{{{app}}}}"}}
        """)


APP_FILES = {
    "apps/web/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
    "apps/api/settings.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n",
}


def test_two_application_sets_giving_one_name_are_reported_naming_both(repo: Repo) -> None:
    base = repo.commit(APP_FILES | {"sets/a.yaml": list_set("a", "web", "api")})
    head = repo.commit(
        APP_FILES
        | {"sets/a.yaml": list_set("a", "web", "api"), "sets/b.yaml": list_set("b", "web")}
    )
    data = plan_json(repo, base, head)
    assert data["blocking"]
    [finding] = data["findings"]
    assert (finding["rule"], finding["severity"]) == ("argocd.duplicate-application", "error")
    assert finding["path"] == "sets/a.yaml"
    assert "ApplicationSet argocd/a (sets/a.yaml)" in finding["message"]
    assert "ApplicationSet argocd/b (sets/b.yaml)" in finding["message"]
    # Neither declaration is previewed in its place: the unit says why.
    [web] = data["unpreviewed"]
    assert web["name"] == "argocd/web" and web["reason"] == finding["message"]
    assert environments(data) == {}


def test_an_application_and_a_set_giving_its_name_are_reported(repo: Repo) -> None:
    web = list_set("solo", "web")
    plain = application("web", f"repoURL: {URL}\ntargetRevision: HEAD\npath: apps/web\n", "web")
    both = APP_FILES | {"apps.yaml": plain, "sets/solo.yaml": web}
    base = repo.commit(both)
    head = repo.commit(both | {"apps/web/settings.yaml": APP_FILES["apps/api/settings.yaml"]})
    data = plan_json(repo, base, head)
    # Already so at the base: a warning, so an unrelated change is not held up by it.
    [finding] = data["findings"]
    assert (finding["rule"], finding["severity"]) == ("argocd.duplicate-application", "warning")
    assert finding["path"] == "apps.yaml"  # the Application's own declaration
    assert "Application argocd/web (apps.yaml) and ApplicationSet argocd/solo" in finding["message"]
    assert [u["name"] for u in data["unpreviewed"]] == ["argocd/web"]


def test_patch_files_of_overlays_are_not_declarations(repo: Repo) -> None:
    release = textwrap.dedent("""\
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata: {name: podinfo, namespace: podinfo}
        spec:
          chart: {spec: {chart: podinfo, sourceRef: {kind: HelmRepository, name: podinfo}}}
          values: {replicas: REPLICAS}
        """)
    overlay = (
        "resources: [../base]\npatches:\n  - path: values.yaml\n    target: {kind: HelmRelease}\n"
    )
    files = cluster("staging", "eu-1") | {
        "apps/base/kustomization.yaml": "resources: [release.yaml]\n",
        "apps/base/release.yaml": release.replace("REPLICAS", "1"),
        "apps/staging/kustomization.yaml": overlay,
        "apps/staging/values.yaml": release.replace("REPLICAS", "2"),
    }
    base = repo.commit(files)
    head = repo.commit(files | {"apps/staging/values.yaml": release.replace("REPLICAS", "3")})
    data = plan_json(repo, base, head)
    assert environments(data) == {"flux/flux-system/apps": {"update": 1}}
    assert "+    replicas: 3" in diff_of(data, "flux/flux-system/apps")
    # The HelmRelease is declared once, by apps/base; the overlay's patch is no unit. What
    # helm-controller deploys from it changes, and its remote chart is not previewed.
    assert not [note for note in data["notes"] if "helmrelease/" in note]
    assert data["unpreviewed"] == [
        {
            "name": "helmrelease/podinfo/podinfo",
            "origin": "apps/base/release.yaml",
            "reason": "its chart comes from a HelmRepository, not from this repository "
            "(its object changes in flux/flux-system/apps)",
        }
    ]


def test_a_change_a_render_does_not_reach_leaves_the_release_alone(repo: Repo) -> None:
    base = repo.commit(cluster("staging", "eu-1") | app_base(1))
    head = repo.commit(cluster("staging", "eu-1") | app_base(2))
    assert plan_json(repo, base, head)["unpreviewed"] == []


def test_a_clash_the_change_brings_keeps_the_application_paired() -> None:
    generated = PreviewUnit("argocd/web", "", "sets/a.yaml", file="sets/a.yaml")
    clash = PreviewUnit(
        "argocd/web", "", "apps/web.yaml", file="apps/web.yaml", duplicates=("a", "b")
    )
    assert [u.name for u in named_apart([generated], [clash])] == ["argocd/web"]
    assert [u.name for u in named_apart([clash], [generated])] == ["argocd/web"]


def test_a_flux_folder_that_flux_builds_in_part_is_not_read_file_by_file(repo: Repo) -> None:
    files = cluster("staging", "eu-1") | app_base(1)
    patched = "resources: [gotk-sync.yaml]\npatches:\n  - path: sync-patch.yaml\n"
    patch = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"
    base = repo.commit(files)
    head = repo.commit(
        files
        | {
            "clusters/staging/flux-system/kustomization.yaml": patched,
            "clusters/staging/flux-system/sync-patch.yaml": patch,
        }
    )
    data = plan_json(repo, base, head)
    assert not data["blocking"], data["findings"]
    [unit] = data["unpreviewed"]
    assert unit["name"] == "flux/flux-system/flux-system"
    assert unit["reason"].startswith(
        "its folder has no kustomization, so Flux generates one, which builds "
        "clusters/staging/flux-system/kustomization.yaml with kustomize"
    )


def test_only_generators_a_reference_may_name_are_built() -> None:
    kustomization = {"namePrefix": "x-", "configMapGenerator": [{"name": "vars"}]}
    assert may_be_referenced(kustomization, frozenset({("ConfigMap", "x-vars")}))
    assert may_be_referenced(kustomization, frozenset({("ConfigMap", "x-vars-5c7fhh9dg8")}))
    assert not may_be_referenced(kustomization, frozenset({("Secret", "x-vars")}))
    assert not may_be_referenced(kustomization, frozenset({("ConfigMap", "vars")}))
