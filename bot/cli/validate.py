"""`gitops-bot validate PATH...`: schema and policy check of local files."""

from __future__ import annotations

import argparse
import json
import sys

from bot.cli.exits import EXIT_FINDINGS, EXIT_OK
from bot.core.findings import Severity, has_errors
from bot.core.reports import finding_as_data
from bot.core.schemas import UnknownKinds
from bot.git.sources import read_local_paths
from bot.schemas.catalog import catalog_for
from bot.schemas.policysets import default_policy_dir, parse_policies, read_policy_dir
from bot.stages.schema_sources import local_schemas
from bot.stages.validate import validate_files


def run(args: argparse.Namespace) -> int:
    files, refused = read_local_paths(args.paths)
    policy_files = read_policy_dir(default_policy_dir())
    for folder in args.policies:
        policy_files += read_policy_dir(folder)
    policies, policy_findings = parse_policies(policy_files)
    catalog = catalog_for(args.kubernetes_version)
    schemas, crd_findings = local_schemas(args.crds, args.schema_folder)
    unknown = UnknownKinds(Severity(args.unknown_kinds))
    checked = validate_files(
        files, args.namespace, catalog, policies, schemas=schemas, unknown=unknown
    )
    findings = policy_findings + crd_findings + refused + checked.findings
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
