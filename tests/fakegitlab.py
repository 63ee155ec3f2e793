"""A fake GitLab REST API (v4), in process: it records every request and checks each one
against GitLab's own REST description (tests/openapi/gitlab-openapi-v2-subset.yaml, an
excerpt of GitLab's OpenAPI v2 document) where that covers the endpoint, and against
python-gitlab's request shapes (its managers' paths, create/update attributes and list
filters) where it does not. A request neither allows is a test failure.

It keeps just enough state to answer as GitLab does, including some of its refusals as
data: a commit status cannot move to the state it is in, a non-member is a 404.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

import yaml
from aiohttp import web
from gitlab.base import RESTManager
from gitlab.mixins import (
    CreateMixin,
    DeleteMixin,
    GetMixin,
    GetWithoutIdMixin,
    ListMixin,
    UpdateMixin,
)
from gitlab.types import RequiredOptional
from gitlab.v4.objects import (
    CurrentUserManager,
    ProjectMergeRequestApprovalManager,
    ProjectMergeRequestNoteManager,
    UserManager,
)
from jsonschema import Draft4Validator

API = "/api/v4"
DESCRIPTION = Path(__file__).parent / "openapi" / "gitlab-openapi-v2-subset.yaml"
_PAGINATION = frozenset({"page", "per_page"})
Handler = Callable[["FakeGitLab", "Call"], Any]


def _pattern(template: str) -> re.Pattern[str]:
    """A path template (`{name}` segments) as a regex over the raw, still-encoded path."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


class SwaggerDescription:
    """GitLab's OpenAPI v2 (Swagger) excerpt: finds an operation and lists what is wrong."""

    def __init__(self, path: Path = DESCRIPTION) -> None:
        self.document: dict[str, Any] = yaml.safe_load(path.read_text())
        self._routes = sorted(
            ((_pattern(t), t) for t in self.document["paths"]), key=lambda r: r[1].count("{")
        )

    def operation(self, method: str, raw_path: str) -> tuple[str, dict[str, str]] | None:
        for pattern, template in self._routes:
            found = pattern.match(raw_path)
            if found and method.lower() in self.document["paths"][template]:
                return template, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def problems(
        self, method: str, raw_path: str, query: Mapping[str, str], body: bytes
    ) -> list[str]:
        template, path_values = self.operation(method, raw_path) or ("", {})
        spec = self.document["paths"][template][method.lower()]
        errors: list[str] = []
        declared = {p["name"]: p for p in spec.get("parameters", []) if p["in"] != "body"}
        errors += [f"query parameter {n!r} is not described" for n in query if n not in declared]
        for name, parameter in declared.items():
            values = path_values if parameter["in"] == "path" else query
            if name not in values:
                if parameter.get("required"):
                    errors.append(f"required {parameter['in']} parameter {name!r} is missing")
                continue
            errors += _value_problems(name, values[name], parameter)
        body_spec = next((p for p in spec.get("parameters", []) if p["in"] == "body"), None)
        errors += self._body_problems(body_spec, body)
        return [f"{method} {template}: {e}" for e in errors]

    def _body_problems(self, body_spec: dict[str, Any] | None, body: bytes) -> list[str]:
        if body_spec is None:
            return ["this operation takes no request body"] if body else []
        if not body:
            return ["the request body is required"] if body_spec.get("required") else []
        try:
            data = json.loads(body)
        except ValueError:
            return ["the request body is not JSON"]
        schema = {**body_spec["schema"], "definitions": self.document["definitions"]}
        errors = [
            f"body: {'/'.join(map(str, e.absolute_path)) or '(value)'}: {e.message}"
            for e in Draft4Validator(schema).iter_errors(data)
        ]
        reference = body_spec["schema"]["$ref"].rsplit("/", 1)[-1]
        known = self.document["definitions"][reference].get("properties", {})
        extra = sorted(set(data) - set(known)) if isinstance(data, dict) else []
        return errors + [f"body: property {name!r} is not described" for name in extra]


def _value_problems(name: str, text: str, parameter: Mapping[str, Any]) -> list[str]:
    kind = parameter.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", text):
        return [f"parameter {name!r}: {text!r} is not an integer"]
    if kind == "boolean" and text not in ("true", "false"):
        return [f"parameter {name!r}: {text!r} is not a boolean"]
    if "enum" in parameter and text not in parameter["enum"]:
        return [f"parameter {name!r}: {text!r} is not one of {parameter['enum']}"]
    return []


@dataclass(frozen=True)
class Shape:
    """One request python-gitlab can make through a manager: where, with what."""

    method: str
    template: str
    query: frozenset[str] = frozenset()
    attributes: RequiredOptional | None = None  # the JSON body's keys, when it has one

    def problems(self, query: Mapping[str, str], body: bytes) -> list[str]:
        errors = [
            f"query parameter {n!r} is not a list filter" for n in query if n not in self.query
        ]
        if self.attributes is None:
            return errors + (["python-gitlab sends no body here"] if body else [])
        data = json.loads(body) if body else {}
        allowed = {*self.attributes.required, *self.attributes.optional}
        errors += [f"body: {k!r} is not an attribute" for k in data if k not in allowed]
        errors += [f"body: {k!r} is required" for k in self.attributes.required if k not in data]
        return [f"{self.method} {self.template}: {e}" for e in errors]


def python_gitlab_shapes(manager: type[RESTManager[Any]]) -> Iterator[Shape]:
    """The requests a python-gitlab manager class makes, read from its own declarations."""
    assert manager._path is not None
    collection = API + manager._path.replace("{mr_iid}", "{merge_request_iid}")
    item = collection + "/{item_id}"
    if issubclass(manager, ListMixin):
        yield Shape("GET", collection, _PAGINATION | set(manager._list_filters))
    if issubclass(manager, GetWithoutIdMixin):
        yield Shape("GET", collection)
    if issubclass(manager, GetMixin):
        yield Shape("GET", item)
    if issubclass(manager, CreateMixin):
        yield Shape("POST", collection, attributes=manager._create_attrs)
    if issubclass(manager, UpdateMixin) and not issubclass(manager, GetWithoutIdMixin):
        yield Shape("PUT", item, attributes=manager._update_attrs)
    if issubclass(manager, DeleteMixin):
        yield Shape("DELETE", item)


PYTHON_GITLAB_MANAGERS = (
    ProjectMergeRequestNoteManager,
    ProjectMergeRequestApprovalManager,
    CurrentUserManager,
    UserManager,
)
SHAPES = [shape for m in PYTHON_GITLAB_MANAGERS for shape in python_gitlab_shapes(m)]


@dataclass(frozen=True)
class Call:
    """One request the bot made (paths without the /api/v4 prefix, values decoded)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    token: str
    params: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    message: str
    times: int


@dataclass
class FakeGitLab:
    token: str
    project_path: str = "platform/shop-deploy"
    project_id: int = 42
    bot_username: str = "gitops-bot"
    bot_id: int = 1
    description: SwaggerDescription = field(default_factory=SwaggerDescription)
    calls: list[Call] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)  # username -> id
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    merge_requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[int, list[str]] = field(default_factory=dict)  # iid -> usernames
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5001))

    # --- set-up by tests ---------------------------------------------------------------

    def fail(
        self, method: str, path: str, status: int, message: str = "error", times: int = 1
    ) -> None:
        self.faults.append(Fault(method, re.compile(path), status, message, times))

    def add_user(self, username: str, access_level: int | None = None) -> int:
        user_id = self.users.setdefault(username, next(self._ids))
        if access_level is not None:
            self.members[user_id] = access_level
        return user_id

    def add_note(self, iid: int, body: str, username: str, system: bool = False) -> int:
        note_id = next(self._ids)
        author = {"id": self.users.get(username, 0), "username": username, "name": username}
        self.notes[note_id] = {
            "id": note_id,
            "noteable_iid": iid,
            "noteable_type": "MergeRequest",
            "body": body,
            "author": author,
            "system": system,
        }
        return note_id

    def notes_on(self, iid: int) -> list[dict[str, Any]]:
        return [n for n in self.notes.values() if n["noteable_iid"] == iid]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and re.search(pattern, c.path)]

    # --- the server ----------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        raw_path = request.raw_path.split("?", 1)[0]
        query = {key: request.query[key] for key in request.query}
        if not raw_path.startswith(API + "/"):
            self.violations.append(f"{request.method} {raw_path}: not under {API}/")
            return _json({"message": "404 Not Found"}, 404)
        template, params, problems = self._check(request.method, raw_path, query, body)
        call = Call(
            request.method,
            unquote(raw_path).removeprefix(API),
            query,
            json.loads(body) if body else None,
            request.headers.get("PRIVATE-TOKEN", ""),
            params,
        )
        self.calls.append(call)
        if problems:
            self.violations.extend(problems)
            return _json({"error": "; ".join(problems)}, 400)
        if call.token != self.token:
            return _json({"message": "401 Unauthorized"}, 401)
        project = params.get("id") or params.get("project_id")
        if project is not None and project not in (self.project_path, str(self.project_id)):
            return _json({"message": "404 Project Not Found"}, 404)
        fault = next(
            (
                f
                for f in self.faults
                if f.times and f.method == call.method and f.path.search(call.path)
            ),
            None,
        )
        if fault is not None:
            fault.times -= 1
            return _json({"message": fault.message}, fault.status)
        handler = _HANDLERS.get((request.method, template))
        if handler is None:
            self.violations.append(f"the fake has no answer for {request.method} {template}")
            return _json({"message": "404 Not Found"}, 404)
        result = handler(self, call)
        status, data = result if isinstance(result, tuple) else (200, result)
        return self._paginated(request, data) if isinstance(data, list) else _json(data, status)

    def _check(
        self, method: str, raw_path: str, query: dict[str, str], body: bytes
    ) -> tuple[str, dict[str, str], list[str]]:
        """Which description covers the request, and what it says is wrong with it."""
        found = self.description.operation(method, raw_path)
        if found is not None:
            template, params = found
            return template, params, self.description.problems(method, raw_path, query, body)
        for shape in SHAPES:
            matched = _pattern(shape.template).match(raw_path)
            if shape.method == method and matched:
                params = {k: unquote(v) for k, v in matched.groupdict().items()}
                return shape.template, params, shape.problems(query, body)
        return (
            "",
            {},
            [f"{method} {raw_path}: neither GitLab's description nor python-gitlab has it"],
        )

    def _paginated(self, request: web.Request, items: list[Any]) -> web.Response:
        page = int(request.query.get("page", "1"))
        per_page = int(request.query.get("per_page", "20"))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(items))}
        if page * per_page < len(items):
            headers["X-Next-Page"] = str(page + 1)
            next_query = {**request.query, "page": str(page + 1)}
            raw_path = request.raw_path.split("?", 1)[0]  # the project path stays encoded
            next_url = f"{request.scheme}://{request.host}{raw_path}?{urlencode(next_query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return web.json_response(chunk, headers=headers)

    # --- answers, keyed by operation ----------------------------------------------------

    def _current_user(self, call: Call) -> dict[str, Any]:
        return {"id": self.bot_id, "username": self.bot_username, "name": "gitops-bot", "bot": True}

    def _users(self, call: Call) -> list[dict[str, Any]]:
        name = call.query.get("username")
        return [
            {"id": i, "username": u, "state": "active"} for u, i in self.users.items() if u == name
        ]

    def _member(self, call: Call) -> tuple[int, dict[str, Any]]:
        user_id = int(call.params["user_id"])
        if user_id not in self.members:
            return 404, {"message": "404 Not found"}
        name = next(u for u, i in self.users.items() if i == user_id)
        return 200, {
            "id": user_id,
            "username": name,
            "access_level": self.members[user_id],
            "state": "active",
        }

    def _merge_request(self, call: Call) -> tuple[int, Any]:
        mr = self.merge_requests.get(int(call.params["merge_request_iid"]))
        return (200, mr) if mr else (404, {"message": "404 Not found"})

    def _commit_merge_requests(self, call: Call) -> list[dict[str, Any]]:
        sha = call.params["sha"]
        keys = ("sha", "merge_commit_sha", "squash_commit_sha")
        found = [mr for mr in self.merge_requests.values() if sha in (mr.get(k) for k in keys)]
        return [{k: v for k, v in mr.items() if k != "diff_refs"} for mr in found]

    def _approvals(self, call: Call) -> tuple[int, Any]:
        iid = int(call.params["merge_request_iid"])
        if iid not in self.merge_requests:
            return 404, {"message": "404 Not found"}
        approved = [
            {"user": {"id": self.users.get(u, 0), "username": u}}
            for u in self.approvals.get(iid, [])
        ]
        return 200, {"iid": iid, "approved": bool(approved), "approved_by": approved}

    def _list_notes(self, call: Call) -> list[dict[str, Any]]:
        iid = int(call.params["merge_request_iid"])
        newest_first = sorted(self.notes_on(iid), key=lambda n: -n["id"])  # GitLab's default
        return [_public(n) for n in newest_first]

    def _create_note(self, call: Call) -> tuple[int, dict[str, Any]]:
        iid = int(call.params["merge_request_iid"])
        note_id = self.add_note(iid, call.body["body"], self.bot_username)
        return 201, _public(self.notes[note_id])

    def _update_note(self, call: Call) -> tuple[int, dict[str, Any]]:
        note = self.notes.get(int(call.params["item_id"]))
        if note is None:
            return 404, {"message": "404 Note Not Found"}
        if note["author"]["username"] != self.bot_username:
            self.violations.append(f"the bot edited someone else's note: {call}")
        note["body"] = call.body["body"]
        return 200, _public(note)

    def _delete_note(self, call: Call) -> tuple[int, None]:
        self.notes.pop(int(call.params["item_id"]), None)
        return 204, None

    def _create_status(self, call: Call) -> tuple[int, dict[str, Any]]:
        """GitLab moves the open (pending or running) status of that name, or opens one."""
        sha, state = call.params["sha"], call.body["state"]
        name = call.body.get("name") or call.body.get("context") or "default"
        if "ref" not in call.body and sha in self._fork_heads():
            # GitLab looks for a branch holding the commit; a fork's commit is on none here.
            return 404, {"message": "404 References for commit Not Found"}
        open_status = next(
            (
                s
                for s in self.statuses
                if (s["sha"], s["name"]) == (sha, name) and s["status"] in ("pending", "running")
            ),
            None,
        )
        if open_status is not None and open_status["status"] == state:
            verb = {"pending": "enqueue", "running": "run"}[state]
            return 400, {"message": f"Cannot transition status via :{verb} from :{state}"}
        if open_status is None:
            open_status = {"id": next(self._ids), "sha": sha, "name": name, "history": []}
            self.statuses.append(open_status)
        open_status.update(
            status=state, description=call.body.get("description"), ref=call.body.get("ref")
        )
        open_status["history"].append(state)
        return 201, {k: v for k, v in open_status.items() if k != "history"}

    def _fork_heads(self) -> set[str]:
        return {
            str(mr["sha"])
            for mr in self.merge_requests.values()
            if mr["source_project_id"] != mr["target_project_id"]
        }

    def _list_deployments(self, call: Call) -> list[dict[str, Any]]:
        environment = call.query.get("environment")
        found = [
            d for d in self.deployments.values() if environment in (None, d["environment"]["name"])
        ]
        return sorted(
            found, key=lambda d: -d["id"] if call.query.get("sort") == "desc" else d["id"]
        )

    def _create_deployment(self, call: Call) -> tuple[int, dict[str, Any]]:
        deployment_id = next(self._ids)
        body = call.body
        self.deployments[deployment_id] = {
            "id": deployment_id,
            "iid": len(self.deployments) + 1,
            "sha": body["sha"],
            "ref": body["ref"],
            "status": body["status"],
            "environment": {
                "id": _environment_id(body["environment"]),
                "name": body["environment"],
            },
            "history": [body["status"]],
        }
        return 201, self.deployments[deployment_id]

    def _update_deployment(self, call: Call) -> tuple[int, dict[str, Any]]:
        deployment = self.deployments.get(int(call.params["deployment_id"]))
        if deployment is None:
            return 404, {"message": "404 Not found"}
        deployment["status"] = call.body["status"]
        deployment["history"].append(call.body["status"])
        return 200, deployment


def _environment_id(name: str) -> int:
    return sum(map(ord, name))


def _public(note: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in note.items() if k != "noteable_iid"}


_NOTES = API + "/projects/{project_id}/merge_requests/{merge_request_iid}/notes"
_HANDLERS: dict[tuple[str, str], Handler] = {
    ("GET", API + "/user"): FakeGitLab._current_user,
    ("GET", API + "/users"): FakeGitLab._users,
    ("GET", API + "/projects/{id}/members/all/{user_id}"): FakeGitLab._member,
    ("GET", API + "/projects/{id}/merge_requests/{merge_request_iid}"): FakeGitLab._merge_request,
    (
        "GET",
        API + "/projects/{id}/repository/commits/{sha}/merge_requests",
    ): FakeGitLab._commit_merge_requests,
    (
        "GET",
        API + "/projects/{project_id}/merge_requests/{merge_request_iid}/approvals",
    ): FakeGitLab._approvals,
    ("GET", _NOTES): FakeGitLab._list_notes,
    ("POST", _NOTES): FakeGitLab._create_note,
    ("PUT", _NOTES + "/{item_id}"): FakeGitLab._update_note,
    ("DELETE", _NOTES + "/{item_id}"): FakeGitLab._delete_note,
    ("POST", API + "/projects/{id}/statuses/{sha}"): FakeGitLab._create_status,
    ("GET", API + "/projects/{id}/deployments"): FakeGitLab._list_deployments,
    ("POST", API + "/projects/{id}/deployments"): FakeGitLab._create_deployment,
    ("PUT", API + "/projects/{id}/deployments/{deployment_id}"): FakeGitLab._update_deployment,
}


def _json(data: Any, status: int) -> web.Response:
    if data is None:
        return web.Response(status=status)
    return web.json_response(data, status=status)
