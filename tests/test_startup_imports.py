"""`validate` and `plan` import only what they use, so their start-up cannot grow unseen.

Each heavy module below costs tens of milliseconds or more to import; a command that
checks valid local files needs none of them. The command runs in a new interpreter, as
a user runs it, and the test reads which modules that interpreter loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.gitrepos import Repo
from helpers.livecluster import CLUSTER, LiveEnv, configmap

# The reference validator (only words a finding), the cluster clients, the web server,
# the database drivers and the forge clients: no command that reads local files needs them.
HEAVY = (
    "jsonschema",
    "referencing",
    "kubernetes",
    "kubernetes_asyncio",
    "aiohttp",
    "psycopg",
    "sqlite3",
    "gidgethub",
    "gitlab",
    "bot.server",
    "bot.clusters",
    "bot.store",
)
# What a plan runs on and validate does not: asyncio (the check pool, the renderers), the
# plans and what a controller's dry run needs (the settings once imported them all).
PLAN_MACHINERY = (
    "asyncio",
    "bot.renderers",
    "bot.stages.checkpool",
    "bot.core.controllerapply",
    "bot.core.appsets",
    "bot.core.plans",
    "bot.core.livediffs",
)
# What a plan of a repository of plain files needs none of: the audit ledger (only an
# apply's comment names it), the Argo CD and Flux machinery (only a config that asks for
# their units), and the kustomize and Helm renderers (only an environment built by them).
NOT_FOR_PLAIN_FILES = (
    "bot.core.ledgerchain",
    "bot.core.audit",
    "bot.core.gitopsapps",
    "bot.core.appsets",
    "bot.core.apptemplates",
    "bot.core.fluxhelm",
    "bot.stages.controllers",
    "bot.renderers.kustomize",
    "bot.renderers.kustomizations",
    "bot.renderers.helm",
    "bot.renderers.charts",
)
# What a command that reaches a cluster with a certificate or a token needs: the adapter.
REACHING_A_CLUSTER = ("bot.clusters",)
ADAPTER = ("bot.clusters.kubeapi", "bot.clusters.transports", "bot.clusters.kubeconfigs")
# A second thread keeps validate from forking (stages/validate.py: _can_fork), so the
# parsing and checks run in this interpreter and what they import is seen here too.
RUN = """
import json, sys, threading, time
threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
from bot.__main__ import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-NUMBER, namespace: shop}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata: {labels: {app: shop}}
    spec:
      containers:
        - name: shop
          image: shop:1.2.3
          resources: {limits: {memory: 128Mi}}
"""


def modules_loaded(
    tmp_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    report = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", RUN, str(report), *arguments],
        check=True,
        capture_output=True,
        env=os.environ if env is None else env,
        timeout=120,
    )
    result = json.loads(report.read_text())
    return result["code"], result["modules"]


def heavy_in(modules: list[str], heavy: tuple[str, ...] = HEAVY + PLAN_MACHINERY) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy)]


@pytest.mark.parametrize("output", ["text", "json", "sarif"])
def test_validate_of_valid_files_imports_no_heavy_module(tmp_path: Path, output: str) -> None:
    (tmp_path / "deploy").mkdir()
    for index in range(3):
        (tmp_path / "deploy" / f"shop-{index}.yaml").write_text(
            DEPLOYMENT.replace("NUMBER", str(index))
        )
    code, modules = modules_loaded(tmp_path, "validate", "--format", output, str(tmp_path))
    assert code == 0
    assert "bot.stages.validate" in modules  # the command did run
    assert heavy_in(modules) == []


def test_the_check_sees_a_heavy_import(tmp_path: Path) -> None:
    """The same check finds the web server where a command does import it."""
    report = tmp_path / "modules.json"
    script = (
        "import json, sys, bot.server.app\njson.dump(sorted(sys.modules), open(sys.argv[1], 'w'))"
    )
    subprocess.run([sys.executable, "-c", script, str(report)], check=True, env=os.environ)
    assert "aiohttp" in heavy_in(json.loads(report.read_text()))


def test_plan_against_a_certificate_kubeconfig_imports_no_heavy_module(
    live_env: LiveEnv, tmp_path: Path
) -> None:
    """A cluster reached with a client certificate takes neither the Kubernetes client nor
    aiohttp (bot/clusters/http11.py sends its requests)."""
    assert "client-certificate-data" in live_env.plane.admin_kubeconfig.read_text()
    base = live_env.commit({"a.yaml": configmap("a", x="1")})
    head = live_env.commit({"a.yaml": configmap("a", x="2")})
    clusters = {CLUSTER: {"kubeconfig": str(live_env.plane.admin_kubeconfig)}}
    report = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env |= {"GITOPS_BOT_CLUSTERS": json.dumps(clusters), "GITOPS_BOT_SECRET_FINGERPRINT_KEY": "k"}
    arguments = ["plan", "--repo", str(live_env.repo.path), "--base", base, "--head", head]

    done = subprocess.run(
        [sys.executable, "-c", RUN, str(report), *arguments, "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    (environment,) = json.loads(done.stdout)["environments"]
    assert environment["live"]["failure"] is None  # the cluster was reached
    modules = json.loads(report.read_text())["modules"]
    assert "bot.clusters.http11" in modules
    assert [m for m in heavy_in(modules, HEAVY) if not m.startswith(REACHING_A_CLUSTER)] == []
    assert heavy_in(modules, NOT_FOR_PLAIN_FILES) == []


def test_plan_without_a_cluster_imports_no_cluster_client(tmp_path: Path, repo: Repo) -> None:
    config = {"version": 1, "environments": {"prod": {"path": "deploy", "cluster": "prod"}}}
    tree = {".gitops-bot.yaml": json.dumps(config)}
    base = repo.commit(tree | {"deploy/a.yaml": DEPLOYMENT.replace("NUMBER", "1")})
    head = repo.commit(tree | {"deploy/a.yaml": DEPLOYMENT.replace("NUMBER", "2")})

    code, modules = modules_loaded(
        tmp_path, "plan", "--repo", str(repo.path), "--base", base, "--head", head
    )

    assert code == 0
    assert "bot.stages.plan" in modules  # the command did run
    # The directory of clusters is light; what reaches a cluster is not imported.
    assert [m for m in heavy_in(modules, HEAVY) if not m.startswith("bot.clusters")] == []
    assert [m for m in ADAPTER if m in modules] == []
    assert heavy_in(modules, NOT_FOR_PLAIN_FILES) == []


def test_plan_of_a_kustomization_imports_its_renderer_only(
    tmp_path: Path, repo: Repo, render_tools: Path
) -> None:
    """The renderers load where an environment needs them: kustomize's here, not Helm's."""
    config = {
        "version": 1,
        "environments": {
            "prod": {"path": "deploy", "cluster": "prod", "source": {"type": "kustomize"}}
        },
    }
    tree = {
        ".gitops-bot.yaml": json.dumps(config),
        "deploy/kustomization.yaml": "resources: [a.yaml]\n",
    }
    base = repo.commit(tree | {"deploy/a.yaml": DEPLOYMENT.replace("NUMBER", "1")})
    head = repo.commit(tree | {"deploy/a.yaml": DEPLOYMENT.replace("NUMBER", "2")})
    env = os.environ | {"GITOPS_BOT_KUSTOMIZE_COMMAND": str(render_tools / "kustomize")}

    code, modules = modules_loaded(
        tmp_path, "plan", "--repo", str(repo.path), "--base", base, "--head", head, env=env
    )

    assert code == 0
    assert "bot.renderers.kustomize" in modules
    assert heavy_in(modules, NOT_FOR_PLAIN_FILES) == [
        "bot.renderers.kustomizations",
        "bot.renderers.kustomize",
    ]


FREEZES = """
import gc, json, sys
from bot.__main__ import main
counts = [gc.get_freeze_count()]
for _ in range(2):
    code = main(["validate", sys.argv[2]])
    counts.append(gc.get_freeze_count())
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "counts": counts, "enabled": gc.isenabled()}, out)
"""


def test_a_command_start_up_is_frozen_once_and_the_collector_runs_after(tmp_path: Path) -> None:
    """What the first command's imports built is frozen (no collector pass walks it again);
    a second command in the same process imports nothing new and freezes nothing more."""
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "shop.yaml").write_text(DEPLOYMENT.replace("NUMBER", "1"))
    report = tmp_path / "freezes.json"
    subprocess.run(
        [sys.executable, "-c", FREEZES, str(report), str(tmp_path / "deploy")],
        check=True,
        env=os.environ,
        timeout=120,
    )
    result = json.loads(report.read_text())
    assert result["code"] == 0
    before, first, second = result["counts"]
    assert before == 0
    assert first > 10_000  # the command's modules and all imported before them
    assert second == first
    assert result["enabled"]
