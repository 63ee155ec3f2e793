"""One vocabulary of frozen events for every forge (each kit parses its payloads into it)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

GITHUB = "github"
GITLAB = "gitlab"
COMMAND_PREFIX = "/gitops"
_MAX_COMMAND_WORDS = 8
ISSUE_COMMANDS = frozenset({"rollback", "promote"})  # the commands an issue comment may run
_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


class PayloadError(ValueError):
    """A signed payload lacks a field the bot needs; the message names the field."""


@dataclass(frozen=True)
class Repository:
    """A repository on a forge; `installation` is the App install that covers it, if any."""

    forge: str
    slug: str  # "owner/name" on GitHub, the project path on GitLab
    clone_url: str
    default_branch: str
    installation: int | None = None


@dataclass(frozen=True)
class PullRequestChanged:
    """A pull/merge request was opened or got new commits: preview it."""

    repo: Repository
    number: int
    base_sha: str  # "" when the forge's event names none (GitLab): the preview asks the forge
    head_sha: str
    author: str
    from_fork: bool
    url: str = ""
    replaced_head: str = ""  # the head this push replaced, when the forge names it


@dataclass(frozen=True)
class PushToDefaultBranch:
    """The default branch moved to `commit` (a merge): apply it."""

    repo: Repository
    commit: str
    pusher: str


@dataclass(frozen=True)
class CommentCommand:
    """Someone wrote `/gitops WORD ARGS...` on a pull/merge request; arguments are data only."""

    repo: Repository
    number: int
    author: str
    command: str
    args: tuple[str, ...] = ()
    on_issue: bool = False  # written on an issue, not a pull/merge request


Event = PullRequestChanged | PushToDefaultBranch | CommentCommand
EVENT_TYPES: dict[str, type[Event]] = {
    t.__name__: t for t in (PullRequestChanged, PushToDefaultBranch, CommentCommand)
}


Parser = Callable[[Mapping[str, Any]], Event | None]


def parse_payload(
    parsers: Mapping[str, Parser], event_name: str, payload: Mapping[str, Any]
) -> Event | None:
    """The event a delivery stands for, by its forge's parser for the event name; None
    when the bot has nothing to do with that kind of delivery."""
    parser = parsers.get(event_name)
    if parser is None:
        return None
    try:
        return parser(payload)
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"{event_name} payload is missing or has a bad field: {exc}") from exc


def parse_command(body: str) -> tuple[str, ...] | None:
    """`/gitops plan staging` -> ("plan", "staging"); words are checked, never run by a shell.

    Only the first line counts, and only when it starts with the prefix. A word that is
    not a plain name becomes "?", so the command is answered with the usage text.
    """
    first = body.strip().split("\n", 1)[0].split()
    if not first or first[0] != COMMAND_PREFIX:
        return None
    words = first[1 : 1 + _MAX_COMMAND_WORDS] or ["help"]
    return tuple(w.lower() if _WORD.match(w) else "?" for w in words)


def commit_id(value: Any) -> str:
    text = str(value)
    if not re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", text):
        raise ValueError(f"{text!r} is not a commit id")
    return text


def event_to_data(event: Event) -> dict[str, Any]:
    """A JSON-ready form of an event, for the job store."""
    return {"type": type(event).__name__, **_as_data(event)}


def _as_data(value: Any) -> Any:
    """What `dataclasses.asdict` gives for an event, without its deep copy of every value
    (an event's values are immutable): half the cost, on every delivery."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _as_data(getattr(value, name)) for name in _field_names(type(value))}
    return value


def event_to_masked_data(event: Event, mask: Callable[[str], str]) -> dict[str, Any]:
    """`event_to_data(event)` with `mask` applied to every string value in it, tuples as
    lists: what `masked_data` makes of it, in one walk instead of two (every delivery)."""
    return {"type": mask(type(event).__name__), **_masked_fields(event, mask)}


def _masked_fields(value: DataclassInstance, mask: Callable[[str], str]) -> dict[str, Any]:
    return {name: _masked(getattr(value, name), mask) for name in _field_names(type(value))}


def _masked(value: Any, mask: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, tuple | list):
        return [_masked(item, mask) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _masked_fields(value, mask)
    return value


@cache
def _field_names(kind: type[Any]) -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(kind))


def event_from_data(data: Mapping[str, Any]) -> Event:
    fields = dict(data)
    kind = EVENT_TYPES[fields.pop("type")]
    fields["repo"] = Repository(**fields["repo"])
    if "args" in fields:
        fields["args"] = tuple(fields["args"])
    return kind(**fields)
