"""The Cluster port over the API server's REST API (transports: http11, or `kubernetes.aio`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from bot.clusters.errors import (
    AdmissionFailed,
    ClusterError,
    ClusterUnreachable,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    ServerError,
    Unauthorized,
    UnknownKind,
)
from bot.clusters.ports import Resource
from bot.clusters.transports import ApiRequest, RequestFailed, Transport
from bot.config.clusters import ClusterSettings
from bot.core.manifests import ObjectKey
from bot.core.rollouts import FIELD_MANAGER

APPLY_PATCH = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
_UNAVAILABLE = (502, 503, 504)
_AHEAD = 8  # connections opened ahead: a plan's first burst of requests, no more
_PAGE = 500  # objects per list request: bounds one answer's size on big clusters
_ADMISSION_WORDS = ("admission webhook", "ValidatingAdmissionPolicy", "failed calling webhook")


class KubernetesCluster:
    """One cluster through one transport; requests are bounded by the cluster's concurrency."""

    def __init__(self, settings: ClusterSettings, transport: Transport) -> None:
        self.name = settings.name
        self._transport = transport
        self._concurrency = settings.concurrency
        self._limit = asyncio.Semaphore(settings.concurrency)
        self._timeout = settings.timeout_seconds  # the whole request, connecting included
        self._served: dict[str, dict[str, Resource]] = {}  # apiVersion -> kind -> resource
        self._discovering: dict[str, asyncio.Lock] = {}

    async def open_ahead(self) -> None:
        """As many connections open as requests may run at once (at most 8), for a command
        whose first requests all start together: their TLS handshakes are paid now."""
        await self._transport.open_ahead(min(self._concurrency, _AHEAD))

    async def close(self) -> None:
        await self._transport.close()

    async def resource(self, api_version: str, kind: str) -> Resource | None:
        known = self._served.get(api_version, {})
        if kind in known:
            return known[kind]
        # One discovery per group version, however many objects ask for it at once.
        async with self._discovering.setdefault(api_version, asyncio.Lock()):
            known = self._served.get(api_version, {})
            if kind not in known:  # not cached, or a CRD may have added it since
                known = await self._discover(api_version)
        return known.get(kind)

    async def _discover(self, api_version: str) -> dict[str, Resource]:
        group_path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            listing = await self._request("GET", group_path)
        except NotFound:
            return {}  # the group or version is not served (yet)
        served = {
            item["kind"]: Resource(api_version, item["kind"], item["name"], item["namespaced"])
            for item in (listing or {}).get("resources", [])
            if "/" not in item.get("name", "/")  # subresources such as deployments/scale
        }
        self._served[api_version] = served
        return served

    async def read(self, api_version: str, key: ObjectKey) -> dict[str, Any] | None:
        try:
            path = await self._path(api_version, key.kind, key.namespace, key.name)
            return await self._request("GET", path)
        except NotFound:
            return None

    async def list_labelled(
        self, api_version: str, kind: str, namespace: str, selector: str
    ) -> list[dict[str, Any]]:
        collection = await self._collection(api_version, kind, namespace)
        items: list[dict[str, Any]] = []
        page = ""
        while True:
            query = [("labelSelector", selector), ("limit", str(_PAGE))]
            if page:
                query.append(("continue", page))
            answer = await self._request("GET", collection, query) or {}
            # A list's items carry no apiVersion and kind; a read's object does.
            found = answer.get("items") or ()
            items += ({"kind": kind, "apiVersion": api_version, **o} for o in found)
            page = (answer.get("metadata") or {}).get("continue") or ""
            if not page:
                return items

    async def apply(
        self,
        body: Mapping[str, Any],
        *,
        dry_run: bool,
        force: bool = False,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        metadata = body.get("metadata") or {}
        path = await self._path(
            str(body.get("apiVersion")),
            str(body.get("kind")),
            str(metadata.get("namespace") or ""),
            str(metadata.get("name")),
        )
        query = [("fieldManager", field_manager)]
        if dry_run:
            query.append(("dryRun", "All"))
        if force:
            query.append(("force", "true"))
        result = await self._request("PATCH", path, query, dict(body), APPLY_PATCH)
        if result is None:
            raise ClusterError(f"the API server answered an apply to {path} with no object")
        return result

    async def delete(self, api_version: str, key: ObjectKey) -> bool:
        path = await self._path(api_version, key.kind, key.namespace, key.name)
        try:
            await self._request("DELETE", path, [("propagationPolicy", "Background")])
        except NotFound:
            return False
        return True

    async def _path(self, api_version: str, kind: str, namespace: str, name: str) -> str:
        collection = await self._collection(api_version, kind, namespace)
        return f"{collection}/{quote(name, safe='')}"

    async def _collection(self, api_version: str, kind: str, namespace: str) -> str:
        """The path of a kind's objects: in one namespace, or in all when namespace is ''."""
        resource = await self.resource(api_version, kind)
        if resource is None:
            raise UnknownKind(
                f"the cluster serves no {kind} in {api_version}: its CRD is not installed, "
                "or the apiVersion is wrong"
            )
        root = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        scoped = resource.namespaced and namespace
        where = f"/namespaces/{quote(namespace, safe='')}" if scoped else ""
        return f"{root}{where}/{resource.plural}"

    async def _request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]] = (),
        body: dict[str, Any] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        async with self._limit:
            try:
                request = ApiRequest(method, path, query, headers, body)
                status, data = await self._transport.send(request, self._timeout)
            except (RequestFailed, OSError, TimeoutError) as exc:
                raise ClusterUnreachable(
                    f"cluster {self.name!r} is unreachable at "
                    f"{self._transport.host}: {exc or type(exc).__name__}"
                ) from exc
        payload = _json(data)
        if 200 <= status < 300:
            return payload
        raise error_for(status, payload, self.name)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data) if data else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def error_for(status: int, payload: Mapping[str, Any] | None, cluster: str) -> ClusterError:
    """The exception for an API server error answer, carrying the server's own message."""
    message = str((payload or {}).get("message") or f"HTTP {status} from the API server")
    if any(word in message for word in _ADMISSION_WORDS):
        return AdmissionFailed(
            message,
            unavailable="failed calling webhook" in message,
            no_dry_run="does not support dry run" in message,
        )
    if status == 401:
        return Unauthorized(
            f"cluster {cluster!r} rejected the bot's credentials (401 Unauthorized): they are "
            "wrong or expired; fix the kubeconfig named in the server settings"
        )
    if status in _UNAVAILABLE:
        return ClusterUnreachable(f"cluster {cluster!r} is unavailable ({status}): {message}")
    simple: dict[int, type[ClusterError]] = {403: Forbidden, 404: NotFound, 400: Invalid}
    if status in simple:
        return simple[status](message)
    if status == 409:
        return Conflict(message, _conflict_owners(payload))
    if status == 422:
        return Invalid(message)
    return ServerError(f"{message} (HTTP {status})")


def _conflict_owners(payload: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The conflicting managers and fields, sorted: the API server lists the causes of the
    same conflict in varying order, and what the bot writes must not change with it."""
    causes = ((payload or {}).get("details") or {}).get("causes") or []
    return tuple(
        sorted(
            {
                f"{cause.get('message', 'conflict')}: {cause.get('field', '?')}"
                for cause in causes
                if isinstance(cause, Mapping) and cause.get("reason") == "FieldManagerConflict"
            }
        )
    )
