"""Which ways a kubeconfig user may log in: certificates and tokens, programs only by opt-in.

The Kubernetes client runs a program for an `exec` plugin and for some auth providers
(`gcp` runs its `cmd-path`; `oidc` refreshes tokens over the network), so a kubeconfig
that can reach the bot's settings could otherwise run code in the bot. Every user entry
the chosen context resolves to is checked, duplicates included.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# Keys that authenticate without running anything, and keys that do not authenticate.
CREDENTIAL_KEYS = frozenset(
    {
        "client-certificate",
        "client-certificate-data",
        "client-key",
        "client-key-data",
        "token",
        "tokenFile",
    }
)
HARMLESS_KEYS = frozenset({"as", "as-uid", "as-groups", "as-user-extra", "extensions"})
PROGRAM_KEYS = frozenset({"exec", "auth-provider"})


@dataclass(frozen=True)
class Refusal:
    """One key of one user entry that the bot will not let the client use."""

    context: str
    user: str
    key: str
    why: str


def refusals(config: Mapping[str, Any], context: str | None, allow_programs: bool) -> list[Refusal]:
    """What the chosen (or current) context's user entries may not use; [] when all is well."""
    name = context or config.get("current-context")
    found = []
    for user_name, user in _users_of(config, str(name)):
        for key in sorted(user):
            why = _why_refused(key, user[key], allow_programs)
            if why is not None:
                found.append(Refusal(str(name), user_name, str(key), why))
    return found


def _users_of(config: Mapping[str, Any], context: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    user_names = {
        str(entry["context"].get("user"))
        for entry in _entries(config, "contexts")
        if entry.get("name") == context and isinstance(entry.get("context"), Mapping)
    }
    for entry in _entries(config, "users"):
        user = entry.get("user")
        if str(entry.get("name")) in user_names and isinstance(user, Mapping):
            yield str(entry.get("name")), user


def _entries(config: Mapping[str, Any], section: str) -> list[Mapping[str, Any]]:
    listed = config.get(section)
    return [e for e in listed if isinstance(e, Mapping)] if isinstance(listed, list) else []


def _why_refused(key: object, value: object, allow_programs: bool) -> str | None:
    if key in CREDENTIAL_KEYS or key in HARMLESS_KEYS:
        return None
    if key in PROGRAM_KEYS:
        return None if allow_programs else _program(str(key), value)
    allowed = ", ".join(sorted(CREDENTIAL_KEYS))
    return f"is not a way the bot logs in (use one of: {allowed})"


def _program(key: str, value: object) -> str:
    spec = value if isinstance(value, Mapping) else {}
    if key == "exec":
        what = f"is an exec credential plugin (command {str(spec.get('command', '?'))!r})"
    else:
        given = spec.get("config")
        config: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        command = f", cmd-path {str(config['cmd-path'])!r}" if "cmd-path" in config else ""
        what = f"is an auth provider ({str(spec.get('name', '?'))!r}{command})"
    return (
        f"{what}, which runs a program or fetches credentials to log in; it is refused. Use "
        "a token, a token file or a client certificate instead, or set allow_exec: true for "
        "this cluster in the server settings if you trust that program"
    )


def describe(refusal: Refusal, cluster: str, path: str) -> str:
    """The settings error for one refusal: cluster, file, context, user and key."""
    return (
        f"cluster {cluster!r}: the kubeconfig {path}, context {refusal.context!r}, user "
        f"{refusal.user!r}: the key {refusal.key!r} {refusal.why}"
    )
