"""The preview of Argo CD units with every shortcut of a large plan (tree indexes kept per
commit and bisected, kustomizations parsed once by text, identical builds reused, base and
head rendered at once) is byte for byte the preview made without any of them."""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest
from helpers.gitrepos import Repo
from helpers.manifests import configmap, deployment
from test_gitops_apps import URL, options
from test_gitops_appsets import TEMPLATE, appset, services

from bot import __version__
from bot.core.comments import render_plan
from bot.core.documents import Document, parse_documents
from bot.core.formats import plan_output
from bot.core.identities import RepoIdentity
from bot.git.repos import GitRepo, TreeEntry
from bot.renderers import builds, checkouts, kustomizations
from bot.renderers.builds import BuildOutputs
from bot.renderers.checkouts import TreeIndex
from bot.stages import plan as plan_stage
from bot.stages.plan import plan_change

A = TypeVar("A")
B = TypeVar("B")
GIT_DIRECTORIES = (
    f"- git: {{repoURL: '{URL}', revision: HEAD, directories: [{{path: 'services/*'}}]}}\n"
)
# One folder deployed twice, to two namespaces: the same kustomize build for both.
TWICE = """\
- list:
    elements: [{copy: web-a}, {copy: web-b}]
"""
COPIES = f"""\
metadata: {{name: "{{{{copy}}}}"}}
spec:
  project: default
  source: {{repoURL: "{URL}", targetRevision: HEAD, path: services/web}}
  destination: {{server: https://kubernetes.default.svc, namespace: "{{{{copy}}}}"}}
"""


def repository(repo: Repo) -> tuple[str, str]:
    files = services("web", "api", "db", "jobs")
    files |= {
        "apps/set.yaml": appset("svc", GIT_DIRECTORIES, TEMPLATE),
        "apps/copies.yaml": appset("copies", TWICE, COPIES),
        "services/db/settings.yaml": configmap(mode="fast"),
    }
    files["services/db/kustomization.yaml"] = textwrap.dedent("""\
        resources: [../../base, settings.yaml]
        namePrefix: db-
        images: [{name: registry.example.com/web, newTag: '9'}]
        """)
    base = repo.commit(files)
    head = repo.commit(
        files
        | {"base/deployment.yaml": deployment(image="registry.example.com/web:2.0.0")}
        | {"services/db/settings.yaml": configmap(mode="slow")}
    )
    return base, head


async def preview(repo: Repo, base: str, head: str, tools: Path) -> tuple[str, tuple[str, ...]]:
    plan = await plan_change(
        GitRepo(repo.path),
        base,
        head,
        b"key",
        render_options=options(tools),
        identity=RepoIdentity((URL,), branches=("main",)),
    )
    return plan_output("json", plan, __version__), render_plan(plan)


def scanned_below(index: TreeIndex, folders: Iterable[str]) -> list[TreeEntry]:
    roots = tuple("" if f == "." else f + "/" for f in set(folders))
    return [e for path, e in index.entries.items() if path.startswith(roots)]


def parsed_each_time(text: bytes) -> tuple[Document, ...]:
    return tuple(parse_documents(text))


async def one_after_the_other(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    return await first, await second


async def test_the_shortcuts_change_no_byte_of_the_plan_or_the_comment(
    repo: Repo, render_tools: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, head = repository(repo)
    monkeypatch.setattr(builds, "BUILDS", BuildOutputs())
    fast = await preview(repo, base, head, render_tools)

    monkeypatch.setattr(builds, "BUILDS", BuildOutputs(max_bytes=0))  # nothing kept
    monkeypatch.setattr(checkouts, "_INDEXES_KEPT", 0)
    monkeypatch.setattr(TreeIndex, "below", scanned_below)
    monkeypatch.setattr(kustomizations, "_documents", parsed_each_time)
    monkeypatch.setattr(plan_stage, "together", one_after_the_other)
    reference = await preview(repo, base, head, render_tools)

    assert fast == reference
    comment = "\n".join(fast[1])
    for unit in ("argocd/api", "argocd/web", "argocd/jobs", "argocd/web-a", "argocd/web-b"):
        assert f"`{unit}`" in comment, unit
    assert "#### Environment `argocd/db`" in comment  # its own change besides the base's
