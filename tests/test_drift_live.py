"""Drift checks against the real API server: hand edits, other managers' fields, failures."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

from helpers.livecluster import KEY, LiveEnv, configmap

from bot.config.clusters import ClusterSettings
from bot.core.audit import AuditEntry
from bot.core.driftoutputs import drift_as_text
from bot.core.drifts import DriftState, EnvironmentDrift
from bot.git.repos import GitRepo
from bot.schemas.catalog import catalog_for
from bot.stages.drift import add_origins, check_environment
from bot.stages.plan import load_checks

PR_URL = "https://github.com/acme/deploy/pull/12"
HPA_IGNORE = {"ignore": [{"kind": "Deployment", "field": "spec.replicas"}]}


async def _drift(
    live_env: LiveEnv, commit: str, cluster: ClusterSettings | None = None
) -> EnvironmentDrift:
    repo = GitRepo(live_env.repo.path)
    checks = await load_checks(repo, commit, catalog_for)
    (environment,) = checks.config.environments
    async with live_env.directory(cluster) as clusters:
        return await check_environment(repo, commit, environment, checks, clusters, KEY)


def deployment(replicas: int) -> str:
    return f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: web
          labels: {{app.kubernetes.io/name: web}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app.kubernetes.io/name: web}}}}
          template:
            metadata: {{labels: {{app.kubernetes.io/name: web}}}}
            spec:
              containers:
                - name: web
                  image: registry.example.com/web:1.0.0
                  resources: {{limits: {{cpu: 250m, memory: 256Mi}}}}
        """


HPA = """\
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata:
      name: web
      labels: {app.kubernetes.io/name: web}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
      minReplicas: 2
      maxReplicas: 10
      metrics:
        - type: Resource
          resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
    """


def autoscale(live_env: LiveEnv, replicas: int) -> None:
    """What the HPA controller does: set replicas through the scale subresource."""
    live_env.kubectl.run(
        "patch",
        "deployment",
        "web",
        "-n",
        live_env.namespace,
        "--subresource=scale",
        "--type=merge",
        "--field-manager=horizontal-pod-autoscaler",
        "-p",
        json.dumps({"spec": {"replicas": replicas}}),
    )


async def test_a_hand_edit_is_drift_with_its_diff_fields_and_the_pr_that_set_it(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    commit = live_env.commit({"web.yaml": configmap("web", level="1"), "db.yaml": configmap("db")})
    assert (await live_env.apply(commit, pr=12)).succeeded
    assert await _state(live_env, commit) is DriftState.IN_SYNC
    live_env.kubectl.run("patch", "configmap", "web", "-n", ns, "-p", '{"data":{"level":"9"}}')

    drift = await _drift(live_env, commit)

    assert drift.state is DriftState.DRIFTED and drift.checked == 2
    (item,) = drift.objects
    assert str(item.change.key) == f"ConfigMap {ns}/web"
    assert "-  level: '9'" in item.change.diff and "+  level: '1'" in item.change.diff
    assert item.fields == ("data.level",)
    assert item.origin is not None
    assert (item.origin.commit, item.origin.pull_request) == (commit, "#12")
    assert any('"kubectl-patch"' in who and ".data.level" in who for who in item.changed_by)
    assert str(item.change.source) == "deploy/web.yaml:1"
    ledger = [_entry(commit, f"ConfigMap {ns}/web")]
    linked = add_origins(drift, ledger)
    assert linked.objects[0].origin is not None and linked.objects[0].origin.url == PR_URL


async def _state(live_env: LiveEnv, commit: str) -> DriftState:
    return (await _drift(live_env, commit)).state


def _entry(commit: str, *objects: str) -> AuditEntry:
    return AuditEntry(
        environment="prod",
        cluster="test",
        commit=commit,
        result="succeeded",
        trigger="merge",
        started_at="2026-01-01T00:00:00Z",
        finished_at="2026-01-01T00:00:01Z",
        bot_version="test",
        pr_number=12,
        pr_url=PR_URL,
        objects=tuple({"object": o, "action": "create", "outcome": "applied"} for o in objects),
    )


async def test_a_deleted_object_is_drift_linked_to_its_last_apply_in_the_ledger(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    commit = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(commit, pr=12)).succeeded
    live_env.kubectl.run("delete", "configmap", "web", "-n", ns)

    drift = add_origins(await _drift(live_env, commit), [_entry(commit, f"ConfigMap {ns}/web")])

    (item,) = drift.objects
    assert str(item.change.action) == "create" and item.fields == ()
    assert item.origin is not None and (item.origin.commit, item.origin.url) == (commit, PR_URL)


async def test_fields_that_only_another_manager_sets_are_not_drift(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    commit = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(commit)).succeeded
    live_env.kubectl.run("annotate", "configmap", "web", "-n", ns, "team.example.com/owner=ops")
    live_env.kubectl.run("label", "configmap", "web", "-n", ns, "cost-center=42")

    drift = await _drift(live_env, commit)

    assert drift.state is DriftState.IN_SYNC and drift.objects == () and drift.checked == 1


async def test_autoscaled_replicas_are_drift_unless_the_environment_ignores_them(
    live_env: LiveEnv,
) -> None:
    files = {"web.yaml": deployment(2), "hpa.yaml": HPA}
    commit = live_env.commit(files)
    assert (await live_env.apply(commit)).succeeded
    autoscale(live_env, 5)

    counted = await _drift(live_env, commit)
    ignoring = live_env.commit(files, drift=HPA_IGNORE)
    ignored = await _drift(live_env, ignoring)

    (item,) = counted.objects
    assert item.fields == ("spec.replicas",)
    assert "-  replicas: 5" in item.change.diff and "+  replicas: 2" in item.change.diff
    assert ignored.state is DriftState.IN_SYNC and ignored.objects == ()
    assert ignored.ignored == (f"Deployment.apps {live_env.namespace}/web: spec.replicas",)
    assert "ignored: Deployment.apps" in drift_as_text(ignored)


async def test_an_ignore_rule_hides_only_its_own_field(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    commit = live_env.commit({"web.yaml": deployment(2)}, drift=HPA_IGNORE)
    assert (await live_env.apply(commit)).succeeded
    autoscale(live_env, 4)
    image = "web=registry.example.com/web:6.6.6"
    live_env.kubectl.run("set", "image", "deployment/web", image, "-n", ns)

    drift = await _drift(live_env, commit)

    (item,) = drift.objects
    assert item.fields == ("spec.template.spec.containers[0].image",)
    assert "replicas" not in item.change.diff


async def test_secret_drift_never_shows_a_value(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2-git}\n"
    )
    commit = live_env.commit({"db.yaml": secret})
    assert (await live_env.apply(commit)).succeeded
    edited = base64.b64encode(b"hunter2-by-hand").decode()
    live_env.kubectl.run(
        "patch", "secret", "db", "-n", ns, "-p", f'{{"data":{{"password":"{edited}"}}}}'
    )

    drift = await _drift(live_env, commit)

    (item,) = drift.objects
    assert item.fields == ("data.password",)
    text = drift_as_text(drift) + json.dumps([o.change.diff for o in drift.objects])
    for value in (
        "hunter2-git",
        "hunter2-by-hand",
        edited,
        base64.b64encode(b"hunter2-git").decode(),
    ):
        assert value not in text


async def test_an_unreachable_cluster_is_never_a_clean_bill(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    commit = live_env.commit({"web.yaml": configmap("web", level="1")})
    assert (await live_env.apply(commit)).succeeded
    dead = ClusterSettings("test", kubeconfig=_closed_port_kubeconfig(live_env, tmp_path))

    drift = await _drift(live_env, commit, dead)

    assert drift.state is DriftState.UNKNOWN
    assert drift.failure is not None and "unreachable" in drift.failure
    assert "cannot compare" in drift_as_text(drift)


def _closed_port_kubeconfig(live_env: LiveEnv, tmp_path: Path) -> Path:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    config = json.loads(live_env.plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    return path
