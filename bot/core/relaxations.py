"""Policy relaxations: what the server lets a repository loosen, and the list reviewers see."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from bot.core.documents import locate
from bot.core.findings import Finding, Severity, Stage, file_location
from bot.core.policies import Policy
from bot.core.repoconfig import CONFIG_PATH, ConfigError, RepoConfig

LEVEL_SETTING = "GITOPS_BOT_POLICY_RELAXATION"
LOCKED_SETTING = "GITOPS_BOT_POLICY_LOCKED"
OFF = "off"


class RelaxationLevel(StrEnum):
    """How far a repository may loosen the organisation's policies (a server setting)."""

    NONE = "none"  # as shipped; a repository may only make a warning an error
    SEVERITY = "severity"  # may lower errors to warnings: never hidden, no longer blocking
    ALL = "all"  # may also turn policies off and exempt objects outright


class Effect(StrEnum):
    WARNING = "warning"  # findings still shown, but they no longer block
    OFF = "off"  # not checked (a whole scope) or findings dropped (one object)


class Scope(StrEnum):
    REPOSITORY = "repository"
    ENVIRONMENT = "environment"
    OBJECT = "object"


_NEEDS = {Effect.WARNING: RelaxationLevel.SEVERITY, Effect.OFF: RelaxationLevel.ALL}
_RANK = {RelaxationLevel.NONE: 0, RelaxationLevel.SEVERITY: 1, RelaxationLevel.ALL: 2}


@dataclass(frozen=True)
class RelaxationRules:
    """The server's word on relaxing organisation policies (repository policies are free)."""

    level: RelaxationLevel = RelaxationLevel.SEVERITY
    locked: frozenset[str] = frozenset()  # organisation policy ids never relaxed

    def refusal(self, policy_id: str, effect: Effect) -> str | None:
        """Why the server refuses this relaxation of an organisation policy, or None."""
        if policy_id in self.locked:
            return (
                f"organisation policy {policy_id!r} cannot be relaxed: the server setting "
                f"{LOCKED_SETTING} lists it"
            )
        if _RANK[self.level] >= _RANK[_NEEDS[effect]]:
            return None
        what = "lowered to a warning" if effect is Effect.WARNING else "turned off or exempted"
        return (
            f"organisation policy {policy_id!r} cannot be {what}: the server setting "
            f"{LEVEL_SETTING} is {str(self.level)!r}, and this needs {str(_NEEDS[effect])!r}"
        )

    def exemption_effect(self, policy_id: str, organisation: bool) -> Effect | str:
        """What exempting one object does: drop its findings, lower them, or a refusal."""
        if not organisation:
            return Effect.OFF
        if self.level is RelaxationLevel.NONE and policy_id not in self.locked:
            return (
                f"organisation policy {policy_id!r} cannot be exempted: the server setting "
                f"{LEVEL_SETTING} is 'none' (with 'severity' an exemption lowers the object's "
                "findings to warnings, with 'all' it waives them)"
            )
        effect = Effect.WARNING if self.level is RelaxationLevel.SEVERITY else Effect.OFF
        return self.refusal(policy_id, effect) or effect


DEFAULT_RELAXATION = RelaxationRules()


@dataclass(frozen=True)
class Relaxation:
    """One relaxation in force, for the reviewer: which policy, how, where and why."""

    policy: str
    effect: Effect
    scope: Scope
    path: str | None
    line: int | None = None
    environment: str | None = None  # for Scope.ENVIRONMENT
    subject: str | None = None  # the exempted object, for Scope.OBJECT
    reason: str = ""
    waived: int = 0  # findings of the object dropped or lowered (Scope.OBJECT)
    pointer: tuple[str | int, ...] = field(default=(), compare=False)

    @property
    def location(self) -> str:
        return file_location(self.path, self.line)

    def describe(self) -> str:
        """One line, e.g. `deploy/x.yaml:7: resource-limits off for Deployment.apps a/b: why`."""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.location}: {self.policy} {self.summary}{reason}"

    @property
    def summary(self) -> str:
        """What changed and for what, e.g. `lowered to a warning in environment dev`."""
        what = "off" if self.effect is Effect.OFF else "lowered to a warning"
        if self.scope is Scope.REPOSITORY:
            return f"{what} for the whole repository"
        if self.scope is Scope.ENVIRONMENT:
            return f"{what} in environment {self.environment}"
        count = f"{self.waived} finding{'s' * (self.waived != 1)}"
        return f"{what} for {self.subject} ({count})"


@dataclass(frozen=True)
class ExemptionRules:
    """What an object's exemption annotation may name, and what the server allows."""

    known: frozenset[str]  # every policy id in force for the repository
    organisation: frozenset[str]
    rules: RelaxationRules = DEFAULT_RELAXATION

    def effect(self, policy_id: str) -> Effect | str:
        return self.rules.exemption_effect(policy_id, policy_id in self.organisation)


@dataclass(frozen=True)
class PolicySelection:
    """The policies each environment is checked with, and the relaxations that made them."""

    environments: Mapping[str, tuple[Policy, ...]]
    relaxations: tuple[Relaxation, ...]
    exemptions: ExemptionRules


def select_policies(
    config: RepoConfig,
    policies: tuple[Policy, ...],
    organisation: frozenset[str],
    rules: RelaxationRules,
    config_text: bytes | str = b"",
) -> PolicySelection:
    """Apply `policy_severity` of the repository and of each environment (which wins).

    Raises ConfigError naming each unknown id and each relaxation the server refuses.
    """
    by_id = {p.id: p for p in policies}
    problems, relaxations = [], []
    for entry in _entries(config):
        problem = _problem(entry, by_id, organisation, rules)
        if problem:
            problems.append(_config_finding(entry, problem, config_text))
        elif (effect := _weakening(by_id[entry.policy].severity, entry.level)) is not None:
            relaxations.append(_config_relaxation(entry, effect, config_text))
    unknown = sorted(rules.locked - organisation)
    problems += [_locked_problem(policy_id, organisation) for policy_id in unknown]
    if problems:
        raise ConfigError(tuple(problems))
    environments = {
        env.name: _effective(policies, dict(config.policy_severity) | dict(env.policy_severity))
        for env in config.environments
    }
    exemptions = ExemptionRules(frozenset(by_id), organisation, rules)
    return PolicySelection(environments, tuple(relaxations), exemptions)


@dataclass(frozen=True)
class _Entry:
    policy: str
    level: str  # error, warning or off
    environment: str | None  # None: the repository's own setting

    @property
    def pointer(self) -> tuple[str, ...]:
        where = () if self.environment is None else ("environments", self.environment)
        return (*where, "policy_severity", self.policy)


def _entries(config: RepoConfig) -> Iterator[_Entry]:
    yield from (_Entry(policy, level, None) for policy, level in config.policy_severity)
    for env in config.environments:
        yield from (_Entry(policy, level, env.name) for policy, level in env.policy_severity)


def _problem(
    entry: _Entry,
    by_id: Mapping[str, Policy],
    organisation: frozenset[str],
    rules: RelaxationRules,
) -> str | None:
    if entry.policy not in by_id:
        return f"{entry.policy!r} is not a policy in force here; {known_ids(entry.policy, by_id)}"
    effect = _weakening(by_id[entry.policy].severity, entry.level)
    if effect is None or entry.policy not in organisation:
        return None
    refusal = rules.refusal(entry.policy, effect)
    return f"{refusal}; remove the setting or ask the bot's operators" if refusal else None


def known_ids(policy_id: str, known: Iterable[str]) -> str:
    """The known ids, and the closest to a mistyped `policy_id`."""
    close = difflib.get_close_matches(policy_id, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"{hint}known: {', '.join(sorted(known))}"


def _weakening(shipped: Severity, level: str) -> Effect | None:
    """The relaxation `level` makes of a policy shipped as `shipped`; None if none."""
    if level == OFF:
        return Effect.OFF
    if level == Severity.WARNING and shipped is Severity.ERROR:
        return Effect.WARNING
    return None


def _effective(policies: tuple[Policy, ...], levels: Mapping[str, str]) -> tuple[Policy, ...]:
    return tuple(
        replace(p, severity=Severity(levels[p.id])) if p.id in levels else p
        for p in policies
        if levels.get(p.id) != OFF
    )


def _config_relaxation(entry: _Entry, effect: Effect, text: bytes | str) -> Relaxation:
    scope = Scope.REPOSITORY if entry.environment is None else Scope.ENVIRONMENT
    line = _line(text, entry.pointer)
    return Relaxation(entry.policy, effect, scope, CONFIG_PATH, line, entry.environment)


def _config_finding(entry: _Entry, problem: str, text: bytes | str) -> Finding:
    message = f"{'.'.join(entry.pointer)}: {problem}"
    line = _line(text, entry.pointer)
    return Finding(
        Stage.CONFIG, Severity.ERROR, "config.policy-relaxation", message, CONFIG_PATH, line
    )


def _locked_problem(policy_id: str, organisation: frozenset[str]) -> Finding:
    message = (
        f"the server setting {LOCKED_SETTING} names {policy_id!r}, which is not an organisation "
        f"policy, so it protects nothing; {known_ids(policy_id, organisation)}. Ask the bot's "
        "operators to correct it"
    )
    return Finding(Stage.CONFIG, Severity.ERROR, "config.policy-relaxation", message)


def _line(text: bytes | str, pointer: tuple[str, ...]) -> int | None:
    return locate(text, 1, pointer) if text else None
