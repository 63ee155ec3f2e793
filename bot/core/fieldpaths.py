"""Field paths and the drift ignore rules of `.gitops-bot.yaml` that name them.

Apart from drifts.py so reading a repository's configuration needs none of the drift
comparison (and what that imports)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.manifests import ObjectKey

ANY = "*"
_SEGMENT = re.compile(r"(?:^|\.)([^.\[\]]+)|\[([^\[\]]+)\]")
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
IGNORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ignore": {
            "type": "array",
            "description": "fields other managers own (autoscalers, controllers): not drift",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["field"],
                "properties": {
                    "kind": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1},
                    "field": {"type": "string", "minLength": 1},
                },
            },
        },
    },
}


@dataclass(frozen=True)
class IgnoredField:
    """A field whose live value is never drift, e.g. spec.replicas under an autoscaler."""

    path: tuple[str, ...]  # ("spec", "replicas"); "*" matches any key or list item
    kind: str = ""  # "" for every kind
    name: str = ""  # "" for every name

    def matches(self, key: ObjectKey) -> bool:
        return self.kind in ("", key.kind) and self.name in ("", key.name)

    def __str__(self) -> str:
        return format_path(self.path)


def parse_path(text: str) -> tuple[str, ...]:
    """`spec.template.spec.containers[0].image` or `metadata.annotations[example.com/x]`."""
    segments, end = [], 0
    for found in _SEGMENT.finditer(text):
        if found.start() != end:
            break
        segments.append(found.group(1) or found.group(2))
        end = found.end()
    if not segments or end != len(text):
        raise ValueError(
            f"{text!r} is not a field path; write it like spec.replicas, "
            "spec.template.spec.containers[*].image or metadata.annotations[example.com/owner]"
        )
    return tuple(segments)


def format_path(path: Iterable[str | int]) -> str:
    """The inverse of parse_path: list items and keys with dots go in brackets."""
    text = ""
    for part in path:
        plain = isinstance(part, str) and (_PLAIN_KEY.match(part) or part == ANY)
        text += (f".{part}" if text else str(part)) if plain else f"[{part}]"
    return text


def ignore_problems(where: str, spec: Mapping[str, Any] | None) -> list[str]:
    """What is wrong with an environment's `drift` block (the schema has passed)."""
    problems = []
    for index, rule in enumerate((spec or {}).get("ignore", [])):
        try:
            parse_path(rule["field"])
        except ValueError as exc:
            problems.append(f"{where}.ignore[{index}].field: {exc}")
    return problems


def ignore_rules(spec: Mapping[str, Any] | None) -> tuple[IgnoredField, ...]:
    return tuple(
        IgnoredField(parse_path(rule["field"]), rule.get("kind", ""), rule.get("name", ""))
        for rule in (spec or {}).get("ignore", [])
    )


def without(body: Mapping[str, Any], paths: Iterable[tuple[str, ...]]) -> dict[str, Any]:
    """A copy of `body` without the fields at `paths` (absent ones are fine)."""
    result: Any = dict(body)
    for path in paths:
        result = _remove(result, path)
    return dict(result)


def _remove(node: Any, path: tuple[str, ...]) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(node, Mapping):
        kept = {}
        for key, value in node.items():
            if head not in (ANY, key):
                kept[key] = value
            elif rest:
                kept[key] = _remove(value, rest)
        return kept
    if isinstance(node, list):
        chosen = set(range(len(node))) if head == ANY else {int(head)} if head.isdigit() else set()
        if not rest:
            return [item for i, item in enumerate(node) if i not in chosen]
        return [_remove(item, rest) if i in chosen else item for i, item in enumerate(node)]
    return node


def changed_fields(old: Any, new: Any, at: tuple[str | int, ...] = ()) -> Iterator[str]:
    """Paths of the leaves that differ between two normalised objects, in order."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(old.keys() | new.keys(), key=str):
            yield from changed_fields(old.get(key), new.get(key), (*at, str(key)))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            yield from changed_fields(before, after, (*at, index))
    elif old != new:
        yield format_path(at)
