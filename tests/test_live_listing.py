"""Listing what the bot manages and skipping dry runs changes no answer, only the requests."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any

from helpers.livecluster import ENV, LiveEnv, configmap, outcomes_by_key
from helpers.manifests import deployment, secret

from bot.clusters.directory import ClusterDirectory
from bot.clusters.errors import Conflict
from bot.clusters.ports import Cluster, Resource
from bot.core.diffs import Change, change_of
from bot.core.livediffs import Observation
from bot.core.manifests import LoadResult, Manifest, ObjectKey, SourceFile, load_manifests
from bot.core.rollouts import Stamp, carried_stamp, stamped
from bot.stages.listings import list_managed
from bot.stages.observations import RenderFacts, observe


class CountedCluster:
    """The real cluster, counting the dry runs and reads sent to it."""

    def __init__(self, cluster: Cluster) -> None:
        self.name = cluster.name
        self._cluster = cluster
        self.dry_runs: list[str] = []
        self.reads: list[str] = []
        self.lists: list[str] = []

    async def resource(self, api_version: str, kind: str) -> Resource | None:
        return await self._cluster.resource(api_version, kind)

    async def read(self, api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        self.reads.append(key.name)
        return await self._cluster.read(api_version, key)

    async def list_labelled(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        self.lists.append(kind)
        return await self._cluster.list_labelled(api_version, kind, namespace, selector)

    async def apply(
        self, body: Mapping[str, Any], *, dry_run: bool, force: bool = False
    ) -> dict[str, Any]:
        if dry_run:
            self.dry_runs.append(body["metadata"]["name"])
        return await self._cluster.apply(body, dry_run=dry_run, force=force)

    async def delete(self, api_version: str, key: ObjectKey) -> bool:
        return await self._cluster.delete(api_version, key)


def _loaded(files: dict[str, str], namespace: str = "default") -> LoadResult:
    return load_manifests(
        [SourceFile(n, textwrap.dedent(t).encode()) for n, t in files.items()], namespace
    )


async def _server_says(cluster: Cluster, manifest: Manifest, fresh: Stamp) -> Change:
    """The change as a dry run of every object shows it (what `kubectl diff` does)."""
    live = await cluster.read(manifest.api_version, manifest.key)
    body = stamped(manifest.body, carried_stamp(live, fresh))
    try:
        applied = await cluster.apply(body, dry_run=True)
    except Conflict:  # the bot reports the conflict and shows the forced outcome
        applied = await cluster.apply(body, dry_run=True, force=True)
    return _change(Observation(manifest.key, live, applied))


def _change(seen: Observation) -> Change:
    return change_of(seen.key, seen.live, seen.applied, prune=True, secret_key=b"k")


_QUANTITY = """\
    apiVersion: v1
    kind: LimitRange
    metadata: {name: halves}
    spec:
      limits: [{type: Container, default: {cpu: 0.5}}]
"""

BASE = {
    "same.yaml": configmap("same", a="1"),
    "drifted.yaml": configmap("drifted", a="1"),
    "annotated.yaml": configmap("annotated", a="1"),
    "changing.yaml": configmap("changing", a="1"),
    "web.yaml": deployment("web"),
    "api.yaml": deployment("api"),
    "edited.yaml": deployment("edited"),
    "keys.yaml": secret("keys", data={"token": "one"}),
    "typed.yaml": secret("typed", string_data={"token": "one"}),
    "halves.yaml": _QUANTITY,
    "other.yaml": _QUANTITY.replace("halves", "other"),
}
HEAD = {**BASE, "changing.yaml": configmap("changing", a="2"), "new.yaml": configmap("new")}


async def test_the_shortcut_sees_what_the_dry_runs_see_and_sends_fewer(live_env: LiveEnv) -> None:
    ns = live_env.namespace
    assert (await live_env.apply(live_env.commit(BASE))).succeeded
    live_env.kubectl.run("patch", "configmap", "drifted", "-n", ns, "-p", '{"data":{"a":"9"}}')
    live_env.kubectl.run("annotate", "configmap", "annotated", "-n", ns, "owner=someone-else")
    live_env.kubectl.run("scale", "deployment", "edited", "-n", ns, "--replicas=4")
    loaded = _loaded(HEAD, ns)
    facts, fresh = RenderFacts.of(loaded.manifests), Stamp(ENV, "head")

    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster = CountedCluster((await clusters.connect("test")).cluster)
        servers = [await _server_says(cluster, m, fresh) for m in loaded.manifests]
        dry_runs, reads = len(cluster.dry_runs), len(cluster.reads)
        listing = await list_managed(cluster, loaded.manifests)
        listed = [await observe(cluster, m, facts, fresh, listing) for m in loaded.manifests]
    assert [_change(o.observation) for o in listed] == servers

    asked = set(cluster.dry_runs[dry_runs:])  # those sent with the listing
    assert asked == {
        "drifted",  # edited in the cluster
        "edited",
        "changing",  # edited in Git
        "new",  # not there yet
        "typed",  # stringData is stored as data: only the server knows what it becomes
        "halves",  # 0.5 CPU is stored as 500m
        "other",
    }
    # The rest were listed; Secrets never are.
    assert set(cluster.reads[reads:]) == {"new", "keys", "typed"}


async def test_objects_applied_before_the_digest_existed_get_it_on_the_next_apply(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    files = {"a.yaml": configmap("a", a="1"), "b.yaml": configmap("b", b="1")}
    assert (await live_env.apply(live_env.commit(files))).succeeded
    digest = "gitops-bot.io/manifest-digest"
    live_env.kubectl.run("annotate", "configmap", "a", "b", "-n", ns, f"{digest}-")
    assert digest not in live_env.configmap("a")["metadata"]["annotations"]  # type: ignore[index]

    again = await live_env.apply(live_env.commit({**files, "c.yaml": configmap("c")}))

    assert outcomes_by_key(again) == {
        f"ConfigMap {ns}/a": "unchanged",
        f"ConfigMap {ns}/b": "unchanged",
        f"ConfigMap {ns}/c": "applied",
    }
    for name in ("a", "b"):
        assert digest in live_env.configmap(name)["metadata"]["annotations"]  # type: ignore[index]


async def test_where_rbac_allows_lists_per_namespace_only_the_bot_lists_there(
    live_env: LiveEnv,
) -> None:
    ns = live_env.namespace
    head = live_env.commit({"a.yaml": configmap("a", a="1"), "b.yaml": configmap("b", b="1")})
    assert (await live_env.apply(head)).succeeded
    live_env.grant_bot("get,list", "configmaps")
    # A second namespace makes the bot try one list across all namespaces first.
    elsewhere = _loaded({"c.yaml": configmap("c"), "d.yaml": configmap("d")}, "kube-public")
    manifests = _loaded({"a.yaml": configmap("a"), "b.yaml": configmap("b")}, ns).manifests

    async with ClusterDirectory([live_env.as_bot()]) as clusters:
        cluster = (await clusters.connect("test")).cluster
        listing = await list_managed(cluster, (*manifests, *elsewhere.manifests))

    assert {key.name for _, key in listing.objects} >= {"a", "b"}


async def test_an_object_in_both_base_and_head_counts_once(live_env: LiveEnv) -> None:
    """A kind with one object is read, not listed, though a preview passes it twice."""
    ns = live_env.namespace
    one = _loaded({"a.yaml": configmap("a"), "w.yaml": deployment("web")}, ns).manifests
    two = _loaded({"a.yaml": configmap("a"), "b.yaml": configmap("b")}, ns).manifests
    async with ClusterDirectory([live_env.cluster]) as clusters:
        cluster = CountedCluster((await clusters.connect("test")).cluster)
        await list_managed(cluster, one + one)
        assert cluster.lists == []
        await list_managed(cluster, two + two)
        assert cluster.lists == ["ConfigMap"]
