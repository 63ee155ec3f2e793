"""Generate real-shaped Kubernetes manifests (valid for 1.33) for the benchmarks.

The corpus looks like a platform monorepo: teams own namespaces, each team runs a mix
of web services, workers, databases, batch jobs and node agents, and each of those is
the bundle of objects such an app really has (Deployment, Service, Ingress, HPA, PDB,
ConfigMap, Secret, RBAC, NetworkPolicy ...). Objects pass the Kubernetes 1.33 strict
schemas and the bot's default policies, so a run measures the checks, not error paths.

    python -m benchmarks.manifests --objects 10000 --out /tmp/corpus-10k
"""

from __future__ import annotations

import argparse
import base64
import random
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

try:
    from yaml import CSafeDumper as Dumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as Dumper  # type: ignore[assignment]

Obj = dict[str, Any]

WORDS = (
    "cart",
    "checkout",
    "payment",
    "ledger",
    "search",
    "catalog",
    "review",
    "profile",
    "session",
    "billing",
    "invoice",
    "notify",
    "mailer",
    "shipping",
    "pricing",
    "quote",
    "inventory",
    "auth",
    "gateway",
    "metrics",
    "audit",
    "export",
    "report",
    "render",
    "upload",
    "media",
    "thumbs",
    "geo",
    "routing",
    "rating",
    "wishlist",
    "coupon",
    "tax",
    "fraud",
)
TEAMS = (
    "storefront",
    "payments",
    "logistics",
    "identity",
    "data",
    "platform",
    "growth",
    "support",
    "risk",
    "media",
    "mobile",
    "partners",
)
REGISTRIES = ("ghcr.io/acme", "registry.example.com/platform", "europe-docker.pkg.dev/acme/prod")


@dataclass
class ManifestFile:
    """One file of the corpus: a path relative to the root and the objects it holds."""

    path: str
    objects: list[Obj] = field(default_factory=list)

    def text(self) -> str:
        return "---\n".join(dump(o) for o in self.objects)


class _PlainDumper(Dumper):
    """Writes shared values out in full: manifests in the wild carry no anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(obj: Obj) -> str:
    return str(yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False))


# --- building blocks ------------------------------------------------------------------


class Names:
    """Random but plausible values, all drawn from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def version(self) -> str:
        r = self.rng
        return f"{r.randint(0, 4)}.{r.randint(0, 30)}.{r.randint(0, 20)}"

    def image(self, app: str) -> str:
        registry = self.rng.choice(REGISTRIES)
        if self.rng.random() < 0.15:
            digest = "".join(self.rng.choice("0123456789abcdef") for _ in range(64))
            return f"{registry}/{app}@sha256:{digest}"
        return f"{registry}/{app}:{self.version()}"

    def cpu(self, low: int, high: int) -> str:
        return f"{self.rng.randrange(low, high, 50)}m"

    def memory(self, low: int, high: int) -> str:
        return f"{self.rng.randrange(low, high, 32)}Mi"

    def token(self, size: int = 24) -> str:
        raw = bytes(self.rng.getrandbits(8) for _ in range(size))
        return base64.b64encode(raw).decode()


def labels(app: str, team: str, component: str, version: str | None = None) -> Obj:
    found = {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": f"{app}-{team}",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": team,
        "app.kubernetes.io/managed-by": "gitops-bot",
    }
    if version:
        found["app.kubernetes.io/version"] = version
    return found


def meta(name: str, namespace: str | None, lbls: Obj, annotations: Obj | None = None) -> Obj:
    result: Obj = {"name": name}
    if namespace:
        result["namespace"] = namespace
    result["labels"] = dict(lbls)
    if annotations:
        result["annotations"] = annotations
    return result


def selector_labels(app: str, team: str) -> Obj:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/instance": f"{app}-{team}"}


def container(n: Names, app: str, name: str, port: int | None, env: dict[str, str]) -> Obj:
    r = n.rng
    result: Obj = {"name": name, "image": n.image(app), "imagePullPolicy": "IfNotPresent"}
    if r.random() < 0.3:
        result["args"] = [f"--log-level={r.choice(['info', 'debug', 'warn'])}", "--json-logs"]
    if port:
        result["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        if r.random() < 0.5:
            result["ports"].append({"name": "metrics", "containerPort": 9090, "protocol": "TCP"})
    result["env"] = [{"name": k, "value": v} for k, v in env.items()]
    if r.random() < 0.4:
        result["env"].append(
            {
                "name": "POD_NAME",
                "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}},
            }
        )
    result["envFrom"] = [{"configMapRef": {"name": f"{app}-config"}}]
    result["resources"] = {
        "requests": {"cpu": n.cpu(50, 500), "memory": n.memory(64, 512)},
        "limits": {"cpu": n.cpu(500, 2000), "memory": n.memory(512, 2048)},
    }
    if port:
        probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10}
        result["readinessProbe"] = {**probe, "initialDelaySeconds": r.randint(0, 10)}
        result["livenessProbe"] = {**probe, "failureThreshold": r.randint(3, 6)}
    result["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    result["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - in the pod
    return result


def pod_spec(n: Names, app: str, containers: list[Obj], account: str) -> Obj:
    r = n.rng
    spec: Obj = {
        "serviceAccountName": account,
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}],
    }
    if r.random() < 0.3:
        spec["terminationGracePeriodSeconds"] = r.choice([30, 60, 120])
    if r.random() < 0.25:
        spec["nodeSelector"] = {"kubernetes.io/os": "linux"}
    if r.random() < 0.2:
        spec["tolerations"] = [
            {"key": "dedicated", "operator": "Equal", "value": "apps", "effect": "NoSchedule"}
        ]
    if r.random() < 0.3:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": app}},
            }
        ]
    return spec


def app_env(n: Names, app: str, team: str) -> dict[str, str]:
    env = {"APP_NAME": app, "TEAM": team, "PORT": "8080"}
    for peer in n.rng.sample(WORDS, n.rng.randint(1, 6)):
        env[f"{peer.upper()}_URL"] = f"http://{peer}.{team}.svc.cluster.local:8080"
    return env


# --- objects --------------------------------------------------------------------------


def namespace(team: str) -> list[Obj]:
    lbls = {"team": team, "kubernetes.io/metadata.name": team}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": team, "labels": lbls}},
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "compute", "namespace": team},
            "spec": {
                "hard": {
                    "requests.cpu": "40",
                    "requests.memory": "80Gi",
                    "limits.cpu": "80",
                    "limits.memory": "160Gi",
                    "pods": "300",
                }
            },
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": {"name": "defaults", "namespace": team},
            "spec": {
                "limits": [
                    {
                        "type": "Container",
                        "default": {"cpu": "500m", "memory": "512Mi"},
                        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
                    }
                ]
            },
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny-ingress", "namespace": team},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    ]


def service_account(app: str, team: str, lbls: Obj) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(app, team, lbls),
        "automountServiceAccountToken": False,
    }


def config_map(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    r = n.rng
    data = {
        "LOG_FORMAT": "json",
        "CACHE_TTL_SECONDS": str(r.choice([30, 60, 300, 900])),
        "FEATURE_FLAGS": ",".join(r.sample(WORDS, 3)),
    }
    if r.random() < 0.5:
        data["app.yaml"] = (
            f"server:\n  port: 8080\n  timeout: {r.randint(5, 60)}s\n"
            f"upstreams:\n" + "".join(f"  - {w}.{team}:8080\n" for w in r.sample(WORDS, 3))
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(f"{app}-config", team, lbls),
        "data": data,
    }


def secret(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    r = n.rng
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta(f"{app}-secrets", team, lbls),
    }
    if r.random() < 0.2:
        body["type"] = "kubernetes.io/tls"
        body["data"] = {"tls.crt": n.token(96), "tls.key": n.token(64)}
    else:
        body["type"] = "Opaque"
        body["data"] = {"DATABASE_PASSWORD": n.token(), "API_TOKEN": n.token(32)}
        if r.random() < 0.3:
            body["stringData"] = {"SENTRY_DSN": f"https://{n.token(8)}@sentry.example.com/4"}
    return body


def deployment(n: Names, app: str, team: str, lbls: Obj, port: int | None) -> Obj:
    r = n.rng
    containers = [container(n, app, app, port, app_env(n, app, team))]
    if r.random() < 0.2:
        sidecar = container(n, "log-shipper", "log-shipper", None, {"TARGET": "loki:3100"})
        containers.append(sidecar)
    spec: Obj = {
        "replicas": r.choice([1, 2, 2, 3, 3, 4, 6]),
        "revisionHistoryLimit": r.choice([3, 5, 10]),
        "selector": {"matchLabels": selector_labels(app, team)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": r.choice(["25%", 1])},
        },
        "template": {
            "metadata": {
                "labels": dict(lbls),
                "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            },
            "spec": pod_spec(n, app, containers, app),
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(app, team, lbls),
        "spec": spec,
    }


def service(app: str, team: str, lbls: Obj, port: int, headless: bool = False) -> Obj:
    spec: Obj = {
        "type": "ClusterIP",
        "selector": selector_labels(app, team),
        "ports": [{"name": "http", "port": 80 if not headless else port, "targetPort": "http"}],
    }
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    name = f"{app}-headless" if headless else app
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, team, lbls), "spec": spec}


def ingress(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    host = f"{app}.{team}.example.com"
    annotations = {"cert-manager.io/cluster-issuer": "letsencrypt"}
    if n.rng.random() < 0.5:
        annotations["nginx.ingress.kubernetes.io/proxy-body-size"] = "8m"
    path = {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": app, "port": {"name": "http"}}},
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": meta(app, team, lbls, annotations),
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [host], "secretName": f"{app}-tls"}],
            "rules": [{"host": host, "http": {"paths": [path]}}],
        },
    }


def autoscaler(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    low = n.rng.choice([2, 3])
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta(app, team, lbls),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": app},
            "minReplicas": low,
            "maxReplicas": low * n.rng.choice([3, 5, 10]),
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
        },
    }


def disruption_budget(app: str, team: str, lbls: Obj) -> Obj:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": meta(app, team, lbls),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(app, team)}},
    }


def network_policy(app: str, team: str, lbls: Obj, port: int) -> Obj:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(f"{app}-allow", team, lbls),
        "spec": {
            "podSelector": {"matchLabels": selector_labels(app, team)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": team}}}],
                    "ports": [{"protocol": "TCP", "port": port}],
                }
            ],
        },
    }


def role_pair(app: str, team: str, lbls: Obj) -> list[Obj]:
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
    ]
    subject = {"kind": "ServiceAccount", "name": app, "namespace": team}
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": app}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(app, team, lbls),
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(app, team, lbls),
            "roleRef": ref,
            "subjects": [subject],
        },
    ]


def stateful_set(n: Names, app: str, team: str, lbls: Obj, port: int) -> Obj:
    main = container(n, app, app, port, {"PGDATA": "/var/lib/data/pgdata"})
    main["volumeMounts"].append({"name": "data", "mountPath": "/var/lib/data"})
    claim = {
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "fast-ssd",
            "resources": {"requests": {"storage": f"{n.rng.choice([10, 20, 50, 100])}Gi"}},
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": meta(app, team, lbls),
        "spec": {
            "serviceName": f"{app}-headless",
            "replicas": 3,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector_labels(app, team)},
            "template": {"metadata": {"labels": dict(lbls)}, "spec": pod_spec(n, app, [main], app)},
            "volumeClaimTemplates": [claim],
        },
    }


def cron_job(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    r = n.rng
    job = container(n, app, app, None, app_env(n, app, team))
    job["args"] = ["run", f"--batch-size={r.choice([100, 500, 1000])}"]
    template = {"metadata": {"labels": dict(lbls)}, "spec": pod_spec(n, app, [job], app)}
    template["spec"]["restartPolicy"] = "OnFailure"
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": meta(app, team, lbls),
        "spec": {
            "schedule": f"{r.randint(0, 59)} {r.choice(['*', '*/2', '3', '*/6'])} * * *",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 1,
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": template}},
        },
    }


def daemon_set(n: Names, app: str, team: str, lbls: Obj) -> Obj:
    agent = container(n, app, app, 9100, {"NODE_EXPORTER": "true"})
    spec = pod_spec(n, app, [agent], app)
    spec["tolerations"] = [{"operator": "Exists"}]
    spec["priorityClassName"] = "node-critical"
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": meta(app, team, lbls),
        "spec": {
            "selector": {"matchLabels": selector_labels(app, team)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {"metadata": {"labels": dict(lbls)}, "spec": spec},
        },
    }


def cluster_role_pair(app: str, team: str, lbls: Obj) -> list[Obj]:
    name = f"{team}-{app}"
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(name, None, lbls),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(name, None, lbls),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": name,
            },
            "subjects": [{"kind": "ServiceAccount", "name": app, "namespace": team}],
        },
    ]


def platform_objects() -> list[Obj]:
    """A few cluster-wide objects every platform repository carries."""
    return [
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {"name": "fast-ssd"},
            "provisioner": "pd.csi.storage.gke.io",
            "parameters": {"type": "pd-ssd"},
            "reclaimPolicy": "Retain",
            "allowVolumeExpansion": True,
            "volumeBindingMode": "WaitForFirstConsumer",
        },
        {
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": "node-critical"},
            "value": 1000000,
            "globalDefault": False,
            "description": "Node agents: scheduled before any application pod.",
        },
    ]


# --- apps: the bundles real services come as -------------------------------------------

Bundle = list[tuple[str, list[Obj]]]  # file name -> objects, below the app's folder


def web_app(n: Names, app: str, team: str, lbls: Obj) -> Bundle:
    port = n.rng.choice([8080, 8000, 3000])
    files: Bundle = [
        ("deployment.yaml", [deployment(n, app, team, lbls, port)]),
        ("service.yaml", [service(app, team, lbls, port)]),
        ("config.yaml", [config_map(n, app, team, lbls), service_account(app, team, lbls)]),
        ("secret.yaml", [secret(n, app, team, lbls)]),
        ("ingress.yaml", [ingress(n, app, team, lbls)]),
        ("scaling.yaml", [autoscaler(n, app, team, lbls), disruption_budget(app, team, lbls)]),
    ]
    if n.rng.random() < 0.5:
        files.append(("network-policy.yaml", [network_policy(app, team, lbls, port)]))
    return files


def worker_app(n: Names, app: str, team: str, lbls: Obj) -> Bundle:
    objects = [
        service_account(app, team, lbls),
        config_map(n, app, team, lbls),
        deployment(n, app, team, lbls, None),
        *role_pair(app, team, lbls),
    ]
    return [("all.yaml", objects)]


def database_app(n: Names, app: str, team: str, lbls: Obj) -> Bundle:
    return [
        ("statefulset.yaml", [stateful_set(n, app, team, lbls, 5432)]),
        ("services.yaml", [service(app, team, lbls, 5432, True), service(app, team, lbls, 5432)]),
        ("config.yaml", [config_map(n, app, team, lbls), secret(n, app, team, lbls)]),
        ("access.yaml", [service_account(app, team, lbls), disruption_budget(app, team, lbls)]),
        ("network-policy.yaml", [network_policy(app, team, lbls, 5432)]),
    ]


def batch_app(n: Names, app: str, team: str, lbls: Obj) -> Bundle:
    objects = [cron_job(n, app, team, lbls), config_map(n, app, team, lbls)]
    return [("cronjob.yaml", objects), ("rbac.yaml", [service_account(app, team, lbls)])]


def agent_app(n: Names, app: str, team: str, lbls: Obj) -> Bundle:
    return [
        ("daemonset.yaml", [daemon_set(n, app, team, lbls)]),
        ("rbac.yaml", [service_account(app, team, lbls), *cluster_role_pair(app, team, lbls)]),
        ("config.yaml", [config_map(n, app, team, lbls)]),
    ]


APP_KINDS: tuple[tuple[str, Callable[[Names, str, str, Obj], Bundle], float], ...] = (
    ("web", web_app, 0.45),
    ("worker", worker_app, 0.25),
    ("database", database_app, 0.1),
    ("batch", batch_app, 0.15),
    ("agent", agent_app, 0.05),
)


def _bundles(n: Names) -> Iterator[tuple[str, Bundle]]:
    """Endless stream of (folder, bundle): one namespace per team, then its apps."""
    round_ = 0
    while True:
        for team_word in TEAMS:
            team = team_word if round_ == 0 else f"{team_word}-{round_}"
            yield f"namespaces/{team}", [("namespace.yaml", namespace(team))]
            for app_word in n.rng.sample(WORDS, n.rng.randint(6, 14)):
                style, build, _ = n.rng.choices(APP_KINDS, weights=[w for *_, w in APP_KINDS])[0]
                app = f"{app_word}-{style}" if style != "web" else app_word
                component = "server" if style == "web" else style
                lbls = labels(app, team, component, n.version())
                yield f"apps/{team}/{app}", build(n, app, team, lbls)
        round_ += 1


def generate(count: int, seed: int = 1) -> list[ManifestFile]:
    """Exactly `count` objects in files laid out like a platform monorepo."""
    n = Names(random.Random(seed))  # noqa: S311 - test data, not secrets
    files = [ManifestFile("cluster/platform.yaml", platform_objects()[:count])]
    left = count - len(files[0].objects)
    bundles = _bundles(n)
    while left > 0:
        folder, bundle = next(bundles)
        for name, objects in bundle:
            taken = objects[:left]
            if taken:
                files.append(ManifestFile(f"{folder}/{name}", taken))
                left -= len(taken)
    return files


# --- changes: the head commit of a pull request ---------------------------------------


def change(files: list[ManifestFile], share: float, seed: int = 2) -> list[ManifestFile]:
    """A copy where about `share` of the objects changed: mostly edits, some adds and removes.

    Of the changed objects 80% are edited in place (an image bump, a replica count, a
    config value, a label), 10% are deleted and 10% are new objects in a new file.
    """
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    total = sum(len(f.objects) for f in files)
    picked = set(rng.sample(range(total), max(1, round(total * share))))
    result: list[ManifestFile] = []
    added: list[Obj] = []
    index = 0
    for source in files:
        kept: list[Obj] = []
        for obj in source.objects:
            if index in picked and rng.random() < 0.1:
                kept.append(obj)
                added.append(_renamed(obj))
            elif index in picked and rng.random() < 0.1 / 0.9:
                pass  # deleted in the head commit
            else:
                kept.append(_edited(obj, rng) if index in picked else obj)
            index += 1
        if kept:
            result.append(ManifestFile(source.path, kept))
    if added:
        result.append(ManifestFile("apps/added-in-this-change.yaml", added))
    return result


def _renamed(obj: Obj) -> Obj:
    copy: Obj = _deep_copy(obj)
    copy["metadata"]["name"] = f"{copy['metadata']['name']}-v2"
    return copy


def _edited(obj: Obj, rng: random.Random) -> Obj:
    copy: Obj = _deep_copy(obj)
    spec = copy.get("spec")
    if copy["kind"] in ("Deployment", "StatefulSet", "DaemonSet") and isinstance(spec, dict):
        first = spec["template"]["spec"]["containers"][0]
        first["image"] = (
            first["image"].rsplit("@", 1)[0].rsplit(":", 1)[0] + f":9.{rng.randint(0, 99)}.0"
        )
        if "replicas" in spec:
            spec["replicas"] = spec["replicas"] + 1
    elif copy["kind"] == "ConfigMap":
        copy["data"]["CACHE_TTL_SECONDS"] = str(rng.randint(1, 3600))
    else:
        copy["metadata"].setdefault("labels", {})["example.com/revision"] = str(rng.randint(1, 999))
    return copy


def _deep_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deep_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deep_copy(v) for v in obj]
    return obj


def write(files: list[ManifestFile], root: Path) -> int:
    """Write the files below `root` (emptied first); the number of objects written."""
    if root.exists():
        shutil.rmtree(root)
    for f in files:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text())
    return sum(len(f.objects) for f in files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = generate(args.objects, args.seed)
    print(f"{write(files, args.out)} objects in {len(files)} files below {args.out}")


if __name__ == "__main__":
    main()
