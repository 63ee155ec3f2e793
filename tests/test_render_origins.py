"""Rendered kustomize objects name the exact document they came from, renamed or not."""

from __future__ import annotations

from pathlib import Path

from helpers.gitrepos import Repo
from helpers.manifests import deployment

from bot.core.manifests import ObjectKey, Source
from bot.core.namings import Naming, Renaming, declares, namings_by_folder
from bot.core.repoconfig import Environment, EnvironmentSource, SourceType
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render


def service(name: str, port: int = 80) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n"
        f"spec:\n  selector: {{app: frontend}}\n  ports:\n    - port: {port}\n"
    )


# One file, three objects, two of them Services whose names share a beginning.
FRONTEND = "---\n".join(
    [deployment("frontend"), service("frontend"), service("frontend-external", 8080)]
)
EXTERNAL_LINE = FRONTEND.splitlines().index("  name: frontend-external") - 2  # apiVersion


def overlay_tree(base: str, overlay: str) -> dict[str, str]:
    return {
        "base/kustomization.yaml": base,
        "base/frontend.yaml": FRONTEND,
        "envs/prod/kustomization.yaml": overlay,
    }


async def sources(repo: Repo, tools: Path) -> dict[str, Source]:
    env = Environment(
        "prod", "envs/prod", "main", "shop", source=EnvironmentSource(SourceType.KUSTOMIZE)
    )
    options = RenderOptions(kustomize=str(tools / "kustomize"), helm=str(tools / "helm"))
    request = RenderRequest(GitRepo(repo.path), repo.git("rev-parse", "HEAD"), env, "1.33", options)
    loaded = (await render(request)).loaded
    assert loaded.findings == ()
    return {str(m.key): m.source for m in loaded.manifests}


def test_the_external_service_starts_where_the_test_says() -> None:
    lines = FRONTEND.splitlines()
    assert lines[EXTERNAL_LINE - 1] == "apiVersion: v1"
    assert lines[EXTERNAL_LINE + 2] == "  name: frontend-external"


async def test_a_name_that_begins_like_another_points_at_its_own_document(
    repo: Repo, render_tools: Path
) -> None:
    repo.commit(overlay_tree("resources: [frontend.yaml]\n", "resources: [../../base]\n"))
    found = await sources(repo, render_tools)
    assert found["Service shop/frontend-external"] == Source("base/frontend.yaml", EXTERNAL_LINE)
    assert found["Service shop/frontend"].line not in (1, EXTERNAL_LINE)
    assert found["Deployment.apps shop/frontend"] == Source("base/frontend.yaml", 1)


async def test_prefixes_and_suffixes_of_every_kustomization_on_the_way_are_followed(
    repo: Repo, render_tools: Path
) -> None:
    base = "namePrefix: shop-\nresources: [frontend.yaml]\n"
    overlay = "namePrefix: prod-\nnameSuffix: -v2\nnamespace: store\nresources: [../../base]\n"
    repo.commit(overlay_tree(base, overlay))
    found = await sources(repo, render_tools)
    assert found["Service store/prod-shop-frontend-external-v2"] == Source(
        "base/frontend.yaml", EXTERNAL_LINE
    )
    frontend = found["Service store/prod-shop-frontend-v2"]
    assert frontend.path == "base/frontend.yaml" and frontend.line not in (1, EXTERNAL_LINE)


def test_a_name_matches_only_when_renamed_exactly() -> None:
    doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend"}}
    key = ObjectKey("", "Service", "shop", "frontend-external")
    assert not declares(doc, key, [Naming()])
    assert not declares(doc, key, [Naming(suffix="-ext")])
    assert declares(doc, key, [Naming(suffix="-external")])
    other_group = ObjectKey("example.com", "Service", "shop", "frontend")
    assert not declares(doc, other_group, [Naming()])
    placed = {**doc, "metadata": {"name": "frontend", "namespace": "dev"}}
    assert not declares(placed, ObjectKey("", "Service", "shop", "frontend"), [Naming()])
    assert declares(placed, ObjectKey("", "Service", "shop", "frontend"), [Naming("", "", "shop")])


def test_namings_follow_every_way_down_and_the_outermost_namespace_wins() -> None:
    renamings = {
        "envs/prod": Renaming("prod-", "", "store", ("base", "shared")),
        "shared": Renaming("", "-s", "inner", ("base",)),
        "base": Renaming("shop-", "", "", ()),
    }
    namings = namings_by_folder("envs/prod", renamings)
    assert namings["base"] == {
        Naming("prod-shop-", "", "store"),
        Naming("prod-shop-", "-s", "store"),
    }
    assert namings["envs/prod"] == {Naming("prod-", "", "store")}


def test_a_cycle_of_kustomizations_ends() -> None:
    renamings = {"a": Renaming("a-", children=("b",)), "b": Renaming("b-", children=("a",))}
    assert namings_by_folder("a", renamings) == {
        "a": {Naming("a-")},
        "b": {Naming("a-b-")},
    }
