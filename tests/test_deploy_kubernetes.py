"""deploy/kubernetes: the bot's own validator passes it, it agrees with the server's settings,
and on a real API server the bot's ServiceAccount can do exactly its job: apply, prune and
keep inventories in the namespaces it is given, and nothing anywhere else."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.controlplane import ControlPlane
from helpers.githubbot import deployment
from helpers.gitrepos import Repo
from helpers.livecluster import Kubectl, LiveEnv, configmap

from bot.config.clusters import ClusterSettings, parse_clusters
from bot.config.secrets import Secret
from bot.config.settings import PREFIX, Settings, load_settings
from bot.core.applies import ApplyResult, Outcome
from bot.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "deploy/kubernetes"
BOT_NAMESPACE, MANAGED = "gitops-bot", "shop"
IDENTITY = f"system:serviceaccount:{BOT_NAMESPACE}:gitops-bot"
GUARD_SECONDS = 60  # against a hang, never a timing claim


def objects() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(MANIFESTS.rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    return found


def container() -> dict[str, Any]:
    (only,) = one("Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def container_env() -> dict[str, str]:
    return {e["name"]: e["value"] for e in container()["env"]}


def test_the_bots_own_validator_passes_them_with_its_default_policies() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "validate", str(MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""
    assert f"{len(objects())} objects in" in done.stderr and ", 0 findings" in done.stderr


def test_probes_and_ports_name_what_the_server_serves() -> None:
    settings = load_settings({**container_env(), f"{PREFIX}GITHUB_WEBHOOK_SECRET": "x" * 20})
    app = create_app(with_token(settings))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    spec = container()
    assert ("GET", spec["readinessProbe"]["httpGet"]["path"]) in served
    assert spec["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert spec["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert ("GET", spec["livenessProbe"]["httpGet"]["path"]) in served
    (port,) = spec["ports"]
    assert port["containerPort"] == settings.port
    assert settings.host == "0.0.0.0"  # noqa: S104 (the Service connects from outside)
    (service_port,) = one("Service")["spec"]["ports"]
    assert service_port["targetPort"] == port["name"]


def with_token(settings: Settings) -> Settings:
    """The settings as the Secret would complete them (a token for GitHub)."""
    return Settings(**{**vars(settings), "github_token": Secret("t" * 40)})


def test_the_grace_period_covers_the_servers_shutdown() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    settings = load_settings(container_env())
    pre_stop = container()["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] == pre_stop + settings.shutdown_grace_seconds
    # Service links would define GITOPS_BOT_PORT=tcp://... from the Service's name.
    assert pod["enableServiceLinks"] is False


def test_the_pod_is_locked_down_and_sized() -> None:
    pod = one("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container()["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    limits, requests = container()["resources"]["limits"], container()["resources"]["requests"]
    assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests)
    namespace = one("Namespace", BOT_NAMESPACE)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_image_is_the_version_being_released() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert container()["image"].endswith(f"/gitops-bot:{version}")


def test_every_variable_is_a_setting_and_the_secret_template_holds_no_secret() -> None:
    names = {PREFIX + f.name.upper() for f in fields(Settings)}
    secret = one("Secret", "gitops-bot")
    assert set(container_env()) <= names
    assert set(secret["stringData"]) <= names
    for value in secret["stringData"].values():
        assert "replace-me" in value
    assert container()["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]


def test_inventories_live_where_the_rbac_lets_the_bot_write_them() -> None:
    (cluster,) = parse_clusters(container_env()[f"{PREFIX}CLUSTERS"])
    assert cluster.in_cluster
    inventory_role = one("Role", "gitops-bot-inventory")
    assert cluster.inventory_namespace == inventory_role["metadata"]["namespace"]
    assert one("Deployment")["metadata"]["namespace"] == cluster.inventory_namespace
    assert one("ServiceAccount")["metadata"]["namespace"] == BOT_NAMESPACE


# --- on a real API server ---------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(
    control_plane: ControlPlane, kubectl_bin: str, tmp_path_factory: pytest.TempPathFactory
) -> Kubectl:
    """deploy/kubernetes applied as an administrator would; kubectl as the bot's
    ServiceAccount, with a token the API server issued for it."""
    admin = Kubectl(kubectl_bin, control_plane.admin_kubeconfig)
    # Namespaces first: kubectl applies the files of a folder in name order.
    admin.run("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    admin.run("apply", "-f", str(MANIFESTS / "shop-namespace.yaml"))
    admin.run("apply", "--recursive", "-f", str(MANIFESTS))  # the Secret template too
    token = admin.run("create", "token", "gitops-bot", "-n", BOT_NAMESPACE).strip()
    kubeconfig = tmp_path_factory.mktemp("sa") / "gitops-bot.kubeconfig"
    kubeconfig.write_text(token_kubeconfig(control_plane, token))
    kubeconfig.chmod(0o600)
    bot = Kubectl(kubectl_bin, kubeconfig)
    deadline = time.monotonic() + GUARD_SECONDS  # the authorizer's cache sees the bindings
    while can(bot, "patch", "deployments", MANAGED) != "yes":
        assert time.monotonic() < deadline, "the RoleBinding never took effect"
        time.sleep(0.1)
    return bot


def token_kubeconfig(plane: ControlPlane, token: str) -> str:
    cluster = {"server": plane.server_url, "certificate-authority": str(plane.ca_file)}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": cluster}],
            "users": [{"name": "gitops-bot", "user": {"token": token}}],
            "contexts": [{"name": "bot", "context": {"cluster": "test", "user": "gitops-bot"}}],
            "current-context": "bot",
        }
    )


def can(bot: Kubectl, verb: str, resource: str, namespace: str | None = None) -> str:
    where = ["-n", namespace] if namespace else []
    return bot.run("auth", "can-i", verb, resource, *where, check=False).strip()


def test_the_token_is_the_bots_service_account(installed: Kubectl) -> None:
    who = json.loads(installed.run("auth", "whoami", "-o", "json"))
    assert who["status"]["userInfo"]["username"] == IDENTITY


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    [
        ("get", "deployments.apps", MANAGED),
        ("list", "deployments.apps", MANAGED),  # one list per kind instead of a read each
        ("list", "configmaps", MANAGED),
        ("patch", "deployments.apps", MANAGED),  # server-side apply, and its dry run
        ("create", "deployments.apps", MANAGED),  # an apply that creates
        ("delete", "configmaps", MANAGED),  # prune
        ("patch", "secrets", MANAGED),
        ("patch", "services", MANAGED),
        ("delete", "cronjobs.batch", MANAGED),
        ("patch", "ingresses.networking.k8s.io", MANAGED),
        ("patch", "poddisruptionbudgets.policy", MANAGED),
        ("get", "configmaps", BOT_NAMESPACE),  # its inventories
        ("patch", "configmaps", BOT_NAMESPACE),
        ("create", "configmaps", BOT_NAMESPACE),
        ("list", "customresourcedefinitions.apiextensions.k8s.io", None),  # their schemas
    ],
)
def test_the_bot_may_do_its_job(
    installed: Kubectl, verb: str, resource: str, namespace: str
) -> None:
    assert can(installed, verb, resource, namespace) == "yes"


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    [
        ("patch", "deployments.apps", "default"),  # a namespace nobody gave it
        ("get", "secrets", "kube-system"),
        ("patch", "configmaps", "kube-system"),
        ("get", "secrets", BOT_NAMESPACE),  # its own credentials
        ("patch", "deployments.apps", BOT_NAMESPACE),  # itself
        ("delete", "configmaps", BOT_NAMESPACE),
        ("create", "rolebindings.rbac.authorization.k8s.io", MANAGED),  # no escalation
        ("patch", "roles.rbac.authorization.k8s.io", MANAGED),
        ("create", "pods", MANAGED),  # only through the workloads it manages
        ("create", "pods/exec", MANAGED),
        ("list", "secrets", MANAGED),  # it reads Secrets by name, never lists them
        ("list", "configmaps", "kube-system"),
        ("watch", "configmaps", MANAGED),
        ("update", "deployments.apps", MANAGED),
        ("create", "namespaces", None),  # nothing cluster-scoped
        ("delete", "namespaces", None),
        ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("patch", "customresourcedefinitions.apiextensions.k8s.io", None),
        ("list", "nodes", None),
        ("get", "persistentvolumes", None),
    ],
)
def test_the_bot_is_forbidden_everything_else(
    installed: Kubectl, verb: str, resource: str, namespace: str | None
) -> None:
    assert can(installed, verb, resource, namespace) == "no"


@pytest.fixture
def as_the_service_account(
    installed: Kubectl, control_plane: ControlPlane, tmp_path: Path
) -> LiveEnv:
    """Environment `prod` of a git repo deploying to `shop`, applied by the bot through its
    ServiceAccount, inventory in the bot's namespace: as the Deployment configures it."""
    cluster = ClusterSettings(
        "test", kubeconfig=installed.kubeconfig, inventory_namespace=BOT_NAMESPACE
    )
    admin = Kubectl(installed.binary, control_plane.admin_kubeconfig)
    return LiveEnv(MANAGED, Repo(tmp_path / "repo"), admin, cluster, control_plane)


async def test_the_service_account_applies_prunes_and_is_refused_elsewhere(
    as_the_service_account: LiveEnv,
) -> None:
    env = as_the_service_account
    web = deployment("web", "registry.example.com/web:1.0.0")
    first = env.commit({"web.yaml": web, "settings.yaml": configmap("settings", mode="a")})
    assert_applied(await env.apply(first))
    assert env.configmap("settings") is not None
    inventory = env.kubectl.get("configmap", "gitops-bot-inventory-prod", BOT_NAMESPACE)
    assert inventory is not None, "the inventory is kept in the bot's namespace"
    second = env.commit({"web.yaml": web})
    assert_applied(await env.apply(second))
    assert env.configmap("settings") is None, "pruned"
    elsewhere = configmap("elsewhere", mode="b").replace(
        "metadata:\n", "metadata:\n  namespace: default\n"
    )
    third = env.commit({"web.yaml": web, "elsewhere.yaml": elsewhere})
    refused = await env.apply(third)
    assert not refused.succeeded
    failed = [o for o in refused.objects if o.outcome is Outcome.FAILED]
    assert [(o.key.namespace, o.key.name) for o in failed] == [("default", "elsewhere")]
    assert "forbidden" in failed[0].message
    assert env.kubectl.get("configmap", "elsewhere", "default") is None


def assert_applied(result: ApplyResult) -> None:
    assert result.succeeded, result
    assert not result.dry_run
