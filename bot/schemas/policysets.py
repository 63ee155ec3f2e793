"""The policies that apply: the bot's organisation defaults plus the repository's own."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from bot.core.findings import Finding
from bot.core.manifests import SourceFile, is_manifest_path
from bot.core.policies import Policy, PolicyFileError, parse_policy
from bot.schemas.compiledpolicies import with_fast_path


def default_policy_dir() -> Path:
    """`policies/` of the source tree, or its copy inside an installed wheel."""
    # beside the package's modules (found without importlib.resources: start-up time)
    packaged = Path(__file__).resolve().parents[1] / "default_policies"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "policies"


def read_policy_dir(folder: Path) -> tuple[SourceFile, ...]:
    return tuple(
        SourceFile(f"{folder.name}/{p.name}", p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.is_symlink() and is_manifest_path(p.name)
    )


def _parse_with_fast_path(source: SourceFile) -> Policy:
    return with_fast_path(parse_policy(source))


# Compiling a policy's JSON Schema is most of a plan's fixed cost; a policy file's
# content decides its result, so parsed policies are kept by content, per process.
_parse_cached = lru_cache(maxsize=1024)(_parse_with_fast_path)


def parse_policies(files: Iterable[SourceFile]) -> tuple[tuple[Policy, ...], tuple[Finding, ...]]:
    """Each readable policy, and a finding per file that is not one; ids must be unique."""
    policies: dict[str, Policy] = {}
    findings: list[Finding] = []
    for source in files:
        try:
            policy = _parse_cached(source)
        except PolicyFileError as exc:
            findings.append(exc.finding)
            continue
        if policy.id in policies:
            findings.append(PolicyFileError.duplicate(policy, policies[policy.id]).finding)
            continue
        policies[policy.id] = policy
    return tuple(policies.values()), tuple(findings)
