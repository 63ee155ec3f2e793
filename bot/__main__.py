"""The command line: gitops-bot validate | plan | apply | drift | serve | retry | jobs | audit.

Exit codes: 0 success; 1 findings or a plan that blocks the merge (for apply: refused
because the commit has error findings, nothing applied); 2 wrong usage; 3 the job could
not be done (git, cluster or store unreachable, bad settings, an apply that failed in part).
For drift: 0 the cluster matches Git, 1 it drifted, 3 it could not be compared.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot.checkpool import CheckPool, ChecksTimedOut
from bot.core.applies import ApplyResult
from bot.core.checks import checks_timed_out
from bot.core.comments import render_plan
from bot.core.findings import has_errors
from bot.core.markdown import GITHUB_COMMENT_LIMIT
from bot.core.plans import Plan
from bot.core.repoconfig import DEFAULT_KUBERNETES_VERSION
from bot.core.reports import (
    apply_as_data,
    apply_as_text,
    finding_as_data,
    plan_as_data,
    plan_as_text,
)
from bot.gitrepo import GitError, GitRepo
from bot.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.renderers import render_options
from bot.schemacatalog import UnsupportedKubernetesVersion, catalog_for
from bot.settings import Settings, SettingsError, load_settings
from bot.sources import read_local_paths
from bot.store import StoreError
from bot.validation import Validation, validate_within
from bot.workflows import Checks, plan_change

# The Kubernetes client, the web server and the database drivers take about a second to
# import; commands import them only when they use them, so `validate` and `plan` start fast.

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (GitError, SettingsError, StoreError, UnsupportedKubernetesVersion) as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-bot", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="schema and policy check of local files")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    validate.add_argument(
        "--policies",
        type=Path,
        action="append",
        default=[],
        help="extra policy folder (the defaults always apply)",
    )
    validate.add_argument("--namespace", default="default")
    validate.add_argument("--format", choices=["text", "json"], default="text")
    validate.set_defaults(run=_validate)

    plan = commands.add_parser("plan", help="the preview a pull request gets, run locally")
    plan.add_argument("--repo", type=Path, default=Path())
    plan.add_argument("--base", required=True, help="base ref: config and policies come from here")
    plan.add_argument("--head", required=True)
    plan.add_argument("--env", help="only this environment")
    plan.add_argument("--format", choices=["markdown", "text", "json"], default="markdown")
    plan.add_argument(
        "--no-cluster",
        action="store_true",
        help="skip the live layer even where the environment's cluster is configured",
    )
    plan.set_defaults(run=_plan)

    apply = commands.add_parser("apply", help="break-glass: apply one environment at a ref now")
    apply.add_argument("--env", required=True, help="the environment to apply")
    apply.add_argument("--repo", type=Path, default=Path())
    apply.add_argument("--ref", required=True, help="the commit; its own config is used")
    apply.add_argument("--format", choices=["text", "json"], default="text")
    apply.set_defaults(run=_apply)

    drift = commands.add_parser("drift", help="live cluster vs the default branch, for one env")
    drift.add_argument("--env", required=True, help="the environment to compare")
    drift.add_argument("--repo", type=Path, default=Path())
    drift.add_argument("--ref", default="HEAD", help="the default branch's head (default: HEAD)")
    drift.add_argument("--format", choices=["text", "json"], default="text")
    drift.set_defaults(run=_drift)

    serve = commands.add_parser("serve", help="the webhook server (settings: GITOPS_BOT_*)")
    serve.set_defaults(run=_serve)
    retry = commands.add_parser("retry", help="re-queue a dead-lettered job by its id")
    retry.add_argument("job_id", type=int, metavar="JOB_ID")
    retry.set_defaults(run=_retry)
    jobs = commands.add_parser("jobs", help="the job store: --dead lists dead-lettered jobs")
    jobs.add_argument("--dead", action="store_true", required=True)
    jobs.set_defaults(run=_jobs)

    audit = commands.add_parser("audit", help="the audit ledger: list it, or --verify its chain")
    audit.add_argument("--env", help="only this environment")
    audit.add_argument("--since", help="only records written since (ISO date, UTC)")
    audit.add_argument("--format", choices=["text", "json"], default="text")
    audit.add_argument(
        "--verify", action="store_true", help="check the whole hash chain; exit 1 if broken"
    )
    audit.set_defaults(run=_audit)
    return parser


def _validate(args: argparse.Namespace) -> int:
    files, refused = read_local_paths(args.paths)
    policy_files = read_policy_dir(default_policy_dir())
    for folder in args.policies:
        policy_files += read_policy_dir(folder)
    policies, policy_findings = parse_policies(policy_files)
    catalog = catalog_for(args.kubernetes_version)
    seconds = load_settings(os.environ).check_timeout_seconds
    try:
        checked = validate_within(seconds, files, args.namespace, catalog, policies)
    except ChecksTimedOut:
        checked = Validation(0, (checks_timed_out(seconds),))
    findings = policy_findings + refused + checked.findings
    if args.format == "json":
        print(json.dumps([finding_as_data(f) for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding.describe())
        print(
            f"{checked.objects} objects in {len(files)} files checked, {len(findings)} findings",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    plan = asyncio.run(_plan_live(args, settings))
    if args.format == "json":
        print(json.dumps(plan_as_data(plan), indent=2))
    elif args.format == "text":
        print(plan_as_text(plan), end="")
    else:
        print("\n".join(render_plan(plan, GITHUB_COMMENT_LIMIT)), end="")
    return EXIT_FINDINGS if plan.blocking else EXIT_OK


async def _plan_live(args: argparse.Namespace, settings: Settings) -> Plan:
    """The plan, with the live layer for every environment whose cluster is configured."""
    from bot.clusters.directory import ClusterDirectory
    from bot.clusters.previews import LivePreviewer

    async with (
        ClusterDirectory(() if args.no_cluster else settings.clusters) as clusters,
        CheckPool(1, settings.check_timeout_seconds) as pool,
    ):
        live = LivePreviewer(clusters, settings.fingerprint_key)
        return await plan_change(
            GitRepo(args.repo),
            args.base,
            args.head,
            settings.fingerprint_key,
            args.env,
            render_options=render_options(settings, pool.run),
            live=live,
        )


def _apply(args: argparse.Namespace) -> int:
    from bot.deploys import FINDINGS_REFUSAL
    from bot.store.backends import store_for_url
    from bot.store.ledger import iso_time
    from bot.store.operations import record_break_glass, using

    settings = load_settings(os.environ)
    started = time.time()
    result = asyncio.run(_apply_now(args, settings))
    if isinstance(result, int):
        return result
    finished = time.time()
    if args.format == "json":
        print(json.dumps(apply_as_data(result), indent=2))
    else:
        print(apply_as_text(result), end="")
    if _store_configured(settings):  # a failure to record is exit 3, after the result
        store = store_for_url(settings.database_url)
        times, operator = (iso_time(started), iso_time(finished)), getpass.getuser()
        record = asyncio.run(
            using(store, lambda s: record_break_glass(s, result, times, operator, args.repo))
        )
        print(f"recorded as audit record {record.sequence} (break-glass)", file=sys.stderr)
    if result.failure == FINDINGS_REFUSAL:
        return EXIT_FINDINGS
    return EXIT_OK if result.succeeded else EXIT_FAILED


async def _apply_now(args: argparse.Namespace, settings: Settings) -> ApplyResult | int:
    """Apply `--env` at `--ref` to its cluster; an exit code when it cannot even start."""
    from bot.reconcile.commands import checks_or_report

    repo = GitRepo(args.repo)
    commit = await repo.resolve(args.ref)
    async with CheckPool(1, settings.check_timeout_seconds) as pool:
        checks = await checks_or_report(repo, commit, settings, pool)
        if checks is None:
            return EXIT_FINDINGS
        return await _apply_checked(args, settings, repo, commit, checks)


async def _apply_checked(
    args: argparse.Namespace, settings: Settings, repo: GitRepo, commit: str, checks: Checks
) -> ApplyResult | int:
    from bot.clusters.directory import ClusterDirectory
    from bot.deploys import DeployContext, deploy_environment

    environment = checks.config.environment(args.env)
    if environment is None:
        names = ", ".join(e.name for e in checks.config.environments)
        print(f"gitops-bot: no environment {args.env!r}; the config has: {names}", file=sys.stderr)
        return EXIT_USAGE
    if settings.cluster(environment.cluster) is None:
        print(
            f"gitops-bot: environment {environment.name!r} deploys to cluster "
            f"{environment.cluster!r}, which the server settings do not define (add it to "
            "GITOPS_BOT_CLUSTERS or `clusters:` in the settings file); nothing was applied",
            file=sys.stderr,
        )
        return EXIT_FAILED
    async with ClusterDirectory(settings.clusters) as clusters:
        return await deploy_environment(
            repo, environment, checks, DeployContext(commit), clusters=clusters
        )


def _drift(args: argparse.Namespace) -> int:
    """Exit 0 no drift, 1 drift, 3 cannot compare: an unreachable cluster is never a 0."""
    from bot.reconcile.commands import EXIT_CODES, drift_now
    from bot.reconcile.outputs import drift_as_data, drift_as_text
    from bot.store.backends import store_for_url
    from bot.store.operations import using

    settings = load_settings(os.environ)
    ledger = []  # PR links for objects gone from the cluster, when the ledger is here
    if _store_configured(settings):
        store = store_for_url(settings.database_url)
        records = asyncio.run(using(store, lambda s: s.audit_records(args.env)))
        ledger = [record.entry for record in records]
    drift = asyncio.run(drift_now(args.repo, args.env, args.ref, settings, ledger))
    if isinstance(drift, int):
        return drift
    if args.format == "json":
        print(json.dumps(drift_as_data(drift), indent=2))
    else:
        print(drift_as_text(drift), end="")
    return EXIT_CODES[drift.state]


def _serve(args: argparse.Namespace) -> int:
    from bot.serving import run_server

    run_server(load_settings(os.environ))
    return EXIT_OK


def _store_configured(settings: Settings) -> bool:
    """A break-glass apply is audited when the settings name a store, or the server's
    default SQLite file is right here."""
    default = Settings.database_url
    return settings.database_url != default or Path(default.removeprefix("sqlite:///")).exists()


def _jobs(args: argparse.Namespace) -> int:
    from bot.store.backends import store_for_url
    from bot.store.operations import dead_letter_listing, using

    store = store_for_url(load_settings(os.environ).database_url)
    print(asyncio.run(using(store, dead_letter_listing)), end="")
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from bot.store.backends import store_for_url
    from bot.store.ledger import since_timestamp
    from bot.store.operations import audit_check, audit_listing, using

    store = store_for_url(load_settings(os.environ).database_url)
    if args.verify:
        intact, text = asyncio.run(using(store, audit_check))
        print(text, end="", file=sys.stdout if intact else sys.stderr)
        return EXIT_OK if intact else EXIT_FINDINGS
    try:
        since = since_timestamp(args.since) if args.since else None
    except ValueError as exc:
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_USAGE
    listing = asyncio.run(
        using(store, lambda s: audit_listing(s, args.env, since, args.format == "json"))
    )
    print(listing, end="")
    return EXIT_OK


def _retry(args: argparse.Namespace) -> int:
    from bot.jobs import requeue_dead_job
    from bot.store.backends import store_for_url

    store = store_for_url(load_settings(os.environ).database_url)
    if asyncio.run(requeue_dead_job(store, args.job_id)):
        print(f"job {args.job_id} is queued again")
        return EXIT_OK
    print(f"gitops-bot: no dead-lettered job {args.job_id}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
