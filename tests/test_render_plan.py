"""`gitops-bot plan` end to end, as a subprocess, on a repository of kustomize and Helm sources."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers.gitrepos import Repo
from helpers.manifests import deployment

CONFIG = textwrap.dedent("""\
    environments:
      staging:
        path: envs/staging
        cluster: main
        namespace: shop
        source: {type: kustomize}
      prod:
        path: charts/shop
        cluster: main
        namespace: shop
        source: {type: helm, values: [envs/prod/values.yaml]}
""")
TEMPLATE = deployment(name="{{ .Release.Name }}").replace(
    "replicas: 1", "replicas: {{ .Values.replicas }}"
)


def tree(staging_replicas: int, prod_replicas: int) -> dict[str, str]:
    return {
        ".gitops-bot.yaml": CONFIG,
        "base/kustomization.yaml": "resources: [deployment.yaml]\n",
        "base/deployment.yaml": deployment(),
        "envs/staging/kustomization.yaml": (
            f"resources: [../../base]\nreplicas: [{{name: web, count: {staging_replicas}}}]\n"
        ),
        "charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
        "charts/shop/templates/deployment.yaml": TEMPLATE,
        "envs/prod/values.yaml": f"replicas: {prod_replicas}\n",
    }


def plan(repo: Repo, tools: Path, base: str, head: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    args = ["--repo", str(repo.path), "--base", base, "--head", head, "--format", "markdown"]
    return subprocess.run(
        [sys.executable, "-m", "bot", "plan", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_preview_renders_both_sides_with_the_real_tools(repo: Repo, render_tools: Path) -> None:
    base = repo.commit(tree(staging_replicas=2, prod_replicas=3))
    head = repo.commit(tree(staging_replicas=4, prod_replicas=5))
    done = plan(repo, render_tools, base, head)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "🟡 update <code>Deployment.apps shop/web</code> — base/deployment.yaml:1" in out
    assert "-  replicas: 2\n+  replicas: 4" in out
    assert (
        "🟡 update <code>Deployment.apps shop/prod</code> — charts/shop/templates/deployment.yaml:2"
        in out
    )
    assert "-  replicas: 3\n+  replicas: 5" in out
    assert "config.kubernetes.io/origin" not in out


def test_a_head_that_does_not_render_blocks_with_the_tool_s_message(
    repo: Repo, render_tools: Path
) -> None:
    base = repo.commit(tree(staging_replicas=2, prod_replicas=3))
    broken = tree(staging_replicas=2, prod_replicas=3)
    broken["envs/staging/kustomization.yaml"] = "resources: [../../base]\nnamePrefix: [oops]\n"
    head = repo.commit(broken)
    done = plan(repo, render_tools, base, head)
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert "### gitops-bot plan: ❌ blocked" in out
    assert "| `staging` | `main` | cannot preview |" in out
    assert "**Cannot preview this environment:** cannot render the head: envs/staging:" in out
    assert "kustomize failed (exit code 1)" in out
    assert "No changes: 1 objects stay as they are." in out  # prod, which renders fine
