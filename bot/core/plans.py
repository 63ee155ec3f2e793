"""The Plan: what a change would do to each environment, and what blocks it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from bot.core.diffs import Action, Change, compare
from bot.core.findings import Finding, Severity, Stage, has_errors
from bot.core.livediffs import LiveLayer
from bot.core.manifests import LoadResult, Skipped
from bot.core.relaxations import Relaxation
from bot.core.repoconfig import Environment


@dataclass(frozen=True)
class EnvironmentPlan:
    environment: Environment
    changes: tuple[Change, ...] = ()
    findings: tuple[Finding, ...] = ()
    failure: str | None = None  # why no preview could be made; never shown as "no changes"
    live: LiveLayer | None = None  # the cluster's side; None when no cluster is configured
    skipped: tuple[Skipped, ...] = ()  # files of the head deliberately not read, and why
    relaxations: tuple[Relaxation, ...] = ()  # objects exempted from policies

    def count(self, action: Action) -> int:
        return self._counts[action]

    @property
    def _counts(self) -> Counter[Action]:
        return Counter(change.action for change in self.changes)

    @property
    def blocking(self) -> bool:
        live_failed = self.live is not None and self.live.failure is not None
        return self.failure is not None or live_failed or has_errors(self.findings)

    @property
    def incomplete(self) -> bool:
        """Some files could not be read, so the listed changes may miss objects."""
        return any(f.stage in (Stage.MANIFEST, Stage.RENDER) for f in self.findings)


@dataclass(frozen=True)
class LiveOutcome:
    """What the live layer adds to an environment's plan: the cluster's side (None when
    no cluster is configured for it) and findings about the objects there."""

    layer: LiveLayer | None = None
    findings: tuple[Finding, ...] = ()

    def added_to(self, plan: EnvironmentPlan) -> EnvironmentPlan:
        if self.layer is None:
            return plan
        return replace(plan, live=self.layer, findings=plan.findings + self.findings)


@dataclass(frozen=True)
class Unpreviewed:
    """An Argo CD or Flux unit the change touches but that could not be previewed."""

    name: str
    origin: str  # the file that declares it
    reason: str

    def describe(self) -> str:
        return f"{self.name} (declared in {self.origin}): {self.reason}"


@dataclass(frozen=True)
class Plan:
    base: str
    head: str
    environments: tuple[EnvironmentPlan, ...] = ()
    findings: tuple[Finding, ...] = ()  # not tied to one environment: config, policy files
    failure: str | None = None  # why no environment could be planned at all
    notes: tuple[str, ...] = ()  # what the reader should know about how it was made
    relaxations: tuple[Relaxation, ...] = ()  # policies relaxed by .gitops-bot.yaml
    # Affected units whose preview is missing: the plan is incomplete, not "ready to merge".
    unpreviewed: tuple[Unpreviewed, ...] = ()

    @property
    def blocking(self) -> bool:
        return (
            self.failure is not None
            or has_errors(self.findings)
            or any(env.blocking for env in self.environments)
        )

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        return self.findings + tuple(f for env in self.environments for f in env.findings)

    @property
    def all_relaxations(self) -> tuple[Relaxation, ...]:
        return self.relaxations + tuple(r for env in self.environments for r in env.relaxations)


def plan_environment(
    environment: Environment,
    base: LoadResult,
    head: LoadResult,
    head_findings: tuple[Finding, ...],
    secret_key: bytes,
) -> EnvironmentPlan:
    """Compare the base render with the head render; the head's findings come checked."""
    before = {m.key: m.body for m in base.manifests}
    after = {m.key: m.body for m in head.manifests}
    sources = {m.key: m.source for m in base.manifests} | {m.key: m.source for m in head.manifests}
    changes = compare(
        before, after, prune=environment.prune, secret_key=secret_key, sources=sources
    )
    findings = head_findings + _empty_render_guard(environment, base, head)
    return EnvironmentPlan(environment, changes, findings, skipped=head.skipped)


def _empty_render_guard(
    environment: Environment, base: LoadResult, head: LoadResult
) -> tuple[Finding, ...]:
    if head.manifests or not base.manifests or not environment.prune:
        return ()
    return (
        Finding(
            Stage.MANIFEST,
            Severity.ERROR,
            "prune.empty-render",
            f"environment {environment.name!r} renders no objects at all, so applying it would "
            f"prune all {len(base.manifests)}; the bot refuses. If the environment is really "
            "going away, remove it from .gitops-bot.yaml and delete its objects by hand",
            environment.path,
        ),
    )
