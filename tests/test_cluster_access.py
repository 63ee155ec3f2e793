"""Honest failures: forbidden, unreachable, credentials and admission refusals, named as such."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

from helpers.livecluster import LiveEnv, configmap

from bot.config.clusters import ClusterSettings
from bot.core.comments import render_plan
from bot.core.findings import Severity


async def test_the_restricted_identity_gets_a_clear_forbidden_for_other_namespaces(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    other = f"{ns}-other"
    live_env.kubectl.run("create", "namespace", other)
    live_env.grant_bot("get,create,patch,delete", "configmaps")
    elsewhere = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  namespace: {other}\n"
    head = live_env.commit({"mine.yaml": configmap("mine", a="1"), "theirs.yaml": elsewhere})

    plan = await live_env.env_plan(head, head, live_env.as_bot())

    (finding,) = [f for f in plan.findings if f.stage == "cluster"]
    assert finding.rule == "cluster.forbidden" and finding.severity is Severity.ERROR
    assert 'User "gitops-bot" cannot get resource "configmaps"' in finding.message
    assert f'in the namespace "{other}"' in finding.message
    assert finding.subject == f"ConfigMap {other}/x"
    assert plan.live is not None
    assert [str(k) for k in plan.live.unknown] == [f"ConfigMap {other}/x"]
    assert [str(c.key) for c in plan.live.changes] == [f"ConfigMap {ns}/mine"]

    result = await live_env.apply(head, live_env.as_bot())

    outcomes = {str(o.key): (str(o.outcome), o.message) for o in result.objects}
    assert outcomes[f"ConfigMap {ns}/mine"][0] == "applied"
    assert outcomes[f"ConfigMap {other}/x"][0] == "failed"
    assert "forbidden" in outcomes[f"ConfigMap {other}/x"][1]


async def test_an_unreachable_cluster_is_reported_never_as_no_changes(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    head = live_env.commit({"a.yaml": configmap("a", x="1")})
    cluster = ClusterSettings(
        "test", kubeconfig=_kubeconfig_to_closed_port(live_env, tmp_path), timeout_seconds=5
    )

    plan = await live_env.plan(head, head, cluster)
    result = await live_env.apply(head, cluster)

    (env,) = plan.environments
    assert env.live is not None and env.live.failure is not None
    assert "unreachable" in env.live.failure
    assert plan.blocking
    comment = "\n".join(render_plan(plan))
    assert "Cannot compare with the live cluster" in comment and "unreachable" in comment
    assert "No drift" not in comment
    assert not result.succeeded and result.objects == ()
    assert result.failure is not None and "unreachable" in result.failure


async def test_rejected_credentials_are_reported_as_such(live_env: LiveEnv, tmp_path: Path) -> None:
    config = json.loads(live_env.plane.bot_kubeconfig.read_text())
    user = config["users"][0]["user"]
    for key in ("client-certificate-data", "client-key-data"):
        del user[key]
    user["token"] = "not-a-valid-token"
    path = tmp_path / "token.kubeconfig"
    path.write_text(json.dumps(config))
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    env = await live_env.env_plan(head, head, ClusterSettings("test", kubeconfig=path))

    assert env.live is not None and env.live.failure is not None
    assert "rejected the bot's credentials (401 Unauthorized)" in env.live.failure
    assert "not-a-valid-token" not in env.live.failure


async def test_an_exec_credential_plugin_is_refused_unless_allowed(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    marker = tmp_path / "plugin-ran"
    path = live_env.touching_kubeconfig(tmp_path, marker)
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    env = await live_env.env_plan(head, head, ClusterSettings("test", kubeconfig=path))
    result = await live_env.apply(head, ClusterSettings("test", kubeconfig=path))

    assert env.live is not None and env.live.failure is not None
    assert "exec credential plugin (command 'touch')" in env.live.failure
    assert "allow_exec: true" in env.live.failure
    assert result.failure is not None and "exec credential plugin" in result.failure
    assert not marker.exists()


async def test_an_admission_policy_denial_is_reported_per_object(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    _deny_key(live_env, "forbidden-key")
    head = live_env.commit(
        {
            "good.yaml": configmap("good", a="1"),
            "bad.yaml": configmap("bad", **{"forbidden-key": "x"}),
        }
    )

    plan = await live_env.env_plan(head, head)

    (finding,) = [f for f in plan.findings if f.stage == "cluster"]
    assert finding.rule == "cluster.admission-denied"
    assert f"ValidatingAdmissionPolicy '{ns}-deny'" in finding.message
    assert "must not carry forbidden-key" in finding.message
    assert finding.subject == f"ConfigMap {ns}/bad" and finding.path == "deploy/bad.yaml"
    assert plan.blocking


async def test_an_admission_webhook_that_cannot_be_called_is_not_previewed(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    live_env.kubectl.apply(
        f"""
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingWebhookConfiguration
        metadata: {{name: {ns}-down}}
        webhooks:
          - name: down.{ns}.example.com
            sideEffects: NoneOnDryRun
            admissionReviewVersions: [v1]
            failurePolicy: Fail
            timeoutSeconds: 2
            clientConfig: {{url: "https://127.0.0.1:{_closed_port()}/validate"}}
            rules:
              - apiGroups: [""]
                apiVersions: [v1]
                operations: [CREATE, UPDATE]
                resources: [configmaps]
            namespaceSelector:
              matchLabels: {{kubernetes.io/metadata.name: {ns}}}
        """
    )
    head = live_env.commit({"a.yaml": configmap("a", x="1")})

    plan = await live_env.plan(head, head)

    (env,) = plan.environments
    (finding,) = [f for f in env.findings if f.stage == "cluster"]
    assert finding.rule == "cluster.admission-unavailable"
    assert f'failed calling webhook "down.{ns}.example.com"' in finding.message
    assert env.live is not None and [str(k) for k in env.live.unknown] == [f"ConfigMap {ns}/a"]
    comment = "\n".join(render_plan(plan))
    assert "1 objects could not be previewed" in comment
    assert "their changes are unknown, not absent" in comment
    live_env.kubectl.run("delete", "validatingwebhookconfiguration", f"{ns}-down")


def _deny_key(live_env: LiveEnv, key: str) -> None:
    ns = live_env.namespace
    live_env.kubectl.apply(
        f"""
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingAdmissionPolicy
        metadata: {{name: {ns}-deny}}
        spec:
          failurePolicy: Fail
          matchConstraints:
            resourceRules:
              - apiGroups: [""]
                apiVersions: [v1]
                operations: [CREATE, UPDATE]
                resources: [configmaps]
          validations:
            - expression: "!has(object.data) || !('{key}' in object.data)"
              message: "configmaps must not carry {key}"
        ---
        apiVersion: admissionregistration.k8s.io/v1
        kind: ValidatingAdmissionPolicyBinding
        metadata: {{name: {ns}-deny}}
        spec:
          policyName: {ns}-deny
          validationActions: [Deny]
          matchResources:
            namespaceSelector:
              matchLabels: {{kubernetes.io/metadata.name: {ns}}}
        """
    )
    probe = ["create", "configmap", "probe", f"--from-literal={key}=x", "--dry-run=server"]
    deadline = time.monotonic() + 30
    while "denied request" not in live_env.kubectl.run(*probe, "-n", ns, check=False, stderr=True):
        assert time.monotonic() < deadline, "the admission policy never took effect"
        time.sleep(0.2)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kubeconfig_to_closed_port(live_env: LiveEnv, tmp_path: Path) -> Path:
    config = json.loads(live_env.plane.admin_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{_closed_port()}"
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    return path
