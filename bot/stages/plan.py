"""Workflows: fetch inputs, call the pure core, hand back its results. Plan lives here."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from bot.core.checks import Checked, checks_timed_out
from bot.core.customschemas import SchemaLookup
from bot.core.envpaths import created, is_missing, is_path_problem, removed
from bot.core.findings import Finding, Severity, Stage
from bot.core.identities import NO_IDENTITY, RepoIdentity
from bot.core.manifests import LoadResult, SourceFile
from bot.core.plans import EnvironmentPlan, LiveOutcome, Plan, Unpreviewed, plan_environment
from bot.core.policies import Policy
from bot.core.relaxations import (
    DEFAULT_RELAXATION,
    PolicySelection,
    RelaxationRules,
    select_policies,
)
from bot.core.repoconfig import CONFIG_PATH, ConfigError, Environment, RepoConfig, parse_config
from bot.core.schemas import SchemaCatalog, UnknownKinds
from bot.git.repos import GitError, GitRepo
from bot.git.sources import FileSet, read_commit_folder, read_entries
from bot.renderers import (
    DEFAULT_RENDER_OPTIONS,
    Rendered,
    RenderOptions,
    RenderRequest,
    failed,
    render,
    render_failure,
)
from bot.schemas.catalog import UnsupportedKubernetesVersion, catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.checking import CheckJob, kinds_of, narrowed, run_checks, selection_of
from bot.stages.checkpool import ChecksTimedOut
from bot.stages.schema_sources import (
    NO_SERVER_SCHEMAS,
    NO_SOURCES,
    SchemaSources,
    ServerSchemas,
    load_sources,
    schemas_for,
)

if TYPE_CHECKING:  # only types here: the live layer's modules load where it is used, and
    # the Argo CD and Flux machinery where a config asks for it (see controller_units)
    from bot.stages.controllers import UnitPair, UnitSorting
    from bot.stages.unit_live import UnitLivePreviewer

# What a base commit without .gitops-bot.yaml is planned with: its Argo CD and Flux units.
CONTROLLED = RepoConfig(environments=(), argocd=True, flux=True)
IMPLICIT_NOTE = (
    f"no {CONFIG_PATH} at the base commit: previewing what its Argo CD Applications and Flux "
    "Kustomizations deploy. The bot applies nothing: Argo CD or Flux does"
)
CatalogFactory = Callable[[str], SchemaCatalog]
A = TypeVar("A")
B = TypeVar("B")
# The cluster's side of an environment's plan (bot.stages.live_preview.LivePreviewer):
# the environment, its objects at the base and at the head, and the head commit.
LivePreview = Callable[[Environment, LoadResult, LoadResult, str], Awaitable[LiveOutcome]]


@dataclass(frozen=True)
class UnitPlans:
    """The Argo CD and Flux part of a plan."""

    plans: tuple[EnvironmentPlan, ...] = ()  # of the units the change affects
    notes: tuple[str, ...] = ()
    unpreviewed: tuple[Unpreviewed, ...] = ()  # affected units that cannot be previewed
    findings: tuple[Finding, ...] = ()  # about the declarations, e.g. a name given twice


@dataclass(frozen=True)
class Checks:
    """What the base commit says to check the head with."""

    config: RepoConfig
    catalog: SchemaCatalog
    policies: tuple[Policy, ...]
    findings: tuple[Finding, ...]  # about policy files, not about manifests
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS  # the server's, never the repo's
    schemas: SchemaSources = NO_SOURCES  # for custom resources, besides their environment's
    selection: PolicySelection | None = None  # the policies per environment, once relaxed
    policy_files: tuple[SourceFile, ...] = ()  # what `policies` were parsed from

    def policies_for(self, env: Environment) -> tuple[Policy, ...]:
        if self.selection is None:
            return self.policies
        return self.selection.environments.get(env.name, self.policies)


async def plan_change(
    repo: GitRepo,
    base_ref: str,
    head_ref: str,
    secret_key: bytes,
    only: str | None = None,
    catalogs: CatalogFactory = catalog_for,
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS,
    live: LivePreview | None = None,
    server_schemas: ServerSchemas = NO_SERVER_SCHEMAS,
    relaxation: RelaxationRules = DEFAULT_RELAXATION,
    identity: RepoIdentity = NO_IDENTITY,
    unit_live: UnitLivePreviewer | None = None,
) -> Plan:
    """The preview of what `head` changes relative to `base`, per environment.

    `identity` says which URLs in Argo CD and Flux objects name this repository;
    `unit_live` gives their units a live layer where their destination maps to a cluster.
    """
    base, head = await _resolved(repo, base_ref, head_ref)
    try:
        checks = await load_checks(
            repo, base, catalogs, render_options, server_schemas, relaxation, CONTROLLED
        )
    except ConfigError as exc:
        return _unusable_config(base, head, exc)
    units = await controller_units(repo, (base, head), checks, identity, secret_key, unit_live)
    if units is None:  # no config, and nothing Argo CD or Flux deploys: the config is missing
        return _unusable_config(base, head, _missing_config())
    unit_plans = units.plans
    environments = checks.config.environments
    if only is not None:
        environments = tuple(e for e in environments if e.name == only)
        unit_plans = tuple(p for p in unit_plans if p.environment.name == only)
        if not environments and not unit_plans:
            names = ", ".join(e.name for e in checks.config.environments)
            return Plan(
                base,
                head,
                findings=checks.findings,
                failure=f"no environment named {only!r}; the config has: {names}",
            )
    plans = [
        await plan_one(repo, base, head, env, checks, secret_key, live) for env in environments
    ]
    relaxed = checks.selection.relaxations if checks.selection else ()
    return Plan(
        base,
        head,
        tuple(plans) + unit_plans,
        checks.findings + units.findings,
        notes=units.notes,
        relaxations=relaxed,
        unpreviewed=units.unpreviewed,
    )


async def _resolved(repo: GitRepo, base_ref: str, head_ref: str) -> tuple[str, str]:
    """Both commit ids, their two git runs at once; when both fail, the base's error."""
    base, head = await asyncio.gather(
        repo.resolve(base_ref), repo.resolve(head_ref), return_exceptions=True
    )
    if isinstance(base, BaseException):
        raise base
    if isinstance(head, BaseException):
        raise head
    return base, head


def _unusable_config(base: str, head: str, error: ConfigError) -> Plan:
    failure = f"{CONFIG_PATH} at the base commit cannot be used"
    return Plan(base, head, findings=error.findings, failure=failure)


def _missing_config() -> ConfigError:
    try:
        parse_config(None)
    except ConfigError as exc:
        return exc
    raise AssertionError("parse_config(None) always refuses")


async def controller_units(
    repo: GitRepo,
    commits: tuple[str, str],
    checks: Checks,
    identity: RepoIdentity,
    secret_key: bytes,
    unit_live: UnitLivePreviewer | None = None,
) -> UnitPlans | None:
    """Plans of the Argo CD and Flux units the change affects, notes on the others, and
    the affected units that could not be previewed.

    None when the base commit has no config and declares no such unit.
    """
    config = checks.config
    if not (config.argocd or config.flux):
        return UnitPlans()
    # Imported here: a repository without Argo CD or Flux units (most) loads none of it.
    from bot.core.unitnames import duplicate_findings
    from bot.stages.controllers import identity_for, sort_units, units_at, wanted

    identity = identity_for(config, identity)
    version, options = config.kubernetes_version, checks.render_options
    at_base, at_head = await together(
        units_at(repo, commits[0], identity, version, options),
        units_at(repo, commits[1], identity, version, options),
    )
    found = [wanted(at_base, config), wanted(at_head, config)]
    if config is CONTROLLED and not found[0]:
        return None
    sorting = await sort_units(repo, commits, (found[0], found[1]), options)
    # Units render independently: as many at a time as there are cores to run the tools.
    limit = asyncio.Semaphore(os.cpu_count() or 2)

    async def plan_pair(pair: UnitPair) -> EnvironmentPlan:
        async with limit:
            return await _plan_pair(repo, commits, pair, checks, secret_key, unit_live)

    plans = await asyncio.gather(*(plan_pair(pair) for pair in sorting.affected))
    sorting = _touched_by_renders(sorting, plans)
    unpreviewed = tuple(Unpreviewed(u.name, u.origin, u.reason) for u in sorting.touched)
    notes = unit_notes(config is CONTROLLED, sorting)
    findings = tuple(duplicate_findings(found[1], found[0]))
    return UnitPlans(tuple(plans), notes, unpreviewed, findings)


def _touched_by_renders(sorting: UnitSorting, plans: list[EnvironmentPlan]) -> UnitSorting:
    """The sorting with the units that are not previewed but whose object changes in an
    affected unit's render counted as touched too (their reason says where)."""
    from bot.core.unitnames import touched_by_renders

    touched_names = {t.name for t in sorting.touched}
    rendered = touched_by_renders(plans, sorting.not_previewed)
    more = tuple(u for u in rendered if u.name not in touched_names)
    more_names = {m.name for m in more}
    untouched = tuple(u for u in sorting.not_previewed if u.name not in more_names)
    return replace(sorting, touched=sorting.touched + more, not_previewed=untouched + more)


def unit_notes(implicit: bool, sorting: UnitSorting) -> tuple[str, ...]:
    """The mode, how many units the change leaves alone, and which it leaves alone that
    are not previewed (those it touches are listed apart, as the plan's `unpreviewed`)."""
    notes = [IMPLICIT_NOTE] if implicit else []
    if sorting.unaffected:
        notes.append(
            f"{sorting.unaffected} Argo CD or Flux unit(s) not affected by this change (none "
            "of their inputs changed), so not rendered"
        )
    notes += [
        f"not previewed: {unit.name} (declared in {unit.origin}): {unit.reason}"
        for unit in sorting.not_previewed
        if unit not in sorting.touched
    ]
    return tuple(notes)


async def _plan_pair(
    repo: GitRepo,
    commits: tuple[str, str],
    pair: UnitPair,
    checks: Checks,
    secret_key: bytes,
    live: LivePreview | None,
) -> EnvironmentPlan:
    base, head = commits
    before = pair.base.environment if pair.base else None
    after = pair.head.environment if pair.head else None
    if after is None:  # the object is gone at the head: what it deployed is left or deleted
        assert before is not None
        loaded, _ = await render_environment(repo, base, before, checks, check=False)
        return plan_environment(before, loaded, LoadResult(), (_gone(before),), secret_key)
    if before is None:  # new, or not previewable at the base: everything is created
        loaded, checked = await render_checked(repo, head, after, checks)
        failure = render_failure(checked.findings)
        if failure is not None:
            message = f"cannot render the head: {failure}"
            return EnvironmentPlan(after, findings=checked.findings, failure=message)
        plan = plan_environment(after, LoadResult(), loaded, checked.findings, secret_key)
        return (
            plan if live is None else (await live(after, LoadResult(), loaded, head)).added_to(plan)
        )
    return await plan_one(repo, base, head, after, checks, secret_key, live, before)


def _gone(env: Environment) -> Finding:
    return Finding(
        Stage.RENDER,
        Severity.WARNING,
        "unit.removed",
        f"{env.name} is no longer declared at the head: whether its objects are deleted "
        "depends on its controller (Argo CD's resources finalizer, Flux's prune)",
    )


async def load_checks(
    repo: GitRepo,
    base: str,
    catalogs: CatalogFactory,
    render_options: RenderOptions = DEFAULT_RENDER_OPTIONS,
    server_schemas: ServerSchemas = NO_SERVER_SCHEMAS,
    relaxation: RelaxationRules = DEFAULT_RELAXATION,
    default: RepoConfig | None = None,
) -> Checks:
    """Config, schemas and policies, all from the base commit: a PR cannot relax them.

    `relaxation` is the server's word on how far the config may relax the organisation
    policies; a relaxation it refuses is a ConfigError.
    """
    try:
        config_text = await repo.read_file(base, CONFIG_PATH)
        absent = config_text is None and default is not None
        config = default if absent and default is not None else parse_config(config_text)
    except GitError as exc:
        raise ConfigError((_config_finding(str(exc)),)) from None
    try:
        catalog = await asyncio.to_thread(catalogs, config.kubernetes_version)
    except UnsupportedKubernetesVersion as exc:
        raise ConfigError((_config_finding(str(exc)),)) from None
    files = list(read_policy_dir(default_policy_dir()))
    organisation = frozenset(parsed.id for parsed in parse_policies(files)[0])
    refusals: list[Finding] = []
    for path in config.policy_paths:
        found, refused = await _read_policy_path(repo, base, path)
        files.extend(found)
        refusals.extend(refused)
    policies, findings = parse_policies(files)
    selection = select_policies(config, policies, organisation, relaxation, config_text or b"")
    schemas, schema_findings = await load_sources(repo, base, config, server_schemas)
    problems = tuple(refusals) + findings + schema_findings
    return Checks(
        config, catalog, policies, problems, render_options, schemas, selection, tuple(files)
    )


async def _read_policy_path(repo: GitRepo, base: str, path: str) -> FileSet:
    """A configured policy folder or file; one that is missing or a link is an error."""
    entry = await repo.entry(base, path)
    if entry is None:
        message = f"policies: {path} does not exist at the base commit; fix the path"
        return (), (_config_finding(message),)
    if entry.kind == "tree":
        return await read_commit_folder(repo, base, path)
    return await read_entries(repo, [entry])


async def plan_one(
    repo: GitRepo,
    base: str,
    head: str,
    env: Environment,
    checks: Checks,
    secret_key: bytes,
    live: LivePreview | None = None,
    base_env: Environment | None = None,
) -> EnvironmentPlan:
    """`base_env` renders the base when it differs from the head's (a redefined unit).

    The live layer starts once both commits are rendered, beside the head's checks (its
    requests wait on the cluster while the checks run in a worker). It is given what the
    render says the head is; should the checks say otherwise (they ran out of time), it is
    stopped, and started again with the head the plan then shows.
    """
    (before, base_findings), rendered = await together(
        render_environment(repo, base, base_env or env, checks, check=False),
        _render(repo, head, env, checks),
    )
    observing = _live_beside_checks(live, env, before, base_findings, rendered.loaded, head)
    try:
        after, checked = await _checked(rendered, env, checks)
        findings = checked.findings
        failure = render_failure(findings)
        if _deleted(findings, base_findings):
            # The pull request deletes the folder: show everything that would go, and block.
            findings, after = (removed(env, len(before.manifests)),), LoadResult()
        elif failure is not None:  # a broken render is reported as such, never as "no changes"
            message = f"cannot render the head: {failure}"
            return EnvironmentPlan(env, findings=findings, failure=message)
        else:
            findings += _base_notes(env, base_findings)
        plan = plan_environment(env, before, after, findings, secret_key)
        plan = replace(plan, relaxations=checked.relaxations)
        if live is None:
            return plan
        if observing is None or observing[0] != after:
            return (await live(env, before, after, head)).added_to(plan)
        return (await observing[1]).added_to(plan)
    finally:
        if observing is not None:
            observing[1].cancel()
            await asyncio.gather(observing[1], return_exceptions=True)


def _live_beside_checks(
    live: LivePreview | None,
    env: Environment,
    before: LoadResult,
    base_findings: tuple[Finding, ...],
    rendered: LoadResult,
    head: str,
) -> tuple[LoadResult, asyncio.Future[LiveOutcome]] | None:
    """The live layer started on the head the render gives, with that head; None when the
    plan will not reach it (the head did not render)."""
    if live is None:
        return None
    after = rendered
    if _deleted(rendered.findings, base_findings):
        after = LoadResult()
    elif render_failure(rendered.findings) is not None:
        return None
    return after, asyncio.ensure_future(live(env, before, after, head))


def _deleted(findings: tuple[Finding, ...], base_findings: tuple[Finding, ...]) -> bool:
    """The head has no folder for the environment, where the base had one."""
    return is_missing(findings) and not is_path_problem(base_findings)


async def together(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results, the two run at once (the base and the head render independently, so
    one's tool runs while the other's output is parsed); a failure stops the other."""
    tasks = (asyncio.ensure_future(first), asyncio.ensure_future(second))
    try:
        one, other = await asyncio.gather(tasks[0], tasks[1])
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return one, other


async def render_environment(
    repo: GitRepo, commit: str, env: Environment, checks: Checks, check: bool = True
) -> tuple[LoadResult, tuple[Finding, ...]]:
    """The environment's objects at `commit`, and (when `check`) every finding about them.

    The environment's source says how: plain files, a kustomization or a Helm chart.
    """
    if not check:
        rendered = await _render(repo, commit, env, checks)
        return rendered.loaded, rendered.loaded.findings
    loaded, checked = await render_checked(repo, commit, env, checks)
    return loaded, checked.findings


async def render_checked(
    repo: GitRepo, commit: str, env: Environment, checks: Checks
) -> tuple[LoadResult, Checked]:
    """render_environment with its findings, and the objects' policy exemptions in force.

    Parsing and checks run where the render options say (a check worker process in
    `serve` and the CLI), each within its time limit: past it the render's objects are
    unknown, so the result is a blocking finding, never "no changes". Between the two,
    the schemas of the render's custom kinds are gathered here, where the cluster is.
    """
    return await _checked(await _render(repo, commit, env, checks), env, checks)


async def _checked(
    rendered: Rendered, env: Environment, checks: Checks
) -> tuple[LoadResult, Checked]:
    try:
        custom = await schemas_for(checks.schemas, env, rendered.loaded.manifests, checks.catalog)
        job = _check_job(rendered, checks, env, *custom)
        return rendered.loaded, await checks.render_options.offload(run_checks, job)
    except ChecksTimedOut as exc:
        finding = checks_timed_out(exc.seconds)
        return LoadResult(findings=(finding,)), Checked((finding,))


async def _render(repo: GitRepo, commit: str, env: Environment, checks: Checks) -> Rendered:
    request = RenderRequest(
        repo, commit, env, checks.config.kubernetes_version, checks.render_options
    )
    try:
        return await render(request)
    except ChecksTimedOut as exc:  # parsing alone ran out of time
        return failed((checks_timed_out(exc.seconds),))


def _check_job(
    rendered: Rendered,
    checks: Checks,
    env: Environment,
    custom: SchemaLookup,
    unknown: UnknownKinds,
) -> CheckJob:
    """The render's checks as data that crosses into a worker process."""
    return CheckJob(
        rendered.loaded,
        rendered.texts,
        checks.config.kubernetes_version,
        checks.policy_files,
        selection_of(checks.policies_for(env)),
        narrowed(custom, kinds_of(rendered.loaded)),
        unknown,
        checks.selection.exemptions if checks.selection else None,
    )


def _base_notes(env: Environment, base_findings: tuple[Finding, ...]) -> tuple[Finding, ...]:
    """What the base render means for the plan: a folder the PR creates, or a broken base."""
    if is_missing(base_findings):
        return (created(env),)
    return _base_render_warnings(render_failure(base_findings))


def _base_render_warnings(failure: str | None) -> tuple[Finding, ...]:
    if failure is None:
        return ()
    return (
        Finding(
            Stage.RENDER,
            Severity.WARNING,
            "render.base-failed",
            f"the base commit cannot be rendered ({failure}), so every object of the head "
            "shows as created",
        ),
    )


def _config_finding(message: str) -> Finding:
    return Finding(Stage.CONFIG, Severity.ERROR, "config.invalid", message, CONFIG_PATH)
