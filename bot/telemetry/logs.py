"""Logs as JSON lines: one event per line, with the context it happened in, secrets masked."""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import fields
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from bot.config.secrets import Secret
from bot.config.settings import Settings, SettingsError
from bot.core.credentials import MASK, mask_credentials
from bot.events import Event, PushToDefaultBranch

SHORTEST_MASKED = 6  # shorter values would mask ordinary words; such secrets are weak anyway
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar(
    "gitops_bot_log_context", default=MappingProxyType({})
)
# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# What json.dumps(line, default=str) builds on every call, built once.
_ENCODER = json.JSONEncoder(default=str)


def log_context(**values: Any) -> AbstractContextManager[None]:
    """Add fields (delivery, repo, pr, job, environment, ...) to every line logged inside,
    in this task and the tasks it starts. None values are left out."""
    return _Fields(values)


class _Fields:
    """log_context's manager: a class, as a generator-based one costs a few microseconds
    more on every delivery."""

    __slots__ = ("_token", "_values")

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def __enter__(self) -> None:
        known = {key: value for key, value in self._values.items() if value is not None}
        self._token = _CONTEXT.set({**_CONTEXT.get(), **known})

    def __exit__(self, *exc: object) -> None:
        _CONTEXT.reset(self._token)


def event_context(event: Event) -> dict[str, Any]:
    """The fields that say what an event is about: forge, repository, PR or commit."""
    where = {"forge": event.repo.forge, "repo": event.repo.slug}
    if isinstance(event, PushToDefaultBranch):
        return where | {"commit": event.commit}
    return where | {"pr": event.number}


class Redactor:
    """Masks known secret values, and anything shaped like a credential, in log text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        pieces = {piece for value in secrets for piece in _pieces(value)}
        # Longest first, so a secret containing another is masked whole.
        self._values = sorted(pieces, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, MASK)
        # Credentials that reach a message without being in the settings (an installation
        # token, a JWT, an Authorization header echoed back by a server, a URL's password).
        return mask_credentials(text)


def _pieces(value: str) -> list[str]:
    """The value, how JSON writes it, and each long line of a multi-line value (a PEM key
    quoted in part is still masked)."""
    candidates = [value, json.dumps(value)[1:-1]]
    candidates += [line.strip() for line in value.splitlines() if len(line.strip()) >= 16]
    return [c for c in candidates if len(c) >= SHORTEST_MASKED]


class JsonLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, error."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": line_time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _CONTEXT.get()
        if context:
            line.update(context)
        attributes = vars(record)
        if not attributes.keys() <= _RECORD_ATTRIBUTES:  # extras: rare, so looked for in C
            line.update({k: v for k, v in attributes.items() if k not in _RECORD_ATTRIBUTES})
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # Masked after serialising, so every field (and its JSON escaping) is covered.
        return self.redactor.mask(_ENCODER.encode(line))


def line_time(created: float) -> str:
    """`datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")`, the
    time of a line. The date and time of day are formatted once per second; only the
    milliseconds are worked out per line, rounded as `fromtimestamp` rounds (to the
    nearest microsecond, halves to even, then cut to milliseconds)."""
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    return f"{_second(int(whole))}.{micro // 1000:03d}+00:00"


@lru_cache(maxsize=4)
def _second(whole: int) -> str:
    return datetime.fromtimestamp(whole, UTC).isoformat(timespec="seconds").removesuffix("+00:00")


def secret_values(settings: Settings) -> list[str]:
    """Every credential the settings hold: Secret fields and a database password."""
    values = [
        value.reveal()
        for value in (getattr(settings, f.name) for f in fields(settings))
        if isinstance(value, Secret) and value
    ]
    password = urlsplit(settings.database_url).password
    for target in settings.notifications:  # a webhook URL is its own credential
        values += [key.reveal() for key in (target.url, target.secret) if key]
    return values + ([password] if password else [])


def configure_logging(settings: Settings) -> None:
    """Send every log record, the libraries' included, to stderr as masked JSON lines."""
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise SettingsError(
            f"GITOPS_BOT_LOG_LEVEL: {settings.log_level!r} is not a log level; "
            "use debug, info, warning or error"
        )
    # Thread and process names are looked up for every record, and no line shows them.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines(Redactor(secret_values(settings))))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
