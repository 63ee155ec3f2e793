"""The live layer of Argo CD and Flux units, against the real API server: dry runs only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from helpers.gitopsrepo import URL
from helpers.livecluster import CLUSTER, KEY, LiveEnv, configmap

from bot.clusters.directory import ClusterDirectory
from bot.clusters.ports import Cluster, Resource
from bot.config.clusters import ClusterSettings
from bot.core.comments import render_plan
from bot.core.controllerapply import (
    ARGOCD_MANAGER,
    ARGOCD_TRACKING,
    FLUX_NAME_LABEL,
    FLUX_NAMESPACE_LABEL,
    HELM_MANAGER,
    KUSTOMIZE_MANAGER,
    ControllerClusters,
)
from bot.core.diffs import Action
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.core.identities import RepoIdentity
from bot.core.manifests import ObjectKey
from bot.core.plans import EnvironmentPlan, Plan
from bot.core.rollouts import FIELD_MANAGER
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions
from bot.schemas.catalog import catalog_for
from bot.stages.drift import check_environment
from bot.stages.plan import CONTROLLED, load_checks, plan_change
from bot.stages.unit_drift import mapped_units
from bot.stages.unit_live import UnitLivePreviewer

IDENTITY = RepoIdentity((URL,), branches=("main",))
IN_ARGOCD = "https://kubernetes.default.svc"
MAPPED = ControllerClusters(argocd=((IN_ARGOCD, CLUSTER),), flux=(("in-cluster", CLUSTER),))


def application(namespace: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata: {{name: web, namespace: argocd}}
        spec:
          project: default
          destination: {{server: "{IN_ARGOCD}", namespace: {namespace}}}
          source: {{repoURL: "{URL}", targetRevision: HEAD, path: apps/web}}
        """)


def kustomization(namespace: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {{name: repo, namespace: flux-system}}
        spec: {{url: "{URL}", ref: {{branch: main}}, interval: 1m}}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {{name: api, namespace: flux-system}}
        spec:
          interval: 10m
          path: ./flux/api
          targetNamespace: {namespace}
          sourceRef: {{kind: GitRepository, name: repo}}
        """)


def commit(live_env: LiveEnv, web: dict[str, str], api: dict[str, str]) -> str:
    ns = live_env.namespace
    return live_env.repo.commit(
        {
            "argocd/web.yaml": application(ns),
            "clusters/api.yaml": kustomization(ns),
            "apps/web/cm.yaml": configmap("web", **web),
            "flux/api/cm.yaml": configmap("api", **api),
            "flux/api/kustomization.yaml": "resources: [cm.yaml]\n",
        }
    )


def synced_by_argocd(live_env: LiveEnv, name: str, **data: str) -> None:
    """The object as Argo CD's server-side sync leaves it: its manager, its tracking id."""
    ns = live_env.namespace
    body = json.loads(_as_json(configmap(name, **data)))
    body["metadata"] |= {
        "namespace": ns,
        "annotations": {ARGOCD_TRACKING: f"web:/ConfigMap:{ns}/{name}"},
    }
    live_env.kubectl.apply(json.dumps(body), "--server-side", f"--field-manager={ARGOCD_MANAGER}")


def synced_by_flux(live_env: LiveEnv, name: str, **data: str) -> None:
    """The object as kustomize-controller leaves it: its manager, its two labels."""
    ns = live_env.namespace
    body = json.loads(_as_json(configmap(name, **data)))
    labels = {FLUX_NAME_LABEL: "api", FLUX_NAMESPACE_LABEL: "flux-system"}
    body["metadata"] |= {"namespace": ns, "labels": labels}
    live_env.kubectl.apply(
        json.dumps(body), "--server-side", f"--field-manager={KUSTOMIZE_MANAGER}"
    )


def _as_json(text: str) -> str:
    return json.dumps(yaml.safe_load(text))


async def plan_units(
    live_env: LiveEnv,
    tools: Path,
    base: str,
    head: str,
    mapping: ControllerClusters = MAPPED,
    cluster: ClusterSettings | None = None,
) -> Plan:
    async with ClusterDirectory([cluster or live_env.cluster]) as clusters:
        unit_live = UnitLivePreviewer(clusters, KEY, mapping)
        return await plan_change(
            GitRepo(live_env.repo.path),
            base,
            head,
            KEY,
            render_options=RenderOptions(
                kustomize=str(tools / "kustomize"), helm=str(tools / "helm")
            ),
            identity=IDENTITY,
            unit_live=unit_live,
        )


def by_name(plan: Plan) -> dict[str, EnvironmentPlan]:
    assert plan.failure is None, plan.failure
    return {env.environment.name: env for env in plan.environments}


def snapshot(live_env: LiveEnv) -> dict[str, Any]:
    """Every ConfigMap of the namespace with its resourceVersion and managed fields."""
    listed = json.loads(
        live_env.kubectl.run("get", "configmaps", "-n", live_env.namespace, "-o=json")
    )
    return {
        item["metadata"]["name"]: (
            item["metadata"]["resourceVersion"],
            item["metadata"].get("managedFields"),
            item.get("data"),
        )
        for item in listed["items"]
    }


async def test_mapped_units_show_the_live_change_and_the_drift_and_write_nothing(
    live_env: LiveEnv,
    render_tools: Path,
) -> None:
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    synced_by_argocd(live_env, "web", a="9")  # someone changed it after the sync: drift
    synced_by_flux(live_env, "api", a="1")
    head = commit(live_env, {"a": "1", "b": "2"}, {"a": "2"})
    before = snapshot(live_env)

    plans = by_name(await plan_units(live_env, render_tools, base, head))

    assert snapshot(live_env) == before  # no object was created, changed or deleted
    web, api = plans["argocd/web"], plans["flux/flux-system/api"]
    assert web.live is not None and api.live is not None
    assert (web.live.cluster, web.live.failure, api.live.failure) == (CLUSTER, None, None)
    # What drifted in the cluster is shown apart from the change the pull request brings.
    assert [(c.key.name, c.action) for c in web.live.drift] == [("web", Action.UPDATE)]
    assert "9" in web.live.drift[0].diff and "b:" not in web.live.drift[0].diff
    assert [(c.key.name, c.action) for c in web.live.changes] == [("web", Action.UPDATE)]
    # Flux's object matches the base exactly as its controller applied it: no drift, and
    # the change the pull request brings is the only live change.
    assert api.live.drift == ()
    assert [(c.key.name, c.action) for c in api.live.changes] == [("api", Action.UPDATE)]


async def test_an_object_as_its_controller_applied_it_is_unchanged(
    live_env: LiveEnv, render_tools: Path
) -> None:
    """The dry run sends the controller's manager and marks: nothing to change, no conflict
    with the controller's own fields (the bot's own apply would report one)."""
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    synced_by_argocd(live_env, "web", a="1")
    synced_by_flux(live_env, "api", a="1")
    head = commit(live_env, {"a": "1", "b": "2"}, {"a": "1", "b": "2"})

    plans = by_name(await plan_units(live_env, render_tools, base, head))

    for name in ("argocd/web", "flux/flux-system/api"):
        live = plans[name].live
        assert live is not None and live.drift == () and live.unknown == (), name
        assert [c.action for c in live.changes] == [Action.UPDATE], name
        assert not [f for f in plans[name].findings if f.rule.startswith("cluster.")], name


async def test_a_unit_that_is_not_mapped_is_not_compared_and_the_comment_says_how(
    live_env: LiveEnv,
    render_tools: Path,
) -> None:
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    head = commit(live_env, {"a": "2"}, {"a": "2"})
    only_flux = ControllerClusters(flux=(("in-cluster", CLUSTER),))

    plan = await plan_units(live_env, render_tools, base, head, only_flux)

    plans = by_name(plan)
    assert plans["argocd/web"].live is None
    assert plans["flux/flux-system/api"].live is not None
    comment = "\n".join(render_plan(plan, 65536))
    (hint,) = [line for line in comment.splitlines() if "Live cluster: not compared" in line]
    assert "controller_clusters" in hint and IN_ARGOCD in hint


async def test_an_unreachable_mapped_cluster_is_a_clear_failure(
    live_env: LiveEnv, render_tools: Path, tmp_path: Path
) -> None:
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    head = commit(live_env, {"a": "2"}, {"a": "2"})
    config = json.loads(live_env.kubectl.run("config", "view", "--raw", "-o=json"))
    for entry in config["clusters"]:
        entry["cluster"]["server"] = "https://127.0.0.1:9"  # nothing listens there
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(json.dumps(config))
    cluster = replace(live_env.cluster, kubeconfig=dead, timeout_seconds=5.0)

    plans = by_name(await plan_units(live_env, render_tools, base, head, cluster=cluster))

    for plan in plans.values():
        assert plan.live is not None and plan.live.failure is not None
        assert "unreachable" in plan.live.failure and CLUSTER in plan.live.failure


async def unit_drifts(
    live_env: LiveEnv, tools: Path, commit: str, mapping: ControllerClusters = MAPPED
) -> dict[str, EnvironmentDrift]:
    """What the drift watch finds for the commit's units (workflows/check_drift)."""
    repo = GitRepo(live_env.repo.path)
    options = RenderOptions(kustomize=str(tools / "kustomize"), helm=str(tools / "helm"))
    checks = await load_checks(repo, commit, catalog_for, options, default=CONTROLLED)
    async with ClusterDirectory([live_env.cluster]) as clusters:
        units = await mapped_units(repo, commit, checks, IDENTITY, mapping, clusters)
        return {
            unit.name: await check_environment(repo, commit, unit, checks, clusters, KEY, name)
            for unit, name in units
        }


async def test_the_drift_watch_reports_drift_of_mapped_units_and_writes_nothing(
    live_env: LiveEnv, render_tools: Path
) -> None:
    ns = live_env.namespace
    head = commit(live_env, {"a": "1"}, {"a": "1"})
    synced_by_argocd(live_env, "web", a="1")
    synced_by_flux(live_env, "api", a="1")
    live_env.kubectl.run("patch", "configmap", "api", "-n", ns, "-p", '{"data":{"a":"7"}}')
    before = snapshot(live_env)

    drifts = await unit_drifts(live_env, render_tools, head)

    assert snapshot(live_env) == before
    web, api = drifts["argocd/web"], drifts["flux/flux-system/api"]
    assert (web.failure, api.failure) == (None, None)
    assert (web.cluster, web.state, api.state) == (CLUSTER, DriftState.IN_SYNC, DriftState.DRIFTED)
    (drifted,) = api.objects
    assert drifted.change.key.name == "api" and "7" in drifted.change.diff
    assert drifted.fields == ("data.a",)
    only_argocd = ControllerClusters(argocd=((IN_ARGOCD, CLUSTER),))
    assert list(await unit_drifts(live_env, render_tools, head, only_argocd)) == ["argocd/web"]


def test_gitops_bot_plan_uses_the_setting_from_the_command_line(
    live_env: LiveEnv, render_tools: Path
) -> None:
    ns = live_env.namespace
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    synced_by_flux(live_env, "api", a="5")
    head = commit(live_env, {"a": "1"}, {"a": "2"})
    before = snapshot(live_env)
    kubeconfig = str(live_env.cluster.kubeconfig)
    environ = os.environ | {
        "GITOPS_BOT_CLUSTERS": json.dumps({CLUSTER: {"kubeconfig": kubeconfig}}),
        "GITOPS_BOT_CONTROLLER_CLUSTERS": json.dumps({"flux": {"in-cluster": CLUSTER}}),
        "GITOPS_BOT_KUSTOMIZE_COMMAND": str(render_tools / "kustomize"),
        "GITOPS_BOT_HELM_COMMAND": str(render_tools / "helm"),
    }
    where = ["--repo", str(live_env.repo.path), "--base", base, "--head", head]
    command = [sys.executable, "-m", "bot", "plan", *where, "--format", "json"]
    command += ["--repo-url", URL, "--branch", "main"]

    done = subprocess.run(command, env=environ, capture_output=True, text=True, check=False)

    assert done.returncode == 0, done.stderr
    assert snapshot(live_env) == before
    (api,) = json.loads(done.stdout)["environments"]
    assert api["name"] == "flux/flux-system/api" and api["live"]["cluster"] == CLUSTER
    assert [d["object"] for d in api["live"]["drift"]] == [f"ConfigMap {ns}/api"]
    assert [c["action"] for c in api["live"]["changes"]] == ["update"]


def helm_release(namespace: str, color: str) -> dict[str, str]:
    release = textwrap.dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {{name: repo, namespace: flux-system}}
        spec: {{url: "{URL}", ref: {{branch: main}}, interval: 1m}}
        ---
        apiVersion: helm.toolkit.fluxcd.io/v2
        kind: HelmRelease
        metadata: {{name: db, namespace: flux-system}}
        spec:
          interval: 10m
          targetNamespace: {namespace}
          chart:
            spec:
              chart: ./charts/db
              sourceRef: {{kind: GitRepository, name: repo}}
          values: {{color: {color}}}
        """)
    template = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: db}\n"
    template += "data: {color: {{ .Values.color | quote }}}\n"
    return {
        "clusters/db.yaml": release,
        "charts/db/Chart.yaml": "apiVersion: v2\nname: db\nversion: 0.1.0\n",
        "charts/db/values.yaml": "color: blue\n",
        "charts/db/templates/cm.yaml": template,
    }


def released_by_helm(live_env: LiveEnv, release: str, color: str) -> None:
    """The object as helm-controller leaves it: its manager, Helm's label and annotations."""
    ns = live_env.namespace
    body = json.loads(_as_json(configmap("db", color=color)))
    body["metadata"] |= {
        "namespace": ns,
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": ns,
        },
    }
    live_env.kubectl.apply(json.dumps(body), "--server-side", f"--field-manager={HELM_MANAGER}")


async def test_a_helm_release_is_compared_as_helm_controller_applied_it(
    live_env: LiveEnv, render_tools: Path
) -> None:
    ns = live_env.namespace
    base = live_env.repo.commit(helm_release(ns, "green"))
    released_by_helm(live_env, f"{ns}-db", "green")
    head = live_env.repo.commit(helm_release(ns, "red"))
    before = snapshot(live_env)

    plans = by_name(await plan_units(live_env, render_tools, base, head))

    assert snapshot(live_env) == before
    live = plans["helmrelease/flux-system/db"].live
    assert live is not None and live.failure is None
    assert live.drift == ()
    (change,) = live.changes
    assert (change.key.name, change.action) == ("db", Action.UPDATE)
    assert "red" in change.diff and "managed-by" not in change.diff


class RecordedCluster:
    """The real cluster, recording every write request sent to it (applies and deletes)."""

    def __init__(self, cluster: Cluster) -> None:
        self.name = cluster.name
        self._cluster = cluster
        self.writes: list[tuple[str, bool, str, bool]] = []  # (name, dry run, manager, force)

    async def resource(self, api_version: str, kind: str) -> Resource | None:
        return await self._cluster.resource(api_version, kind)

    async def read(self, api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        return await self._cluster.read(api_version, key)

    async def list_labelled(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        return await self._cluster.list_labelled(api_version, kind, namespace, selector)

    async def apply(
        self,
        body: Mapping[str, Any],
        *,
        dry_run: bool,
        force: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        self.writes.append((body["metadata"]["name"], dry_run, field_manager, force))
        return await self._cluster.apply(
            body, dry_run=dry_run, force=force, field_manager=field_manager
        )

    async def delete(self, api_version: str, key: ObjectKey) -> bool:
        self.writes.append((key.name, False, "delete", False))
        return await self._cluster.delete(api_version, key)

    async def close(self) -> None:  # the directory closes what it opened, through this
        closing: Any = self._cluster
        await closing.close()


async def test_every_request_that_could_write_is_a_dry_run_as_the_controller(
    live_env: LiveEnv, render_tools: Path
) -> None:
    base = commit(live_env, {"a": "1"}, {"a": "1"})
    synced_by_argocd(live_env, "web", a="1")
    head = commit(live_env, {"a": "2"}, {"a": "2"})  # the Flux object is not in the cluster
    options = RenderOptions(
        kustomize=str(render_tools / "kustomize"), helm=str(render_tools / "helm")
    )
    async with ClusterDirectory([live_env.cluster]) as clusters:
        connection = await clusters.connect(CLUSTER)
        recorded = RecordedCluster(connection.cluster)
        clusters._open[CLUSTER] = recorded  # type: ignore[assignment]  # the one connection
        unit_live = UnitLivePreviewer(clusters, KEY, MAPPED)
        repo = GitRepo(live_env.repo.path)
        plan = await plan_change(
            repo, base, head, KEY, render_options=options, identity=IDENTITY, unit_live=unit_live
        )

    assert {p.environment.name: p.live is not None for p in plan.environments} == {
        "argocd/web": True,
        "flux/flux-system/api": True,
    }
    assert sorted(recorded.writes) == [
        ("api", True, KUSTOMIZE_MANAGER, True),  # the head; the base is the same object
        ("api", True, KUSTOMIZE_MANAGER, True),
        ("web", True, ARGOCD_MANAGER, True),
        ("web", True, ARGOCD_MANAGER, True),
    ]
