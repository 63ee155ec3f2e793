"""Conditional GETs on GitLab: each URL's ETag and answer remembered, a 304 answered from
memory. Only the requests catch-up repeats every interval go through here (branch heads,
the project listing).

The memory is per process, like GitHub's (bot/forges/github/forge.py says why). GitLab
answers `If-None-Match` with 304 Not Modified on its REST API, but unlike GitHub it does
not document that such an answer is exempt from its rate limits: there a conditional
request saves GitLab the work and the transfer, not necessarily a request of the quota.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import gitlab

NOT_MODIFIED = 304


@dataclass(frozen=True)
class Remembered:
    etag: str
    data: Any
    next_page: str | None  # GitLab's X-Next-Page of that answer


class ConditionalReads:
    """The ETags and answers of conditional GETs, shared by every worker thread."""

    def __init__(self) -> None:
        self._known: dict[str, Remembered] = {}
        self._lock = threading.Lock()

    def read(self, gl: gitlab.Gitlab, path: str, query: dict[str, str]) -> tuple[Any, str | None]:
        """GET `path` (under /api/v4); the remembered answer when GitLab says 304."""
        key = f"{path}?{urlencode(sorted(query.items()))}"
        with self._lock:
            known = self._known.get(key)
        headers = {"If-None-Match": known.etag} if known else {}
        try:
            response = gl.http_request("get", path, query_data=query, extra_headers=headers)
        except gitlab.exceptions.GitlabHttpError as exc:
            if exc.response_code == NOT_MODIFIED and known is not None:
                return known.data, known.next_page
            raise
        data, next_page = response.json(), response.headers.get("X-Next-Page") or None
        etag = response.headers.get("ETag")
        if etag:
            with self._lock:
                self._known[key] = Remembered(etag, data, next_page)
        return data, next_page
