"""`gitops-bot validate PATH...`: schema and policy check of local files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.cli.exits import EXIT_FINDINGS, EXIT_OK
from bot.config.settings import load_settings
from bot.core.checks import checks_timed_out
from bot.core.findings import Finding, Severity, has_errors
from bot.core.policies import Policy
from bot.core.relaxations import ExemptionRules
from bot.core.reports import finding_as_data, relaxation_as_data
from bot.core.schemas import UnknownKinds
from bot.git.sources import read_local_paths
from bot.schemas.catalog import catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.checkpool import ChecksTimedOut
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
    if args.format == "json":
        report = {
            "findings": [finding_as_data(f) for f in findings],
            "relaxations": [relaxation_as_data(r) for r in checked.relaxations],
        }
        print(json.dumps(report, indent=2))
    else:
        for finding in findings:
            print(finding.describe())
        for relaxation in checked.relaxations:
            print(f"relaxed: {relaxation.describe()}")
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
