"""ApplicationSet templates: `{{param}}` (fasttemplate) and a subset of Go templates.

Fasttemplate, Argo CD's default: `{{ key }}` is replaced by the flattened parameter
`key` (`path.basename`, `path[1]`, `metadata.labels.env`); an unknown key stays as
written, as Argo CD leaves it.

Go templates (`goTemplate: true`), the subset supported: actions `{{ pipeline }}` with
`{{-` / `-}}` trimming; a pipeline of commands joined by `|`; arguments that are fields
(`.path.basename`, `.`), string, number or boolean literals, or a parenthesised pipeline;
the functions in `_FUNCTIONS`. Control structures (`if`, `range`, `with`, `define`,
variables) and any other function are refused with a `TemplateError` naming them, so the
application is listed as not previewed instead of being guessed at. A missing field
renders `<no value>`, or is an error with `goTemplateOptions: ["missingkey=error"]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_FAST = re.compile(r"\{\{(.*?)\}\}", re.S)
_ACTION = re.compile(r"(\s*)\{\{(-\s)?(.*?)(\s-)?\}\}(\s*)", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|`[^`]*`|\(|\)|\||[^\s()|]+)')
_CONTROL = frozenset({"if", "else", "end", "range", "with", "define", "template", "block"})
_MISSING = "<no value>"


class TemplateError(ValueError):
    """The template uses something outside the supported subset, or a key that is missing."""


@dataclass(frozen=True)
class TemplateStyle:
    go: bool = False  # spec.goTemplate
    missing_is_error: bool = False  # goTemplateOptions: ["missingkey=error"]


def render_value(value: Any, params: Mapping[str, Any], style: TemplateStyle) -> Any:
    """Every string inside `value` (a template or a generator) rendered with `params`."""
    if isinstance(value, str):
        return render_text(value, params, style)
    if isinstance(value, Mapping):
        return {k: render_value(v, params, style) for k, v in value.items()}
    if isinstance(value, list):
        return [render_value(item, params, style) for item in value]
    return value


def render_text(text: str, params: Mapping[str, Any], style: TemplateStyle) -> str:
    if "{{" not in text:
        return text
    if not style.go:
        return _FAST.sub(lambda m: _fast(m, params), text)
    return _go(text, params, style)


def _fast(match: re.Match[str], params: Mapping[str, Any]) -> str:
    key = match.group(1).strip()
    return str(params[key]) if key in params else match.group(0)


# --- Go templates


def _go(text: str, params: Mapping[str, Any], style: TemplateStyle) -> str:
    def action(match: re.Match[str]) -> str:
        before = "" if match.group(2) else match.group(1)
        after = "" if match.group(4) else match.group(5)
        body = match.group(3).strip()
        if body.startswith("/*"):
            return before + after
        return before + _text_of(_pipeline(_tokens(body), params, style)) + after

    return _ACTION.sub(action, text)


def _tokens(body: str) -> list[str]:
    tokens, position = [], 0
    while position < len(body):
        match = _TOKEN.match(body, position)
        if match is None:
            break
        tokens.append(match.group(1))
        position = match.end()
    return [t for t in tokens if t]


def _pipeline(tokens: list[str], params: Mapping[str, Any], style: TemplateStyle) -> Any:
    """`a | b x | c`: each command's result is the last argument of the next."""
    commands: list[list[Any]] = [[]]
    depth_tokens: list[str] = []
    depth = 0
    for word in tokens:
        if depth:
            depth += {"(": 1, ")": -1}.get(word, 0)
            if depth == 0:
                commands[-1].append(_pipeline(depth_tokens, params, style))
                depth_tokens = []
            else:
                depth_tokens.append(word)
        elif word == "(":
            depth = 1
        elif word == "|":
            commands.append([])
        else:
            commands[-1].append(_Word(word))
    if depth:
        raise TemplateError("unbalanced parentheses in a Go template action")
    result: Any = _NOTHING
    for command in commands:
        result = _command(command, result, params, style)
    return result


@dataclass(frozen=True)
class _Word:
    text: str


_NOTHING = object()


def _command(words: list[Any], piped: Any, params: Mapping[str, Any], style: TemplateStyle) -> Any:
    if not words:
        raise TemplateError("an empty command in a Go template pipeline")
    head, rest = words[0], words[1:]
    args = [_argument(word, params, style) for word in rest]
    if piped is not _NOTHING:
        args.append(piped)
    if isinstance(head, _Word) and _is_function(head.text):
        return _call(head.text, args)
    if rest or piped is not _NOTHING:
        raise TemplateError(f"{_describe(head)} is not a function that takes arguments")
    return _argument(head, params, style)


def _is_function(text: str) -> bool:
    if text in _CONTROL or text.startswith("$"):
        raise TemplateError(f"'{text}' (control structures and variables) is not supported")
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text)) and text not in {"true", "false"}


def _argument(word: Any, params: Mapping[str, Any], style: TemplateStyle) -> Any:
    if not isinstance(word, _Word):
        return word  # a parenthesised pipeline, already evaluated
    text = word.text
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("`"):
        return text[1:-1]
    if text in {"true", "false"}:
        return text == "true"
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text.startswith("."):
        return _field(text, params, style)
    if _is_function(text):
        return _call(text, [])
    raise TemplateError(f"'{text}' is not supported in a Go template")


def _field(text: str, params: Mapping[str, Any], style: TemplateStyle) -> Any:
    value: Any = params
    for name in [part for part in text.split(".") if part]:
        if not isinstance(value, Mapping) or name not in value:
            if style.missing_is_error:
                raise TemplateError(f"map has no entry for key {name!r} ({text})")
            return _MISSING
        value = value[name]
    return value


def _describe(word: Any) -> str:
    return f"'{word.text}'" if isinstance(word, _Word) else "a value"


def _call(name: str, args: list[Any]) -> Any:
    function = _FUNCTIONS.get(name)
    if function is None:
        raise TemplateError(f"the template function '{name}' is not supported")
    try:
        return function(*args)
    except (TypeError, IndexError, KeyError, ValueError) as exc:
        raise TemplateError(f"'{name}' cannot take these arguments: {exc}") from None


def _text_of(value: Any) -> str:
    if value is None or value is _NOTHING:
        return "<no value>" if value is None else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_text_of(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_text_of(v) for v in value) + "]"
    return str(value)


def normalize(text: Any) -> str:
    """Argo CD's `normalize`: a DNS-1123 name, other characters as '-', at most 253 long."""
    return re.sub(r"[^a-z0-9.-]", "-", str(text).lower())[:253]


def _default(fallback: Any, value: Any = None) -> Any:
    empty = value in (None, "", 0, False, _MISSING) or value == [] or value == {}
    return fallback if empty else value


def _index(value: Any, *keys: Any) -> Any:
    for key in keys:
        value = value[key]
    return value


def _printf(form: str, *args: Any) -> str:
    converted = re.sub(r"%v", "%s", form)
    return converted % tuple(_text_of(a) if isinstance(a, (Mapping, list)) else a for a in args)


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lower": lambda s: _text_of(s).lower(),
    "upper": lambda s: _text_of(s).upper(),
    "title": lambda s: _text_of(s).title(),
    "trim": lambda s: _text_of(s).strip(),
    "trimPrefix": lambda p, s: _text_of(s).removeprefix(p),
    "trimSuffix": lambda p, s: _text_of(s).removesuffix(p),
    "replace": lambda old, new, s: _text_of(s).replace(old, new),
    "quote": lambda s: json.dumps(_text_of(s)),
    "squote": lambda s: f"'{_text_of(s)}'",
    "default": _default,
    "index": _index,
    "printf": _printf,
    "normalize": normalize,
    "toJson": lambda v: json.dumps(v, separators=(",", ":")),
    "join": lambda sep, items: sep.join(_text_of(i) for i in items),
    "split": lambda sep, s: {f"_{i}": p for i, p in enumerate(_text_of(s).split(sep))},
    "base": lambda s: _text_of(s).rstrip("/").rsplit("/", 1)[-1],
    "dir": lambda s: _text_of(s).rstrip("/").rsplit("/", 1)[0] if "/" in _text_of(s) else ".",
}
SUPPORTED_FUNCTIONS = tuple(sorted(_FUNCTIONS))
