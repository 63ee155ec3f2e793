"""Findings placed at a file and line, the shape every CI output format starts from."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core.findings import Finding, Severity, Stage
from bot.core.repoconfig import CONFIG_PATH

if TYPE_CHECKING:  # `validate` formats findings only: the plans cost it start-up time
    from bot.core.plans import EnvironmentPlan, Plan


@dataclass(frozen=True)
class Annotation:
    finding: Finding
    path: str  # relative to the repository root (or as given on the command line)
    line: int  # 1-based; 1 when the finding names no line

    @property
    def title(self) -> str:
        """`[rule] subject: field`, the headline a CI shows above the message."""
        return " ".join(p for p in (f"[{self.finding.rule}]", *self._where()) if p)

    @property
    def fingerprint(self) -> str:
        """Stable across runs while the finding stays the same; unique per place."""
        f = self.finding
        parts = (f.rule, self.path, str(self.line), f.subject or "", f.field, f.message)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    @property
    def is_error(self) -> bool:
        return self.finding.severity is Severity.ERROR

    def _where(self) -> tuple[str, ...]:
        subject, field = self.finding.subject, self.finding.field
        if subject and field:
            return (f"{subject}:", field)
        return (subject or field,)


def annotate(findings: Iterable[Finding], default_path: str) -> tuple[Annotation, ...]:
    """Each finding at its file and line; one that names no file is put at `default_path`."""
    return tuple(Annotation(f, f.path or default_path, f.line or 1) for f in findings)


def plan_findings(plan: Plan) -> tuple[Finding, ...]:
    """Every finding of a plan, and each reason it could not be made as an error finding."""
    # Failures sit on the config file, where the environment is declared: CI annotations
    # and Code Quality reports need a file, and an environment's path is a folder.
    failures: list[Finding] = []
    if plan.failure:
        failures.append(_failure("plan.failed", f"could not plan: {plan.failure}"))
    for env in plan.environments:
        failures.extend(_environment_failures(env))
    return plan.all_findings + tuple(failures)


def _environment_failures(env: EnvironmentPlan) -> Iterable[Finding]:
    name = env.environment.name
    if env.failure:
        yield _failure("plan.cannot-preview", f"environment {name}: cannot preview: {env.failure}")
    if env.live is not None and env.live.failure:
        where = f"environment {name}, cluster {env.live.cluster}"
        message = f"{where}: cannot preview the live layer: {env.live.failure}"
        yield _failure("plan.cluster-unavailable", message, Stage.CLUSTER)


def _failure(rule: str, message: str, stage: Stage = Stage.RENDER) -> Finding:
    return Finding(stage, Severity.ERROR, rule, message, CONFIG_PATH)
