"""`gitops-bot validate PATH...`: schema and policy check of local files."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.cli.exits import EXIT_FINDINGS, EXIT_OK
from bot.cli.reports import write_reports
from bot.config.settings import load_settings
from bot.core.checks import checks_timed_out
from bot.core.findings import Finding, Severity, has_errors
from bot.core.formats import findings_output
from bot.core.policies import Policy
from bot.core.relaxations import ExemptionRules
from bot.core.schemas import UnknownKinds
from bot.git.sources import read_local_paths
from bot.schemas.catalog import catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.checklimits import ChecksTimedOut
from bot.stages.schema_sources import local_schemas
from bot.stages.validate import Validation, validate_within


def run(args: argparse.Namespace) -> int:
    files, refused = read_local_paths(args.paths)
    policies, policy_findings, exemptions = _validation_policies(args.policies)
    catalog = catalog_for(args.kubernetes_version)
    schemas, crd_findings = local_schemas(args.crds, args.schema_folder)
    unknown = UnknownKinds(Severity(args.unknown_kinds))
    seconds = load_settings(os.environ).check_timeout_seconds
    try:
        checked = validate_within(
            seconds,
            files,
            args.namespace,
            catalog,
            policies,
            schemas=schemas,
            unknown=unknown,
            exemptions=exemptions,
        )
    except ChecksTimedOut:
        checked = Validation(0, (checks_timed_out(seconds),))
    findings = policy_findings + crd_findings + refused + checked.findings
    default_path = str(args.paths[0])  # where a finding that names no file is shown

    def output(format_: str) -> str:
        return findings_output(format_, findings, default_path, __version__, checked.relaxations)

    print(output(args.format), end="")
    write_reports(args.report, output)
    if args.format == "text":
        print(
            f"{checked.objects} objects in {len(files)} files checked, {len(findings)} findings",
            file=sys.stderr,
        )
    return EXIT_FINDINGS if has_errors(findings) else EXIT_OK


def _validation_policies(
    folders: Sequence[Path],
) -> tuple[tuple[Policy, ...], tuple[Finding, ...], ExemptionRules]:
    """The default policies and those of `folders`, and which objects may be exempted."""
    policy_files = read_policy_dir(default_policy_dir())
    organisation = frozenset(p.id for p in parse_policies(policy_files)[0])
    for folder in folders:
        policy_files += read_policy_dir(folder)
    policies, findings = parse_policies(policy_files)
    rules = load_settings(os.environ).policy_rules
    return (
        policies,
        findings,
        ExemptionRules(frozenset(p.id for p in policies), organisation, rules),
    )
