"""A 35-object microservices repository, and a release pull request against it.

The shape of a typical small microservices repository (one file per service under
`kubernetes-manifests/`, each a ServiceAccount, a Deployment and a ClusterIP Service; a
Redis cache; a public LoadBalancer in front of the web frontend; a load generator).
Written for these benchmarks: every value is our own. The release bumps every service's
image tag and scales the frontend, as such a repository's release pull requests do.

    python -m benchmarks.storefront --out /tmp/storefront
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.manifests import ManifestFile, Obj, write

REGISTRY = "registry.example.com/storefront"
# (service, container port, language-ish resource needs: cpu request m, memory Mi)
SERVICES = (
    ("frontend", 8080, 100, 64),
    ("cart", 7070, 200, 64),
    ("catalog", 3550, 100, 64),
    ("currency", 7000, 100, 64),
    ("payment", 50051, 100, 64),
    ("shipping", 50051, 100, 64),
    ("email", 8080, 100, 64),
    ("checkout", 5050, 100, 64),
    ("recommendation", 8080, 100, 220),
    ("ads", 9555, 200, 180),
)
OLD_TAG, NEW_TAG = "v1.8.2", "v1.9.0"


def _labels(app: str) -> Obj:
    return {"app": app, "app.kubernetes.io/part-of": "storefront"}


def _meta(name: str, app: str) -> Obj:
    return {"name": name, "labels": _labels(app)}


def _account(app: str) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(app, app)}


def _container(app: str, port: int, cpu: int, memory: int, tag: str) -> Obj:
    probe = {"grpc": {"port": port}} if port == 50051 else {"tcpSocket": {"port": port}}
    return {
        "name": "server",
        "image": f"{REGISTRY}/{app}:{tag}",
        "ports": [{"containerPort": port}],
        "env": [{"name": "PORT", "value": str(port)}],
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "periodSeconds": 10},
        "resources": {
            "requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"},
            "limits": {"cpu": f"{cpu * 2}m", "memory": f"{memory * 2}Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _deployment(app: str, container: Obj, replicas: int = 1) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(app, app),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": _labels(app)},
                "spec": {
                    "serviceAccountName": app,
                    "terminationGracePeriodSeconds": 5,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                    "containers": [container],
                },
            },
        },
    }


def _service(name: str, app: str, port: int, public: bool = False) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, app),
        "spec": {
            "type": "LoadBalancer" if public else "ClusterIP",
            "selector": {"app": app},
            "ports": [
                {
                    "name": "http" if public else "grpc",
                    "port": 80 if public else port,
                    "targetPort": port,
                }
            ],
        },
    }


def _service_file(app: str, port: int, cpu: int, memory: int, release: bool) -> ManifestFile:
    tag = NEW_TAG if release else OLD_TAG
    replicas = 3 if release and app == "frontend" else 1
    objects = [
        _account(app),
        _deployment(app, _container(app, port, cpu, memory, tag), replicas),
        _service(app, app, port),
    ]
    if app == "frontend":
        objects.append(_service("frontend-external", app, port, public=True))
    return ManifestFile(f"kubernetes-manifests/{app}.yaml", objects)


def _cache() -> ManifestFile:
    redis = _container("redis", 6379, 70, 200, "7.2-alpine")
    redis["image"] = "redis:7.2-alpine"
    return ManifestFile(
        "kubernetes-manifests/redis-cart.yaml",
        [_deployment("redis-cart", redis), _service("redis-cart", "redis-cart", 6379)],
    )


def _load_generator(release: bool) -> ManifestFile:
    container = _container("loadgenerator", 8089, 300, 256, NEW_TAG if release else OLD_TAG)
    container.pop("ports")
    container.pop("readinessProbe")
    container.pop("livenessProbe")
    container["env"] = [{"name": "FRONTEND_ADDR", "value": "frontend:8080"}]
    return ManifestFile(
        "kubernetes-manifests/loadgenerator.yaml",
        [_account("loadgenerator"), _deployment("loadgenerator", container)],
    )


def storefront(release: bool = False) -> list[ManifestFile]:
    """The repository's manifests: 35 objects; `release` gives the release PR's head."""
    files = [_service_file(*service, release) for service in SERVICES]
    return [*files, _cache(), _load_generator(release)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--release", action="store_true", help="the release PR's head")
    args = parser.parse_args()
    print(f"{write(storefront(args.release), args.out)} objects below {args.out}")


if __name__ == "__main__":
    main()
