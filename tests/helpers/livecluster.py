"""Scenarios against the real API server: a git repo with one environment, kubectl as admin."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from bot.clusters.directory import ClusterDirectory
from bot.config.clusters import ClusterSettings
from bot.core.applies import ApplyResult
from bot.core.manifests import ObjectKey
from bot.core.plans import EnvironmentPlan, Plan
from bot.git.repos import GitRepo
from bot.schemas.catalog import catalog_for
from bot.stages.apply.deploy import DeployContext, deploy_environment
from bot.stages.live_preview import LivePreviewer
from bot.stages.plan import load_checks, plan_change
from helpers.controlplane import ControlPlane
from helpers.gitrepos import Repo

KEY = b"live-cluster-tests"
ENV = "prod"
CLUSTER = "test"


class Kubectl:
    """kubectl with one identity: sets up scenarios and checks what the bot did."""

    def __init__(self, binary: str, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, stdin: str | None = None, check: bool = True, stderr: bool = False
    ) -> str:
        """kubectl's output (with `stderr`: its error output too)."""
        done = subprocess.run(
            [self.binary, f"--kubeconfig={self.kubeconfig}", "--request-timeout=30s", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout + (done.stderr if stderr else "")

    def apply(self, text: str, *extra: str) -> None:
        self.run("apply", "-f", "-", *extra, stdin=textwrap.dedent(text))

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        where = [f"--namespace={namespace}"] if namespace else []
        out = self.run("get", kind, name, *where, "-o=json", "--ignore-not-found")
        return json.loads(out) if out.strip() else None


@dataclass
class LiveEnv:
    """One environment `prod` of a real git repo, deployed to the test control plane."""

    namespace: str
    repo: Repo
    kubectl: Kubectl
    cluster: ClusterSettings
    plane: ControlPlane

    def config(self, **options: Any) -> str:
        settings = {"path": "deploy", "cluster": CLUSTER, "namespace": self.namespace}
        settings |= {"prune": True} | options
        return json.dumps({"version": 1, "environments": {ENV: settings}})

    def commit(self, files: dict[str, str], **options: Any) -> str:
        tree = {".gitops-bot.yaml": self.config(**options)}
        tree |= {f"deploy/{name}": textwrap.dedent(text) for name, text in files.items()}
        if not files:
            tree["deploy/empty.yaml"] = "# nothing is declared here any more\n"
        return self.repo.commit(tree)

    def directory(self, cluster: ClusterSettings | None = None) -> ClusterDirectory:
        return ClusterDirectory([cluster or self.cluster])

    async def plan(self, base: str, head: str, cluster: ClusterSettings | None = None) -> Plan:
        async with self.directory(cluster) as clusters:
            live = LivePreviewer(clusters, KEY)
            return await plan_change(GitRepo(self.repo.path), base, head, KEY, live=live)

    async def env_plan(
        self, base: str, head: str, cluster: ClusterSettings | None = None
    ) -> EnvironmentPlan:
        plan = await self.plan(base, head, cluster)
        (env,) = plan.environments
        return env

    async def apply(
        self, commit: str, cluster: ClusterSettings | None = None, pr: int | None = None
    ) -> ApplyResult:
        repo = GitRepo(self.repo.path)
        checks = await load_checks(repo, commit, catalog_for)
        environment = checks.config.environment(ENV)
        assert environment is not None
        async with self.directory(cluster) as clusters:
            context = DeployContext(commit, pr_number=pr)
            return await deploy_environment(repo, environment, checks, context, clusters=clusters)

    def key(self, kind: str, name: str, group: str = "") -> ObjectKey:
        return ObjectKey(group, kind, self.namespace, name)

    def configmap(self, name: str) -> dict[str, Any] | None:
        return self.kubectl.get("configmap", name, self.namespace)

    def grant_bot(self, verbs: str, resources: str) -> None:
        """Let the `gitops-bot` identity do `verbs` on `resources` in this test's namespace.

        The aggregated "edit" role stays empty without a controller manager, so the grant
        is a Role of its own; the wait is for the authorizer's cache to see the binding.
        """
        ns = self.namespace
        self.kubectl.run(
            "create", "role", "bot", f"--verb={verbs}", f"--resource={resources}", "-n", ns
        )
        self.kubectl.run(
            "create", "rolebinding", "bot", "--role=bot", "--user=gitops-bot", "-n", ns
        )
        probe = Kubectl(self.kubectl.binary, self.plane.bot_kubeconfig)
        verb, resource = verbs.split(",")[0], resources.split(",")[0]
        deadline = time.monotonic() + 30
        while probe.run("auth", "can-i", verb, resource, "-n", ns, check=False).strip() != "yes":
            assert time.monotonic() < deadline, "the RoleBinding never took effect"
            time.sleep(0.1)

    def touching_kubeconfig(self, folder: Path, marker: Path) -> Path:
        """This cluster's kubeconfig, its user logging in with a program that touches `marker`."""
        config = json.loads(self.plane.admin_kubeconfig.read_text())
        config["users"][0]["user"] = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1",
                "command": "touch",
                "args": [str(marker)],
                "interactiveMode": "Never",
            }
        }
        path = folder / "exec.kubeconfig"
        path.write_text(json.dumps(config))
        return path

    def as_bot(self) -> ClusterSettings:
        """The same cluster through the restricted `gitops-bot` identity."""
        return replace(self.cluster, kubeconfig=self.plane.bot_kubeconfig)


@pytest.fixture
def live_env(
    control_plane: ControlPlane, kube_namespace: str, kubectl_bin: str, tmp_path: Path
) -> LiveEnv:
    cluster = ClusterSettings(
        CLUSTER, kubeconfig=control_plane.admin_kubeconfig, inventory_namespace=kube_namespace
    )
    return LiveEnv(
        kube_namespace,
        Repo(tmp_path / "repo"),
        Kubectl(kubectl_bin, control_plane.admin_kubeconfig),
        cluster,
        control_plane,
    )


def configmap(name: str, **data: str) -> str:
    body = "".join(f"  {key}: {value!r}\n" for key, value in data.items())
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{body}"


def changes_by_key(changes: Any) -> dict[str, str]:
    """{'ConfigMap ns/name': 'create', ...} from a tuple of Change."""
    return {str(c.key): str(c.action) for c in changes}


def outcomes_by_key(result: ApplyResult) -> dict[str, str]:
    return {str(o.key): str(o.outcome) for o in result.objects}
