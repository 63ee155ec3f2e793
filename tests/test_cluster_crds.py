"""Schemas from the CRDs installed in an environment's cluster, read from the real API server."""

from __future__ import annotations

from helpers.livecluster import CLUSTER, KEY, LiveEnv
from helpers.manifests import widget_crd

from bot.clusters.crds import ClusterCrds
from bot.clusters.directory import ClusterDirectory
from bot.clusters.ports import Cluster
from bot.core.findings import Severity
from bot.core.plans import EnvironmentPlan
from bot.git.repos import GitRepo
from bot.stages.plan import plan_change
from bot.stages.schema_sources import ServerSchemas


def _widget(group: str, spec: str) -> str:
    return f"apiVersion: {group}/v1\nkind: Widget\nmetadata: {{name: gadget}}\nspec: {spec}\n"


def _install_crd(live_env: LiveEnv, group: str) -> None:
    live_env.kubectl.apply(widget_crd(group))
    live_env.kubectl.run("wait", "--for=condition=Established", f"crd/widgets.{group}")


async def _plan(live_env: LiveEnv, head: str, clusters: ClusterDirectory) -> EnvironmentPlan:
    schemas = ServerSchemas(clusters=clusters)
    plan = await plan_change(GitRepo(live_env.repo.path), head, head, KEY, server_schemas=schemas)
    (env,) = plan.environments
    return env


async def test_a_crd_installed_in_the_cluster_checks_the_environment_objects(
    live_env: LiveEnv,
) -> None:
    group = f"{live_env.namespace}.example.com"
    _install_crd(live_env, group)
    good = live_env.commit({"w.yaml": _widget(group, "{size: 3}")})
    typo = live_env.commit({"w.yaml": _widget(group, "{sise: 3}")})

    async with live_env.directory() as clusters:
        checked = await _plan(live_env, good, clusters)
        refused = await _plan(live_env, typo, clusters)

    assert not [f for f in checked.findings if f.stage == "schema"], checked.findings
    [finding] = [f for f in refused.findings if f.severity is Severity.ERROR]
    assert (finding.location, finding.field) == ("deploy/w.yaml:4", "spec.sise")
    assert f"(schema from cluster {CLUSTER})" in finding.message


async def test_a_cluster_whose_crds_cannot_be_read_is_said(live_env: LiveEnv) -> None:
    group = f"{live_env.namespace}.example.com"
    _install_crd(live_env, group)
    head = live_env.commit({"w.yaml": _widget(group, "{size: 3}")})

    # The bot's own identity may not list CRDs until it is granted that.
    async with ClusterDirectory([live_env.as_bot()]) as clusters:
        env = await _plan(live_env, head, clusters)

    [finding] = [f for f in env.findings if f.rule == "schema.unknown-kind"]
    assert finding.severity is Severity.WARNING
    assert f"cluster {CLUSTER!r} could not be read" in finding.message
    assert "so its CRDs were not used" in finding.message


async def test_the_crds_of_a_cluster_are_read_once_per_interval(live_env: LiveEnv) -> None:
    group = f"{live_env.namespace}.example.com"
    now = [0.0]
    async with live_env.directory() as clusters:

        async def connect(name: str) -> Cluster:
            return (await clusters.connect(name)).cluster

        crds = ClusterCrds(connect, refresh_seconds=60, clock=lambda: now[0])
        assert (group + "/v1", "Widget") not in (await crds.schemas(CLUSTER)).schemas

        _install_crd(live_env, group)
        now[0] = 59.0
        assert (group + "/v1", "Widget") not in (await crds.schemas(CLUSTER)).schemas

        now[0] = 60.0
        read = await crds.schemas(CLUSTER)
    assert read.failure == ""
    assert read.schemas[(group + "/v1", "Widget")].source == f"cluster {CLUSTER}"
