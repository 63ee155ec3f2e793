"""Ask a cluster what one object is now, and what the bot's apply would make of it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.clusters.errors import (
    AdmissionFailed,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    UnknownKind,
)
from bot.clusters.ports import Cluster
from bot.core.controllerapply import ControllerApply, marked
from bot.core.convergence import already_applied
from bot.core.livediffs import WITH_CRD, WITH_NAMESPACE, Observation, Problem, ProblemKind, scrub
from bot.core.manifests import Manifest
from bot.core.rollouts import Stamp, carried_stamp, defined_by_crds, is_crd, scoped, stamped
from bot.stages.listings import NO_LISTING, Listing

# Refusals that concern one object; anything else (unreachable, unauthorized) stops it all.
_PER_OBJECT = (AdmissionFailed, Conflict, Forbidden, Invalid, NotFound, ServerError, UnknownKind)


@dataclass(frozen=True)
class RenderFacts:
    """What a whole render declares, for objects whose CRD or namespace it creates itself."""

    crds: tuple[Manifest, ...]
    namespaces: frozenset[str]

    @classmethod
    def of(cls, manifests: Iterable[Manifest]) -> RenderFacts:
        manifests = tuple(manifests)
        names = frozenset(m.key.name for m in manifests if m.key.kind == "Namespace")
        return cls(tuple(m for m in manifests if is_crd(m.key)), names)

    def defines(self, api_version: str, kind: str) -> bool:
        """Whether a CRD of this render serves the kind."""
        return defined_by_crds(self.crds, api_version, kind)


@dataclass(frozen=True)
class Observed:
    manifest: Manifest  # with the scope the cluster serves its kind at
    observation: Observation


async def observe(
    cluster: Cluster,
    manifest: Manifest,
    facts: RenderFacts,
    fresh: Stamp,
    listing: Listing = NO_LISTING,
    controller: ControllerApply | None = None,
) -> Observed:
    """Read the live object and dry-run the bot's apply of it; refusals become problems.

    An object in `listing` is not read again, and one the bot already applied exactly
    as declared, unchanged since, needs no dry run: it is its own outcome. With a
    `controller`, the dry run is the Argo CD or Flux sync instead (see `_dry_run`).
    """
    resource = await cluster.resource(manifest.api_version, manifest.key.kind)
    if resource is None:
        if facts.defines(manifest.api_version, manifest.key.kind):
            return Observed(manifest, Observation(manifest.key, None, manifest.body, WITH_CRD))
        unknown = UnknownKind(
            f"the cluster serves no {manifest.key.kind} in {manifest.api_version}"
        )
        return Observed(manifest, _refused(manifest, unknown))
    manifest = scoped(manifest, resource.namespaced)
    try:
        live = listing.live(manifest.api_version, manifest.key) or await cluster.read(
            manifest.api_version, manifest.key
        )
    except _PER_OBJECT as exc:
        return Observed(manifest, _refused(manifest, exc))
    own_apply = controller is None  # the bot stamps what it last sent; controllers do not
    if own_apply and live is not None and already_applied(manifest.body, live, fresh.environment):
        return Observed(manifest, Observation(manifest.key, live, live))
    if controller is None:
        body = stamped(manifest.body, carried_stamp(live, fresh))
    else:
        body = marked(manifest.body, controller)
    try:
        applied = await _dry_run(cluster, body, controller)
    except Conflict as exc:
        return Observed(manifest, await _forced(cluster, manifest, live, body, exc))
    except NotFound as exc:
        if resource.namespaced and manifest.key.namespace in facts.namespaces:
            return Observed(manifest, Observation(manifest.key, None, body, WITH_NAMESPACE))
        missing = NotFound(f"namespace {manifest.key.namespace!r} does not exist: {exc}")
        return Observed(manifest, _refused(manifest, missing))
    except _PER_OBJECT as exc:
        return Observed(manifest, _refused(manifest, exc, live))
    return Observed(manifest, Observation(manifest.key, live, applied))


async def _dry_run(
    cluster: Cluster, body: dict[str, Any], controller: ControllerApply | None
) -> dict[str, Any]:
    """The bot's apply as a dry run, or the controller's sync: its field manager, forced,
    since Argo CD and Flux take over the fields other managers own."""
    if controller is None:
        return await cluster.apply(body, dry_run=True)
    return await cluster.apply(
        body, dry_run=True, force=True, field_manager=controller.field_manager
    )


async def _forced(
    cluster: Cluster,
    manifest: Manifest,
    live: dict[str, object] | None,
    body: dict[str, object],
    conflict: Conflict,
) -> Observation:
    """A conflict is reported, and the forced dry run still shows what the apply would do."""
    problem = _problem(conflict, manifest)
    try:
        applied = await cluster.apply(body, dry_run=True, force=True)
    except _PER_OBJECT as exc:
        return Observation(manifest.key, live, None, problem=_problem(exc, manifest))
    return Observation(manifest.key, live, applied, problem=problem)


def _refused(
    manifest: Manifest, error: Exception, live: dict[str, object] | None = None
) -> Observation:
    return Observation(manifest.key, live, None, problem=_problem(error, manifest))


def _problem(error: Exception, manifest: Manifest) -> Problem:
    message = scrub(str(error), manifest.body)
    if isinstance(error, Conflict):
        owners = tuple(scrub(owner, manifest.body) for owner in error.owners)
        return Problem(ProblemKind.CONFLICT, message, owners)
    return Problem(_kind(error), message)


def _kind(error: Exception) -> ProblemKind:
    if isinstance(error, AdmissionFailed):
        if error.no_dry_run:
            return ProblemKind.NO_DRY_RUN
        return (
            ProblemKind.ADMISSION_UNAVAILABLE if error.unavailable else ProblemKind.ADMISSION_DENIED
        )
    kinds: dict[type[Exception], ProblemKind] = {
        Forbidden: ProblemKind.FORBIDDEN,
        Invalid: ProblemKind.INVALID,
        NotFound: ProblemKind.MISSING_NAMESPACE,
        UnknownKind: ProblemKind.UNKNOWN_KIND,
    }
    return kinds.get(type(error), ProblemKind.SERVER_ERROR)
