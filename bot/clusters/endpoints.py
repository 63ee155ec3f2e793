"""The API server's address and credentials from a kubeconfig that logs in with a
certificate or a token, read as the Kubernetes client reads it, without the client.

Anything else (an `exec` plugin or an auth provider the settings allow, a kubeconfig
the client would refuse or read in its own way) gives None: the caller then uses the
client itself, so its behaviour and its error messages stay exactly what they were.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.clusters.transports import Endpoint
from bot.core.kubeauth import PROGRAM_KEYS


class _Unusual(Exception):
    """The kubeconfig is not one this module reads; the Kubernetes client will."""


def plain_endpoint(config: Mapping[str, Any], context: str | None, base: Path) -> Endpoint | None:
    """The endpoint of the chosen (or current) context; None where the client must read it.

    `base` is the kubeconfig's folder: relative file names in it are read from there.
    """
    try:
        chosen = _named(config, "contexts", context or config.get("current-context"))
        if chosen is None or not isinstance(chosen.get("context"), Mapping):
            raise _Unusual("no such context")
        user = _user(config, chosen["context"])
        cluster = _named(config, "clusters", chosen["context"].get("cluster"))
        if cluster is None or not isinstance(cluster.get("cluster"), Mapping):
            raise _Unusual("no such cluster")
        return _endpoint(cluster["cluster"], user, base)
    except (_Unusual, OSError, ValueError, binascii.Error):
        return None


def _named(config: Mapping[str, Any], section: str, name: object) -> Mapping[str, Any] | None:
    """The one entry of `section` called `name`, None when there is none."""
    entries = config.get(section)
    if not isinstance(entries, list) or not all(
        isinstance(e, Mapping) and "name" in e for e in entries
    ):
        raise _Unusual(f"{section} is not a list of named entries")
    found = [e for e in entries if e["name"] == name]
    if len(found) > 1:
        raise _Unusual(f"{name!r} is named twice in {section}")
    return found[0] if found else None


def _user(config: Mapping[str, Any], context: Mapping[str, Any]) -> Mapping[str, Any]:
    """The context's user entry; {} when it names none, or none by that name exists."""
    if not context.get("user") or not config.get("users"):
        return {}
    entry = _named(config, "users", context["user"])
    if entry is None:
        return {}
    user = entry.get("user")
    if not isinstance(user, Mapping) or PROGRAM_KEYS & set(user):
        raise _Unusual("a program logs in, or the entry is no mapping")
    return user


def _endpoint(cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path) -> Endpoint:
    server = cluster.get("server")
    if not isinstance(server, str):
        raise _Unusual("the cluster has no server")
    host = server.rstrip("/")
    return Endpoint(
        host=host,
        tls=_tls(cluster, user, base, secure=host.startswith("https")),
        authorization=_authorization(user, base),
        server_name=_text(cluster, "tls-server-name"),
        proxy=_text(cluster, "proxy-url"),
    )


def _authorization(user: Mapping[str, Any], base: Path) -> str | None:
    """ "Bearer TOKEN" from `token`, else from the file `tokenFile` names, read as it is."""
    if "token" in user:
        token = user["token"]
    elif "tokenFile" in user:
        token = _path(base, user["tokenFile"]).read_text()
    else:
        return None
    if not isinstance(token, str):
        raise _Unusual("the token is not text")
    return f"Bearer {token}" if token else None


def _tls(
    cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path, secure: bool
) -> ssl.SSLContext:
    """The TLS settings: the cluster's CA, the user's certificate and key, verification."""
    with tempfile.TemporaryDirectory(prefix="gitops-bot-tls-") as scratch:
        files = _Files(base, Path(scratch))
        ca = files.path(cluster, "certificate-authority") if secure else None
        context = ssl.create_default_context(cafile=ca)
        certificate = files.path(user, "client-certificate") if secure else None
        if certificate:
            context.load_cert_chain(certificate, keyfile=files.path(user, "client-key"))
    verify = cluster.get("insecure-skip-tls-verify", False)
    if not isinstance(verify, bool):
        raise _Unusual("insecure-skip-tls-verify is not true or false")
    if verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Files:
    """`KEY-data` (base64, written to a scratch file) or the file `KEY` names, as a path."""

    def __init__(self, base: Path, scratch: Path) -> None:
        self.base, self.scratch = base, scratch

    def path(self, entry: Mapping[str, Any], key: str) -> str | None:
        if f"{key}-data" in entry:
            data = entry[f"{key}-data"]
            return self._written(key, data) if data else None
        if key not in entry:
            return None
        path = _path(self.base, entry[key])
        if not path.is_file():
            raise _Unusual(f"{path} does not exist")  # the client words this error itself
        return str(path)

    def _written(self, key: str, data: object) -> str:
        if not isinstance(data, (str, bytes)):
            raise _Unusual(f"{key}-data is not text")
        target = self.scratch / key
        target.write_bytes(base64.standard_b64decode(data))
        target.chmod(0o600)
        return str(target)


def _path(base: Path, name: object) -> Path:
    if not isinstance(name, str):
        raise _Unusual("a file name is not text")
    return Path(os.path.normpath(base / name))


def _text(entry: Mapping[str, Any], key: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise _Unusual(f"{key} is not text")
    return value or None
