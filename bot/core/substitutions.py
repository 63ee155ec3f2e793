"""Flux's post-build substitution: `${VAR}` in rendered YAML, from inline values."""

from __future__ import annotations

import re
from collections.abc import Mapping

DISABLED = "kustomize.toolkit.fluxcd.io/substitute: disabled"
# $${VAR} is an escaped literal; ${VAR}, ${VAR:=default} and ${VAR:-default} are variables.
_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::[=-]([^}]*))?\}")
_SEPARATOR = re.compile(rb"(?m)^---[ \t]*$")


def substitute(output: bytes, values: Mapping[str, str]) -> bytes:
    """Each document of `output` with its variables replaced, as Flux does after the build.

    A document that carries the `substitute: disabled` annotation stays as it is; a
    variable with no value and no default becomes empty, as with Flux's envsubst.
    """
    documents = _SEPARATOR.split(output)
    return b"---".join(_document(doc, values) for doc in documents)


def _document(document: bytes, values: Mapping[str, str]) -> bytes:
    text = document.decode("utf-8", errors="surrogateescape")
    if DISABLED in text:
        return document
    replaced = _VARIABLE.sub(lambda match: _value(match, values), text)
    return replaced.encode("utf-8", errors="surrogateescape")


def _value(match: re.Match[str], values: Mapping[str, str]) -> str:
    escaped, name, default = match.groups()
    if escaped:
        return match.group(0)[1:]
    return values.get(name, default or "")
