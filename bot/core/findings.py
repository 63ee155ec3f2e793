"""Findings: what a check says about the repository, with where it applies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"  # blocks the merge
    WARNING = "warning"  # informs only


class Stage(StrEnum):
    """Which stage produced a finding, so a user knows what broke and what to fix."""

    CONFIG = "config"
    MANIFEST = "manifest"
    SCHEMA = "schema"
    POLICY = "policy"
    RENDER = "render"
    CLUSTER = "cluster"


@dataclass(frozen=True)
class Finding:
    stage: Stage
    severity: Severity
    rule: str  # a policy id or a stable code such as "yaml.duplicate-key"
    message: str
    path: str | None = None  # file, relative to the repository root
    line: int | None = None  # 1-based
    subject: str | None = None  # the object, e.g. "apps/v1 Deployment shop/web"
    pointer: tuple[str | int, ...] = ()  # e.g. ("spec", "containers", 0, "image")

    @property
    def field(self) -> str:
        return field_path(self.pointer)

    @property
    def location(self) -> str:
        return file_location(self.path, self.line)

    def describe(self) -> str:
        """One line, `file:line: severity: [rule] subject: field: message`."""
        parts = [f"{self.location}: {self.severity}: [{self.rule}]"]
        if self.subject:
            parts.append(f"{self.subject}:")
        if self.field:
            parts.append(f"{self.field}:")
        parts.append(self.message)
        return " ".join(parts)


def file_location(path: str | None, line: int | None) -> str:
    """`path:line`, `path` or `-`."""
    if path is None:
        return "-"
    return path if line is None else f"{path}:{line}"


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


def field_path(parts: Iterable[object]) -> str:
    """Render a JSON path such as ('spec', 'containers', 0, 'image') as spec.containers[0].image."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
