"""A fake GitLab REST API (v4), in process: it records every request and checks each one
against GitLab's own REST description (tests/openapi/gitlab-openapi-v2-subset.yaml, an
excerpt of GitLab's OpenAPI v2 document) where that covers the endpoint, and against
python-gitlab's request shapes (its managers' paths, create/update attributes and list
filters) where it does not. A request neither allows is a test failure.

It keeps just enough state to answer as GitLab does, including some of its refusals as
data: a commit status cannot move to the state it is in, a non-member is a 404. Where
GitLab's description is known to be wrong, ERRATA corrects it, as data with its reason.
Recording and faults are tests/helpers/fakeforge.py's, shared with the fake GitHub.
"""

from __future__ import annotations

import base64
import inspect
import itertools
import json
import re
from collections.abc import Iterator, Mapping
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
    ProjectBranchManager,
    ProjectCommitManager,
    ProjectCommitStatusManager,
    ProjectFileManager,
    ProjectIssueNoteManager,
    ProjectManager,
    ProjectMergeRequestApprovalManager,
    ProjectMergeRequestManager,
    ProjectMergeRequestNoteManager,
    UserManager,
)
from jsonschema import Draft4Validator

from helpers.fakeforge import (
    Call,
    FakeForge,
    Handler,
    git_has_file,
    git_head,
    json_response,
    single_values,
)
from helpers.fakegit import ForgeGit, GitRefused
from helpers.testmerges import make_merge_ref

API = "/api/v4"
DESCRIPTION = Path(__file__).parents[1] / "openapi" / "gitlab-openapi-v2-subset.yaml"
_PAGINATION = frozenset({"page", "per_page"})
_BRANCH = API + "/projects/{id}/repository/branches/{branch}"

# (method, path template, parameter) -> (what the description wrongly says, the fix, why)
ERRATA: dict[tuple[str, str, str], tuple[dict[str, Any], dict[str, Any], str]] = {
    ("get", _BRANCH, "branch"): (
        {"type": "integer", "format": "int32"},
        {"type": "string"},
        "GitLab takes the branch's name here; HEAD and DELETE on the same path say string",
    ),
}

_COMMIT_ACTION = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["create", "delete", "move", "update"]},
        "file_path": {"type": "string"},
        "previous_path": {"type": "string"},
        "content": {"type": "string"},
        "encoding": {"type": "string", "enum": ["text", "base64"]},
        "last_commit_id": {"type": "string"},
    },
    "required": ["action", "file_path"],
    "additionalProperties": False,
}
# definition -> (what the description wrongly says, the fix, why); the fix is the request
# GitLab's commits API documentation (doc/api/commits.md) describes, written as a schema
DEFINITION_ERRATA: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "postApiV4ProjectsIdRepositoryCommits": (
        {"required": ["file"]},
        {
            "type": "object",
            "properties": {
                "branch": {"type": "string"},
                "commit_message": {"type": "string"},
                "start_branch": {"type": "string"},
                "actions": {"type": "array", "items": _COMMIT_ACTION},
                "author_email": {"type": "string"},
                "author_name": {"type": "string"},
            },
            "required": ["branch", "commit_message", "actions"],
        },
        "the generator describes a multipart upload; the API takes a JSON body of actions",
    ),
}


def _pattern(template: str) -> re.Pattern[str]:
    """A path template (`{name}` segments) as a regex over the raw, still-encoded path."""
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)) + "$")


class SwaggerDescription:
    """GitLab's OpenAPI v2 (Swagger) excerpt: finds an operation and lists what is wrong."""

    def __init__(self, path: Path = DESCRIPTION) -> None:
        self.document: dict[str, Any] = _corrected(yaml.safe_load(path.read_text()))
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


def _corrected(document: dict[str, Any]) -> dict[str, Any]:
    """The description with ERRATA and DEFINITION_ERRATA applied; an erratum whose error is
    gone is refused, so that none outlives the mistake it corrects."""
    for (method, template, name), (wrong, right, why) in ERRATA.items():
        parameters = document["paths"][template][method]["parameters"]
        parameter = next(p for p in parameters if p["name"] == name)
        if any(parameter.get(key) != value for key, value in wrong.items()):
            raise ValueError(f"{method} {template} {name}: no longer {wrong}; drop the erratum")
        for key in wrong:
            del parameter[key]
        parameter.update(right, corrected=why)
    for name, (wrong, right, why) in DEFINITION_ERRATA.items():
        if any(document["definitions"][name].get(k) != v for k, v in wrong.items()):
            raise ValueError(f"definition {name}: no longer {wrong}; drop the erratum")
        document["definitions"][name] = {**right, "corrected": why}
    return document


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
    ProjectManager,
    ProjectMergeRequestNoteManager,
    ProjectIssueNoteManager,
    ProjectCommitStatusManager,
    ProjectMergeRequestApprovalManager,
    CurrentUserManager,
    UserManager,
    ProjectBranchManager,
    ProjectCommitManager,
    ProjectMergeRequestManager,
)
SHAPES = [shape for m in PYTHON_GITLAB_MANAGERS for shape in python_gitlab_shapes(m)]
_COMMIT_ACTIONS = frozenset({"create", "delete", "move", "update", "chmod"})
_FILE = API + ProjectFileManager._path + "/{item_id}"  # type: ignore[operator]


def file_head_shape() -> Shape:
    """HEAD of a repository file: python-gitlab's `files.head(file_path, ref)` sends each
    argument after the path as a query parameter (the manager declares no list filters)."""
    arguments = inspect.signature(ProjectFileManager.head).parameters
    query = {
        n
        for n, p in arguments.items()
        if n not in ("self", "file_path") and p.kind == p.POSITIONAL_OR_KEYWORD
    }
    return Shape("HEAD", _FILE, frozenset(query))


SHAPES.append(file_head_shape())


@dataclass
class FakeGitLab(FakeForge):
    token: str
    project_path: str = "platform/shop-deploy"
    project_id: int = 42
    bot_username: str = "gitops-bot"
    bot_id: int = 1
    description: SwaggerDescription = field(default_factory=SwaggerDescription)
    users: dict[str, int] = field(default_factory=dict)  # username -> id
    members: dict[int, int] = field(default_factory=dict)  # user id -> access level
    merge_requests: dict[int, dict[str, Any]] = field(default_factory=dict)
    approvals: dict[int, list[str]] = field(default_factory=dict)  # iid -> usernames
    notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # iid -> issue
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head commit
    statuses: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    git: ForgeGit | None = None  # the origin repository: commits and merges are made there
    opened: list[int] = field(default_factory=list)  # merge requests the bot opened, in order
    # Projects the token's user is a member of, by path; a real git repository behind one
    # answers its branches and files from git.
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, Path] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(5001))

    # --- set-up by tests ---------------------------------------------------------------

    def add_user(self, username: str, access_level: int | None = None) -> int:
        user_id = self.users.setdefault(username, next(self._ids))
        if access_level is not None:
            self.members[user_id] = access_level
        return user_id

    def add_note(
        self,
        iid: int,
        body: str,
        username: str,
        system: bool = False,
        noteable_type: str = "MergeRequest",
    ) -> int:
        note_id = next(self._ids)
        self.notes[note_id] = {
            "id": note_id,
            "noteable_iid": iid,
            "noteable_type": noteable_type,
            "body": body,
            "author": self._user(username),
            "system": system,
        }
        return note_id

    def notes_on(self, iid: int, noteable_type: str = "MergeRequest") -> list[dict[str, Any]]:
        """Oldest first; GitLab numbers issues and merge requests separately."""
        return [
            n
            for n in self.notes.values()
            if (n["noteable_iid"], n["noteable_type"]) == (iid, noteable_type)
        ]

    def add_issue(self, title: str, description: str, username: str) -> int:
        iid = max([0, *self.issues]) + 1
        self.issues[iid] = {
            "id": next(self._ids),
            "iid": iid,
            "project_id": self.project_id,
            "title": title,
            "description": description,
            "state": "opened",
            "author": self._user(username),
            "web_url": f"https://gitlab.example.com/{self.project_path}/-/issues/{iid}",
        }
        return iid

    def comments_on_issue(self, iid: int) -> list[dict[str, Any]]:
        """What people (and the bot) wrote on an issue: its notes less GitLab's own."""
        return [n for n in self.notes_on(iid, "Issue") if not n["system"]]

    def _user(self, username: str) -> dict[str, Any]:
        return {"id": self.users.get(username, 0), "username": username, "name": username}

    # --- the server ----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        raw_path = request.raw_path.split("?", 1)[0]
        query = single_values(request.query)
        if self._outside(request, raw_path, API):
            return json_response({"message": "404 Not Found"}, 404)
        template, params, problems = self._check(request.method, raw_path, query, body)
        call = Call(
            request.method,
            unquote(raw_path).removeprefix(API),
            query,
            json.loads(body) if body else None,
            request.headers.get("PRIVATE-TOKEN", ""),
            params,
            request.headers.get("If-None-Match", ""),
        )
        self.calls.append(call)
        if problems:
            self.violations.extend(problems)
            return json_response({"error": "; ".join(problems)}, 400)
        if call.credential != self.token:
            return json_response({"message": "401 Unauthorized"}, 401)
        project = params.get("id") or params.get("project_id")
        if project is not None and project not in self._known_projects():
            return json_response({"message": "404 Project Not Found"}, 404)
        fault = self._fault(call)
        if fault is not None:
            return json_response({"message": fault.message}, fault.status, fault.headers)
        status, data = self._dispatch(_HANDLERS, template, call)
        if isinstance(data, list):
            return self._paginated(request, call, data)
        return self.conditional(call, data, status)

    def _known_projects(self) -> set[str]:
        listed = {str(p["id"]) for p in self.projects.values()}
        return {self.project_path, str(self.project_id), *self.projects, *listed}

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

    def _paginated(self, request: web.Request, call: Call, items: list[Any]) -> web.Response:
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
        return self.conditional(call, chunk, 200, headers)

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
        if mr is None:
            return 404, {"message": "404 Not found"}
        answer = {k: v for k, v in mr.items() if not k.startswith("_")}
        self._check_mergeability(mr)
        return 200, answer

    def _check_mergeability(self, mr: dict[str, Any]) -> None:
        """What GitLab does on a read of an open merge request it has not checked for its
        current head and target branch: `checking` in this answer, the merge made (by git,
        at refs/merge-requests/N/merge) in the background, shown from the next read on."""
        target = self.branches.get(mr.get("target_branch", "main"), mr["diff_refs"]["base_sha"])
        wanted = (target, mr["sha"])
        if self.origin is None or mr["state"] != "opened" or mr.get("_checked") == wanted:
            return
        ref = f"refs/merge-requests/{mr['iid']}/merge"
        conflict = make_merge_ref(self.origin, ref, *wanted) is None
        mr.update(
            _checked=wanted,
            has_conflicts=conflict,
            merge_status="cannot_be_merged" if conflict else "can_be_merged",
            detailed_merge_status="conflict" if conflict else "mergeable",
        )

    def checking(self, iid: int) -> None:
        """The merge request as GitLab has it right after a push: not checked yet."""
        self.merge_requests[iid].update(
            _checked=None,
            has_conflicts=False,
            merge_status="checking",
            detailed_merge_status="checking",
        )

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
        newest_first = sorted(self.notes_on(*_noteable(call)), key=lambda n: -n["id"])
        return [_public(n) for n in newest_first]  # GitLab's default order

    def _create_note(self, call: Call) -> tuple[int, dict[str, Any]]:
        iid, noteable_type = _noteable(call)
        note_id = self.add_note(iid, call.body["body"], self.bot_username, False, noteable_type)
        return 201, _public(self.notes[note_id])

    def _update_note(self, call: Call) -> tuple[int, dict[str, Any]]:
        note = self._note(call)
        if note is None:
            return 404, {"message": "404 Note Not Found"}
        if note["author"]["username"] != self.bot_username:
            self.violations.append(f"the bot edited someone else's note: {call}")
        note["body"] = call.body["body"]
        return 200, _public(note)

    def _delete_note(self, call: Call) -> tuple[int, Any]:
        note = self._note(call)
        if note is None:
            return 404, {"message": "404 Note Not Found"}
        if note["author"]["username"] != self.bot_username:
            self.violations.append(f"the bot deleted someone else's note: {call}")
        del self.notes[note["id"]]
        return 204, None

    def _note(self, call: Call) -> dict[str, Any] | None:
        """The note of the path, only when it is on the issue or merge request named there."""
        note = self.notes.get(int(call.params["item_id"]))
        noteable = _noteable(call)
        return note if note and (note["noteable_iid"], note["noteable_type"]) == noteable else None

    def add_project(self, path: str, origin: Path, default_branch: str = "main") -> None:
        """A project the bot's user is a member of, served from the real git repository."""
        project_id = self.project_id if path == self.project_path else next(self._ids)
        self.origins[path] = origin
        self.projects[path] = {
            "id": project_id,
            "path_with_namespace": path,
            "http_url_to_repo": origin.as_uri(),
            "default_branch": default_branch,
            "archived": False,
        }

    def _origin(self, call: Call) -> Path | None:
        project = call.params.get("id") or call.params.get("project_id") or ""
        by_id = {str(p["id"]): path for path, p in self.projects.items()}
        return self.origins.get(by_id.get(project, project))

    def _list_projects(self, call: Call) -> list[dict[str, Any]]:
        return sorted(self.projects.values(), key=lambda p: int(p["id"]))

    def _file_head(self, call: Call) -> tuple[int, Any]:
        origin = self._origin(call)
        if origin is None or not git_has_file(origin, call.query["ref"], call.params["item_id"]):
            return 404, {"message": "404 File Not Found"}
        return 200, None

    def _branch(self, call: Call) -> tuple[int, dict[str, Any]]:
        name, origin = call.params["branch"], self._origin(call)
        head = git_head(origin, name) if origin is not None else self.branches.get(name)
        if head is None:
            return 404, {"message": "404 Branch Not Found"}
        commit: dict[str, Any] = {"id": head, "short_id": head[:8]}
        if self.git is not None and self.git.ref(head) is not None:  # parents, message: as GitLab
            commit.update(parent_ids=self.git.parents_of(head), message=self.git.message_of(head))
        return 200, {"name": name, "commit": commit, "default": name == "main"}

    def _list_issues(self, call: Call) -> list[dict[str, Any]]:
        """Filtered by state (GitLab's default: all) and author, newest first."""
        state = call.query.get("state", "all")
        author = call.query.get("author_username")
        author_id = call.query.get("author_id")
        return [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: -i["iid"])
            if state in ("all", issue["state"])
            and author in (None, issue["author"]["username"])
            and author_id in (None, str(issue["author"]["id"]))
        ]

    def _create_issue(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body
        iid = self.add_issue(body["title"], body.get("description") or "", self.bot_username)
        return 201, self.issues[iid]

    def _update_issue(self, call: Call) -> tuple[int, dict[str, Any]]:
        """Edits and state events, each leaving the system note GitLab adds for it."""
        issue = self.issues.get(int(call.params["issue_iid"]))
        if issue is None:
            return 404, {"message": "404 Issue Not Found"}
        if issue["author"]["username"] != self.bot_username:
            self.violations.append(f"the bot edited someone else's issue: {call}")
        changes = {
            "title": f"changed title from **{issue['title']}** to **{call.body.get('title')}**",
            "description": "changed the description",
        }
        for key, note in changes.items():
            if key in call.body and call.body[key] != issue[key]:
                issue[key] = call.body[key]
                self._system_note(issue["iid"], note)
        event = call.body.get("state_event")
        state = {"close": "closed", "reopen": "opened"}.get(event or "", issue["state"])
        if state != issue["state"]:
            issue["state"] = state
            self._system_note(issue["iid"], {"closed": "closed", "opened": "reopened"}[state])
        return 200, issue

    def _system_note(self, iid: int, text: str) -> None:
        self.add_note(iid, text, self.bot_username, system=True, noteable_type="Issue")

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

    def _list_statuses(self, call: Call) -> list[dict[str, Any]]:
        sha = call.params["commit_id"]
        return [
            {k: v for k, v in s.items() if k != "history"} for s in self.statuses if s["sha"] == sha
        ]

    def open_statuses(self) -> list[dict[str, Any]]:
        return [s for s in self.statuses if s["status"] in ("pending", "running")]

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

    # --- branches, commits, merge requests and merges, on the real origin repository -----

    def _repo_git(self) -> ForgeGit:
        assert self.git is not None, "this test's fake GitLab has no repository behind it"
        return self.git

    def _head_of(self, branch: str) -> str | None:
        return self.branches.get(branch) or self._repo_git().ref(f"refs/heads/{branch}")

    def _move(self, branch: str, sha: str) -> None:
        self._repo_git().set_ref(f"refs/heads/{branch}", sha)
        self.branches[branch] = sha

    def _create_branch(self, call: Call) -> tuple[int, dict[str, Any]]:
        name, ref = call.body["branch"], call.body["ref"]
        if self._head_of(name) is not None:
            return 400, {"message": "Branch already exists"}
        sha = self._head_of(ref) or self._repo_git().ref(ref)
        if sha is None:
            return 400, {"message": "Invalid reference name"}
        self._move(name, sha)
        return 201, {"name": name, "commit": {"id": sha}, "default": False}

    def _create_commit(self, call: Call) -> tuple[int, dict[str, Any]]:
        """One commit of the actions on the head of `branch`, refused as GitLab refuses."""
        git, branch = self._repo_git(), call.body["branch"]
        parent = self._head_of(branch)
        if parent is None:
            return 400, {"message": "You can only create or edit files when you are on a branch"}
        tree = git.tree_of(parent)
        try:
            entries = [self._commit_entry(parent, a) for a in call.body["actions"]]
            sha = git.commit(git.tree(tree, entries), [parent], call.body["commit_message"])
        except (GitRefused, ValueError) as exc:
            return 400, {"message": str(exc)}
        self._move(branch, sha)
        return 201, {"id": sha, "short_id": sha[:8], "parent_ids": [parent]}

    def _commit_entry(self, parent: str, action: dict[str, Any]) -> tuple[str, str, str | None]:
        verb, path = action.get("action"), action.get("file_path")
        if verb not in _COMMIT_ACTIONS or not isinstance(path, str):
            self.violations.append(f"commit action {action!r}: no valid action and file_path")
            raise ValueError("invalid action")
        exists = self._has_blob(parent, path)
        if verb == "create" and exists:
            raise ValueError("A file with this name already exists")
        if verb in ("update", "delete") and not exists:
            raise ValueError("A file with this name doesn't exist")
        if verb == "delete":
            return path, "100644", None
        content = str(action.get("content") or "")
        raw = base64.b64decode(content) if action.get("encoding") == "base64" else content.encode()
        return path, "100644", self._repo_git().blob(raw)

    def _has_blob(self, commit: str, path: str) -> bool:
        try:
            self._repo_git().run("cat-file", "-e", f"{commit}:{path}")
        except GitRefused:
            return False
        return True

    def _create_merge_request(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body
        head, base = self._head_of(body["source_branch"]), self._head_of(body["target_branch"])
        if head is None or base is None:
            return 400, {"message": "Invalid source or target branch"}
        iid = max([0, *self.merge_requests]) + 1
        self.merge_requests[iid] = {
            "id": 3000 + iid,
            "iid": iid,
            "project_id": self.project_id,
            "source_project_id": self.project_id,
            "target_project_id": self.project_id,
            "source_branch": body["source_branch"],
            "target_branch": body["target_branch"],
            "title": body["title"],
            "description": body.get("description"),
            "state": "opened",
            "sha": head,
            "merge_commit_sha": None,
            "squash_commit_sha": None,
            "web_url": f"https://gitlab.example.com/{self.project_path}/-/merge_requests/{iid}",
            "author": self._user(self.bot_username),
            "diff_refs": {"base_sha": base, "head_sha": head, "start_sha": base},
        }
        self.opened.append(iid)
        return 201, self.merge_requests[iid]

    def _list_merge_requests(self, call: Call) -> list[dict[str, Any]]:
        """Filtered by state (GitLab's default: all) and source and target branch."""
        wanted = {k: call.query.get(k) for k in ("source_branch", "target_branch")}
        state = call.query.get("state", "all")
        return [
            mr
            for mr in sorted(self.merge_requests.values(), key=lambda m: -int(m["iid"]))
            if state in ("all", mr["state"])
            and all(v in (None, mr.get(k)) for k, v in wanted.items())
        ]

    def _merge(self, call: Call) -> tuple[int, dict[str, Any]]:
        mr = self.merge_requests.get(int(call.params["merge_request_iid"]))
        if mr is None:
            return 404, {"message": "404 Not found"}
        if mr["state"] != "opened":
            return 405, {"message": "405 Method Not Allowed"}
        self.merge_button(mr["iid"], call.body.get("merge_commit_message") if call.body else None)
        return 200, mr

    def merge_button(self, iid: int, message: str | None = None) -> str:
        """Merge MR !iid with a merge commit, as GitLab's default merge method does."""
        mr = self.merge_requests[iid]
        base = self._head_of(mr["target_branch"])
        assert base is not None
        text = message or f"Merge branch '{mr['source_branch']}' into '{mr['target_branch']}'"
        merge = self._repo_git().merge(base, mr["sha"], text)
        self._move(mr["target_branch"], merge)
        mr.update(state="merged", merge_commit_sha=merge)
        return merge


def _environment_id(name: str) -> int:
    return sum(map(ord, name))


def _noteable(call: Call) -> tuple[int, str]:
    """The issue or merge request a notes path is about."""
    if "issue_iid" in call.params:
        return int(call.params["issue_iid"]), "Issue"
    return int(call.params["merge_request_iid"]), "MergeRequest"


def _public(note: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in note.items() if k != "noteable_iid"}


_NOTES = API + "/projects/{project_id}/merge_requests/{merge_request_iid}/notes"
_ISSUE_NOTES = API + "/projects/{project_id}/issues/{issue_iid}/notes"
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
    ("GET", _ISSUE_NOTES): FakeGitLab._list_notes,
    ("POST", _ISSUE_NOTES): FakeGitLab._create_note,
    ("PUT", _ISSUE_NOTES + "/{item_id}"): FakeGitLab._update_note,
    ("DELETE", _ISSUE_NOTES + "/{item_id}"): FakeGitLab._delete_note,
    ("GET", _BRANCH): FakeGitLab._branch,
    ("GET", API + "/projects"): FakeGitLab._list_projects,
    ("HEAD", _FILE): FakeGitLab._file_head,
    ("GET", API + "/projects/{id}/issues"): FakeGitLab._list_issues,
    ("POST", API + "/projects/{id}/issues"): FakeGitLab._create_issue,
    ("PUT", API + "/projects/{id}/issues/{issue_iid}"): FakeGitLab._update_issue,
    ("POST", API + "/projects/{id}/statuses/{sha}"): FakeGitLab._create_status,
    (
        "GET",
        API + "/projects/{project_id}/repository/commits/{commit_id}/statuses",
    ): FakeGitLab._list_statuses,
    ("GET", API + "/projects/{id}/deployments"): FakeGitLab._list_deployments,
    ("POST", API + "/projects/{id}/deployments"): FakeGitLab._create_deployment,
    ("PUT", API + "/projects/{id}/deployments/{deployment_id}"): FakeGitLab._update_deployment,
    ("POST", API + "/projects/{id}/repository/branches"): FakeGitLab._create_branch,
    ("POST", API + "/projects/{id}/repository/commits"): FakeGitLab._create_commit,
    ("POST", API + "/projects/{id}/merge_requests"): FakeGitLab._create_merge_request,
    ("GET", API + "/projects/{project_id}/merge_requests"): FakeGitLab._list_merge_requests,
    ("PUT", API + "/projects/{id}/merge_requests/{merge_request_iid}/merge"): FakeGitLab._merge,
}
