"""The command line: gitops-bot validate | plan (serve, apply, audit, drift as they land).

Exit codes: 0 success; 1 findings or a plan that blocks the merge; 2 wrong usage;
3 the job could not be done (git, cluster or store unreachable, bad settings).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.core.checks import check_manifests
from bot.core.comments import GITHUB_COMMENT_LIMIT, render_plan
from bot.core.findings import has_errors
from bot.core.manifests import load_manifests
from bot.core.repoconfig import DEFAULT_KUBERNETES_VERSION
from bot.core.reports import finding_as_data, plan_as_data, plan_as_text
from bot.gitrepo import GitError, GitRepo
from bot.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.schemacatalog import UnsupportedKubernetesVersion, catalog_for
from bot.settings import SettingsError, load_settings
from bot.sources import read_local_paths
from bot.workflows import plan_change

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (GitError, SettingsError, UnsupportedKubernetesVersion) as exc:
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
    plan.set_defaults(run=_plan)
    return parser


def _validate(args: argparse.Namespace) -> int:
    files, refused = read_local_paths(args.paths)
    loaded = load_manifests(files, args.namespace)
    loaded = type(loaded)(loaded.manifests, refused + loaded.findings)
    policy_files = read_policy_dir(default_policy_dir())
    for folder in args.policies:
        policy_files += read_policy_dir(folder)
    policies, policy_findings = parse_policies(policy_files)
    texts = {f.path: f.data for f in files}
    findings = policy_findings + check_manifests(
        loaded, catalog_for(args.kubernetes_version), policies, texts
    )
    if args.format == "json":
        print(json.dumps([finding_as_data(f) for f in findings], indent=2))
    else:
        for finding in findings:
            print(finding.describe())
        print(
            f"{len(loaded.manifests)} objects in {len(files)} files checked, "
            f"{len(findings)} findings",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ)
    plan = asyncio.run(
        plan_change(GitRepo(args.repo), args.base, args.head, settings.fingerprint_key, args.env)
    )
    if args.format == "json":
        print(json.dumps(plan_as_data(plan), indent=2))
    elif args.format == "text":
        print(plan_as_text(plan), end="")
    else:
        print("\n".join(render_plan(plan, GITHUB_COMMENT_LIMIT)), end="")
    return EXIT_FINDINGS if plan.blocking else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
