"""The request line's target ("/path?query") exactly as aiohttp writes it for a URL string.

aiohttp passes the URL through yarl, which re-quotes it: escapes of characters a path or
a query may hold as they are are decoded (`%2C` becomes `,`, `%3A` in a path `:`), what
may not is escaped, and "." and ".." path segments are resolved. The requests of
`http11` must carry the same bytes as the Kubernetes client's (aiohttp underneath), so
this is yarl's requoting (yarl/_quoting_py.py, `PATH_REQUOTER`, `QUERY_REQUOTER`)
written out for strings; tests compare it with yarl itself.
"""

from __future__ import annotations

import re
from string import ascii_letters, digits

_ALLOWED = ascii_letters + digits + "-._~" + "!$'()*,"  # unreserved and sub-delims
_QS = "+&=;"  # what separates a query's pairs: kept escaped there
_REMOVED = re.compile("[\t\r\n]")  # dropped from a URL string before it is split
_LEADING = "".join(chr(c) for c in range(0x21))  # C0 controls and space, stripped at the start


class _Requoter:
    """One of yarl's requoters: `safe` characters are written as they are, escapes of
    them decoded, except `protected` ones, which stay escaped; in a query, " " is "+"."""

    def __init__(self, safe: str, protected: str, query: bool) -> None:
        self._plain = (safe + _ALLOWED + ("" if query else _QS) + protected).encode()
        self._decoded = frozenset(self._plain) - frozenset(protected.encode())
        self._query = query
        self._untouched = re.compile(f"[^{re.escape(self._plain.decode())}]")

    def __call__(self, value: str) -> str:
        if not self._untouched.search(value):
            return value  # nothing to escape, no escape to look at: the common case
        data = value.encode("utf8", errors="ignore")
        out = bytearray()
        index = 0
        while index < len(data):
            byte = data[index]
            index += 1
            if byte == 0x25:  # "%"
                index = self._escape(data, index, out)
            elif self._query and byte == 0x20:
                out.append(0x2B)  # "+"
            elif byte in self._plain:
                out.append(byte)
            else:
                out += b"%%%02X" % byte
        return out.decode("ascii")

    def _escape(self, data: bytes, index: int, out: bytearray) -> int:
        """Writes the escape at data[index - 1]; where the next character starts."""
        hexed = data[index : index + 2].upper()
        if len(hexed) < 2 or not all(c in b"0123456789ABCDEF" for c in hexed):
            out += b"%25"  # a lone "%": escaped itself
            return index
        byte = int(hexed, 16)
        if byte in self._decoded:
            out.append(byte)
        else:
            out += b"%" + hexed
        return index + 2


_PATH = _Requoter(safe="@:", protected="/+", query=False)
_QUERY = _Requoter(safe="?/:@", protected="=+&;", query=True)


def request_target(path_and_query: str) -> str:
    """The target aiohttp sends for a URL whose part after the host is `path_and_query`.

    `path_and_query` starts with "/" (the kubeconfig server's own path, then the API path).
    """
    text = _REMOVED.sub("", path_and_query.lstrip(_LEADING))
    text = text.split("#", 1)[0]  # a fragment is never sent
    path, _, query = text.partition("?")
    path = _PATH(path)
    if "." in path:
        path = _resolved(path)
    path = path or "/"
    query = _QUERY(query) if query else ""
    return f"{path}?{query}" if query else path


def _resolved(path: str) -> str:
    """The path with its "." and ".." segments resolved, as yarl's normalize_path does."""
    root = "/" if path.startswith("/") else ""
    segments = path[len(root) :].split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # a trailing "." or ".." leaves the path ending in "/"
    return root + "/".join(kept)
