"""A fake GitHub REST API, in process: it records every request, checks each one against
GitHub's official OpenAPI description (@octokit/openapi), and keeps just enough state to
answer the way GitHub does. A request the description rejects is a test failure. Recording
and faults are tests/helpers/fakeforge.py's, shared with the fake GitLab."""

from __future__ import annotations

import asyncio
import base64
import datetime
import itertools
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
from aiohttp import web
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

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

_DOCUMENT_URI = "urn:github-openapi"


class OpenAPIDescription:
    """GitHub's REST description: finds the operation for a request and lists what is wrong."""

    def __init__(self, path: Path) -> None:
        self.document: dict[str, Any] = json.loads(path.read_text())
        self.version = self.document["info"]["version"]
        resource = Resource.from_contents(self.document, default_specification=DRAFT4)
        self._registry = Registry().with_resource(_DOCUMENT_URI, resource)

    @cached_property
    def _routes(self) -> list[tuple[re.Pattern[str], str, int]]:
        routes = []
        for template in self.document["paths"]:
            segment = _git_ref if "/git/ref" in template else r"(?P<\1>[^/]+)"
            pattern = re.sub(r"\\\{(\w+)\\\}", segment, re.escape(template))
            routes.append((re.compile(f"^{pattern}$"), template, template.count("{")))
        return sorted(routes, key=lambda route: route[2])  # literal segments win

    def operation(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The path template describing `method path`, and its path parameters."""
        for pattern, template, _ in self._routes:
            found = pattern.match(path)
            if found and method.lower() in self.document["paths"][template]:
                return template, found.groupdict()
        return None

    def problems(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> list[str]:
        """Everything about the request that GitHub's description does not allow."""
        found = self.operation(method, path)
        if found is None:
            return [f"{method} {path}: no such operation in the GitHub REST API"]
        template, path_values = found
        pointer = f"/paths/{_escape(template)}/{method.lower()}"
        operation = self.document["paths"][template][method.lower()]
        errors = self._parameter_problems(operation, pointer, path_values, query)
        errors += self._body_problems(operation, pointer, body)
        return [f"{method} {template}: {error}" for error in errors]

    def _parameter_problems(
        self,
        operation: dict[str, Any],
        pointer: str,
        path_values: Mapping[str, str],
        query: Mapping[str, str],
    ) -> list[str]:
        errors = []
        declared: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for index, parameter in enumerate(operation.get("parameters", [])):
            where = f"{pointer}/parameters/{index}"
            if "$ref" in parameter:
                where = parameter["$ref"].lstrip("#")
                parameter = self._resolve(where)
            declared[(parameter["in"], parameter["name"])] = (parameter, where)
        for name in query:
            if ("query", name) not in declared:
                errors.append(f"query parameter {name!r} is not described")
        for (place, name), (parameter, where) in declared.items():
            values = {"path": path_values, "query": query}.get(place)
            if values is None:
                continue
            if name not in values:
                if parameter.get("required"):
                    errors.append(f"required {place} parameter {name!r} is missing")
                continue
            value = _coerce(values[name], parameter["schema"])
            errors += [
                f"{place} parameter {name!r}: {e}"
                for e in self._schema_errors(value, f"{where}/schema")
            ]
        return errors

    def _body_problems(self, operation: dict[str, Any], pointer: str, body: bytes) -> list[str]:
        request_body = operation.get("requestBody")
        where = f"{pointer}/requestBody"
        if request_body is not None and "$ref" in request_body:
            where = request_body["$ref"].lstrip("#")
            request_body = self._resolve(where)
        if not body:
            required = bool(request_body and request_body.get("required"))
            return ["the request body is required"] if required else []
        if request_body is None:
            return ["this operation takes no request body"]
        content = request_body["content"].get("application/json")
        if content is None:
            return ["this operation takes no JSON body"]
        try:
            data = json.loads(body)
        except ValueError:
            return ["the request body is not JSON"]
        schema = f"{where}/content/application~1json/schema"
        return [f"body: {e}" for e in self._schema_errors(data, schema)]

    def _schema_errors(self, value: Any, pointer: str) -> list[str]:
        reference = {"$ref": f"{_DOCUMENT_URI}#{quote(pointer, safe='/~')}"}
        validator = OAS30Validator(reference, registry=self._registry)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '(value)'}: {e.message}"
            for e in validator.iter_errors(value)
        ]

    def _resolve(self, pointer: str) -> dict[str, Any]:
        node: Any = self.document
        for part in pointer.strip("/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return dict(node)


def _git_ref(found: re.Match[str]) -> str:
    """In the Git Data API's ref paths `ref` is `heads/<branch>`, more than one segment (as
    GitHub's description of the parameter says); every other parameter is one segment."""
    name = found.group(1)
    return f"(?P<{name}>.+)" if name == "ref" else f"(?P<{name}>[^/]+)"


def _escape(template: str) -> str:
    return template.replace("~", "~0").replace("/", "~1")


def _coerce(text: str, schema: Mapping[str, Any]) -> Any:
    """Query and path values are strings on the wire; the description types them."""
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", text):
        return int(text)
    if kind == "boolean" and text in ("true", "false"):
        return text == "true"
    return text


@dataclass
class FakeGitHub(FakeForge):
    description: OpenAPIDescription
    clock: Callable[[], float]
    app_id: str = "4242"
    app_slug: str = "gitops-bot"
    public_key: str | None = None  # PEM; set when the bot runs as an App
    personal_token: str | None = None  # set when the bot runs with a token
    user_login: str = "gitops-bot-user"
    prefix: str = ""  # "/api/v3" to answer like GitHub Enterprise Server
    comments: dict[int, dict[str, Any]] = field(default_factory=dict)
    check_runs: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[int, dict[str, Any]] = field(default_factory=dict)
    deployment_statuses: list[dict[str, Any]] = field(default_factory=list)
    pulls: dict[int, dict[str, Any]] = field(default_factory=dict)
    reviews: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    permissions: dict[str, str] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)  # not pull requests
    branches: dict[str, str] = field(default_factory=dict)  # branch -> head commit
    tokens: dict[str, float] = field(default_factory=dict)  # installation token -> expiry
    git: ForgeGit | None = None  # the origin repository, for the Git Data API and merges
    opened: list[int] = field(default_factory=list)  # pull requests the bot opened, in order
    # Repositories the installation (or the token) sees, by full name; a real git
    # repository behind one answers its branches and files from git.
    repositories: dict[str, dict[str, Any]] = field(default_factory=dict)
    installation: int = 7788  # the one installation GET /app/installations lists
    origins: dict[str, Path] = field(default_factory=dict)
    writing: int = 0  # content-creating requests in flight right now
    most_parallel_writes: int = 0
    # The App manifest flow: code -> the manifest GitHub created an App from, and the key
    # it hands over once (POST /app-manifests/{code}/conversions).
    manifest_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifest_pem: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    @property
    def bot_login(self) -> str:
        return f"{self.app_slug}[bot]" if self.public_key else self.user_login

    # --- set-up by tests -------------------------------------------------------------

    def add_comment(self, number: int, body: str, login: str, kind: str = "User") -> int:
        comment_id = next(self._ids)
        self.comments[comment_id] = {
            "id": comment_id,
            "issue": number,
            "body": body,
            "user": _user(login, kind),
        }
        return comment_id

    def comments_on(self, number: int) -> list[dict[str, Any]]:
        return [c for c in self.comments.values() if c["issue"] == number]

    def issues_titled(self, title: str) -> list[dict[str, Any]]:
        return [i for i in self.issues.values() if i["title"] == title]

    # --- the server ------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        query = single_values(request.query)
        if self._outside(request, request.path, self.prefix):
            return json_response({"message": "Not Found"}, 404)
        call = Call(
            request.method,
            request.path.removeprefix(self.prefix),
            query,
            json.loads(body) if body else None,
            request.headers.get("Authorization", ""),
            if_none_match=request.headers.get("If-None-Match", ""),
        )
        self.calls.append(call)
        await self._delay(call)
        if request.method == "GET":
            return self._answer(request, call, body)
        self.writing += 1
        self.most_parallel_writes = max(self.most_parallel_writes, self.writing)
        try:
            await asyncio.sleep(0)  # let any other request in, if the bot would send one
            return self._answer(request, call, body)
        finally:
            self.writing -= 1

    def _answer(self, request: web.Request, call: Call, body: bytes) -> web.Response:
        query = call.query
        problems = self.description.problems(call.method, call.path, query, body)
        if problems:
            self.violations.extend(problems)
            return json_response({"message": "Validation Failed", "errors": problems}, 422)
        denied = self._authorization_problem(call)
        if denied:
            return json_response({"message": denied}, 401)
        fault = self._fault(call)
        if fault is not None:
            return json_response({"message": fault.message}, fault.status, fault.headers)
        template, params = self.description.operation(call.method, call.path) or ("", {})
        status, data = self._dispatch(_HANDLERS, template, replace(call, params=params))
        return self.conditional(call, data, status, self._rate_headers())

    def _authorization_problem(self, call: Call) -> str | None:
        scheme, _, credential = call.credential.partition(" ")
        if call.path.startswith("/app-manifests/"):
            return None  # no authentication: the one-time code is the proof
        if call.path == "/app" or call.path.startswith("/app/"):
            return self._jwt_problem(scheme, credential)
        if call.path == "/user" or self.public_key is None:
            ok = credential == self.personal_token and scheme.lower() == "token"
            return None if ok else "Bad credentials"
        expiry = self.tokens.get(credential)
        if scheme.lower() != "token" or expiry is None:
            return "Bad credentials"
        return "token expired" if expiry <= self.clock() else None

    def _jwt_problem(self, scheme: str, credential: str) -> str | None:
        if self.public_key is None or scheme.lower() != "bearer":
            return "A JSON web token could not be decoded"
        try:
            claims = jwt.decode(credential, self.public_key, algorithms=["RS256"])
        except jwt.PyJWTError as exc:
            return f"A JSON web token could not be decoded: {exc}"
        return None if str(claims.get("iss")) == self.app_id else "wrong issuer"

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(self.clock()) + 3600),
        }

    # --- answers, keyed by operation ---------------------------------------------------

    def _new_token(self, call: Call) -> tuple[int, dict[str, Any]]:
        token = "ghs_" + secrets.token_hex(16)
        self.tokens[token] = self.clock() + 3600
        expires = datetime.datetime.fromtimestamp(self.tokens[token], datetime.UTC)
        return 201, {"token": token, "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def _app(self, call: Call) -> dict[str, Any]:
        return {"id": int(self.app_id), "slug": self.app_slug, "name": "gitops-bot"}

    def _user(self, call: Call) -> dict[str, Any]:
        return _user(self.user_login, "User")

    def _list_comments(self, call: Call) -> list[dict[str, Any]]:
        number = int(call.params["issue_number"])
        return [_public(c) for c in self.comments.values() if c["issue"] == number]

    def _create_comment(self, call: Call) -> tuple[int, dict[str, Any]]:
        comment_id = self.add_comment(
            int(call.params["issue_number"]), call.body["body"], self.bot_login, self._kind()
        )
        return 201, _public(self.comments[comment_id])

    def _edit_comment(self, call: Call) -> tuple[int, dict[str, Any]]:
        comment = self.comments.get(int(call.params["comment_id"]))
        if comment is None:
            return 404, {"message": "Not Found"}
        if comment["user"]["login"] != self.bot_login:
            self.violations.append(f"the bot edited someone else's comment: {call}")
        comment["body"] = call.body["body"]
        return 200, _public(comment)

    def _delete_comment(self, call: Call) -> tuple[int, None]:
        self.comments.pop(int(call.params["comment_id"]), None)
        return 204, None

    def _create_check_run(self, call: Call) -> tuple[int, dict[str, Any]]:
        run_id = next(self._ids)
        output = call.body.get("output", {})
        self.check_runs[run_id] = {
            "id": run_id,
            "status": "queued",
            **call.body,
            "annotations": list(output.get("annotations", [])),
        }
        _complete(self.check_runs[run_id])
        return 201, {"id": run_id, "name": call.body["name"], "head_sha": call.body["head_sha"]}

    def _update_check_run(self, call: Call) -> tuple[int, dict[str, Any]]:
        run = self.check_runs[int(call.params["check_run_id"])]
        output = call.body.get("output", {})
        run.update({k: v for k, v in call.body.items() if k != "output"})
        run["output"] = output
        run["annotations"] += output.get("annotations", [])
        _complete(run)
        return 200, {"id": run["id"], "name": run["name"]}

    def _list_check_runs(self, call: Call) -> dict[str, Any]:
        """A commit's check runs, newest first, filtered by name and status."""
        name, status = call.query.get("check_name"), call.query.get("status")
        runs = [
            {**run, "app": {"id": int(self.app_id), "slug": self.app_slug}}
            for run in sorted(self.check_runs.values(), key=lambda r: -r["id"])
            if run["head_sha"] == call.params["ref"]
            and name in (None, run["name"])
            and status in (None, run["status"])
        ]
        return {"total_count": len(runs), "check_runs": runs}

    def _list_statuses(self, call: Call) -> list[dict[str, Any]]:
        """A commit's statuses, newest first, as GitHub lists them."""
        return [s for s in reversed(self.statuses) if s["sha"] == call.params["ref"]]

    def open_check_runs(self) -> list[dict[str, Any]]:
        return [run for run in self.check_runs.values() if run["status"] != "completed"]

    def _create_status(self, call: Call) -> tuple[int, dict[str, Any]]:
        self.statuses.append({"sha": call.params["sha"], **call.body})
        return 201, {"id": next(self._ids), **call.body}

    def _pull(self, call: Call) -> tuple[int, Any]:
        pull = self.pulls.get(int(call.params["pull_number"]))
        if pull is None:
            return 404, {"message": "Not Found"}
        answer = _public(pull)
        self._test_merge(pull)
        return 200, answer

    def _test_merge(self, pull: dict[str, Any]) -> None:
        """What GitHub does on a read of an open pull request whose test merge is not of
        its current head and base branch: `mergeable: null` in this answer, the merge made
        (by git, at refs/pull/N/merge) in the background, and shown from the next read on."""
        base = self.branches.get(pull["base"]["ref"], pull["base"]["sha"])
        wanted = (base, pull["head"]["sha"])
        if self.origin is None or pull.get("merged_at") or pull.get("_tested") == wanted:
            return
        ref = f"refs/pull/{pull['number']}/merge"
        commit = make_merge_ref(self.origin, ref, *wanted)
        pull.update(_tested=wanted, mergeable=commit is not None)
        if commit is not None:
            pull["merge_commit_sha"] = commit

    def compute_test_merge(self, number: int) -> None:
        """The test merge made already, as when GitHub finished before the bot asked."""
        self._test_merge(self.pulls[number])

    def pending_test_merge(self, number: int) -> None:
        """The pull request as GitHub has it right after `opened`: nothing computed yet."""
        self.pulls[number].update(mergeable=None, merge_commit_sha=None, _tested=None)

    def _list_pulls(self, call: Call) -> list[dict[str, Any]]:
        """Filtered as GitHub filters them: state (default open), `owner:branch` head, base."""
        state, head, base = (call.query.get(k) for k in ("state", "head", "base"))
        return [
            p
            for p in self.pulls.values()
            if (state or "open") in ("all", p["state"])
            and head in (None, f"{p['head']['repo']['full_name'].split('/')[0]}:{p['head']['ref']}")
            and base in (None, p["base"]["ref"])
        ]

    def _pulls_for_commit(self, call: Call) -> list[dict[str, Any]]:
        sha = call.params["commit_sha"]
        found = [p for p in self.pulls.values() if sha in (p["merge_commit_sha"], p["head"]["sha"])]
        return [_public(p) for p in found]

    def _reviews(self, call: Call) -> list[dict[str, Any]]:
        return self.reviews.get(int(call.params["pull_number"]), [])

    def _permission(self, call: Call) -> tuple[int, dict[str, Any]]:
        user = call.params["username"]
        if user not in self.permissions:
            return 404, {"message": f"{user} is not a user"}
        level = self.permissions[user]
        return 200, {"permission": level, "role_name": level, "user": _user(user, "User")}

    def _list_deployments(self, call: Call) -> list[dict[str, Any]]:
        return [
            d
            for d in self.deployments.values()
            if all(d.get(k) == call.query[k] for k in ("sha", "environment") if k in call.query)
        ]

    def _create_deployment(self, call: Call) -> tuple[int, dict[str, Any]]:
        deployment_id = next(self._ids)
        self.deployments[deployment_id] = {
            "id": deployment_id,
            "sha": call.body["ref"],
            **call.body,
        }
        return 201, self.deployments[deployment_id]

    def _create_deployment_status(self, call: Call) -> tuple[int, dict[str, Any]]:
        deployment_id = int(call.params["deployment_id"])
        if deployment_id not in self.deployments:
            return 404, {"message": "Not Found"}
        creator = _user(self.bot_login, self._kind())
        status = {"deployment_id": deployment_id, "creator": creator, **call.body}
        self.deployment_statuses.append(status)
        return 201, {"id": next(self._ids), **call.body}

    def _list_deployment_statuses(self, call: Call) -> tuple[int, Any]:
        deployment_id = int(call.params["deployment_id"])
        if deployment_id not in self.deployments:
            return 404, {"message": "Not Found"}
        mine = [s for s in self.deployment_statuses if s["deployment_id"] == deployment_id]
        return 200, list(reversed(mine))  # newest first, as GitHub lists them

    def _kind(self) -> str:
        return "Bot" if self.public_key else "User"

    def add_repository(self, slug: str, origin: Path, default_branch: str = "main") -> None:
        """A repository the bot can see, served from the real git repository `origin`."""
        self.origins[slug] = origin
        self.repositories[slug] = {
            "id": next(self._ids),
            "name": slug.partition("/")[2],
            "full_name": slug,
            "owner": _user(slug.partition("/")[0], "Organization"),
            "private": True,
            "archived": False,
            "clone_url": origin.as_uri(),
            "default_branch": default_branch,
        }

    def _installations(self, call: Call) -> list[dict[str, Any]]:
        account = _user("Codertocat", "Organization")
        return [{"id": self.installation, "account": account, "app_id": int(self.app_id)}]

    def _installation_repositories(self, call: Call) -> dict[str, Any]:
        repositories = list(self.repositories.values())
        return {"total_count": len(repositories), "repositories": repositories}

    def _user_repositories(self, call: Call) -> list[dict[str, Any]]:
        return list(self.repositories.values())

    def _contents(self, call: Call) -> tuple[int, dict[str, Any]]:
        origin = self.origins.get(f"{call.params['owner']}/{call.params['repo']}")
        ref, path = call.query.get("ref", "HEAD"), call.params["path"]
        if origin is None or not git_has_file(origin, ref, path):
            return 404, {"message": "Not Found"}
        return 200, {"type": "file", "name": path.rsplit("/", 1)[-1], "path": path}

    def _branch(self, call: Call) -> tuple[int, dict[str, Any]]:
        origin = self.origins.get(f"{call.params['owner']}/{call.params['repo']}")
        if origin is not None:
            sha = git_head(origin, call.params["branch"])
        else:
            sha = self.branches.get(call.params["branch"])
        if sha is None:
            return 404, {"message": "Branch not found"}
        return 200, {"name": call.params["branch"], "commit": {"sha": sha}, "protected": False}

    def _list_issues(self, call: Call) -> list[dict[str, Any]]:
        """Issues and pull requests, as GitHub lists them, filtered by state and creator."""
        state, creator = call.query.get("state", "open"), call.query.get("creator")
        pulls = [{**p, "pull_request": {"url": p.get("url", "")}} for p in self.pulls.values()]
        return [
            _public(i)
            for i in [*self.issues.values(), *pulls]
            if state in ("all", i.get("state", "open"))
            and creator in (None, (i.get("user") or {}).get("login"))
        ]

    def _create_issue(self, call: Call) -> tuple[int, dict[str, Any]]:
        number = max([500, *self.issues, *self.pulls]) + 1  # issues and PRs share numbers
        self.issues[number] = {
            "id": next(self._ids),
            "number": number,
            "title": call.body["title"],
            "body": call.body.get("body"),
            "state": "open",
            "user": _user(self.bot_login, self._kind()),
            "html_url": f"https://github.com/{call.params['owner']}/{call.params['repo']}"
            f"/issues/{number}",
        }
        return 201, self.issues[number]

    def _convert_manifest(self, call: Call) -> tuple[int, dict[str, Any]]:
        """The App created from a manifest, once per code, with its secrets."""
        manifest = self.manifest_codes.pop(call.params["code"], None)
        if manifest is None:
            return 404, {"message": "Not Found"}
        slug = manifest["name"].lower().replace(" ", "-")
        return 201, {
            "id": int(self.app_id),
            "slug": slug,
            "node_id": "MDM6QXBwNDI0Mg==",
            "owner": _user(self.user_login, "User"),
            "name": manifest["name"],
            "description": manifest.get("description", ""),
            "external_url": manifest["url"],
            "html_url": f"https://github.com/apps/{slug}",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "permissions": manifest["default_permissions"],
            "events": manifest["default_events"],
            "client_id": "Iv1.8a61f9b3a7aba766",
            "client_secret": "1726be1638095a19edd134c77bde3aa2ece1e5d8",
            "webhook_secret": "e340154128314309424b7c8e90325147d99fdafa",
            "pem": self.manifest_pem,
        }

    def _update_issue(self, call: Call) -> tuple[int, dict[str, Any]]:
        issue = self.issues.get(int(call.params["issue_number"]))
        if issue is None:
            return 404, {"message": "Not Found"}
        if issue["user"]["login"] != self.bot_login:
            self.violations.append(f"the bot edited someone else's issue: {call}")
        issue.update(call.body)
        return 200, issue

    # --- the Git Data API, pull requests and merges, on the real origin repository ----

    def _repo_git(self) -> ForgeGit:
        assert self.git is not None, "this test's fake GitHub has no repository behind it"
        return self.git

    def _create_blob(self, call: Call) -> tuple[int, dict[str, Any]]:
        content = call.body["content"]
        raw = base64.b64decode(content) if call.body.get("encoding") == "base64" else content
        sha = self._repo_git().blob(raw if isinstance(raw, bytes) else raw.encode())
        return 201, {"sha": sha, "url": f"/git/blobs/{sha}"}

    def _get_commit(self, call: Call) -> tuple[int, dict[str, Any]]:
        git, sha = self._repo_git(), call.params["commit_sha"]
        if git.ref(sha) is None:
            return 404, {"message": "Not Found"}
        return 200, {
            "sha": sha,
            "tree": {"sha": git.tree_of(sha)},
            "parents": [{"sha": p} for p in git.parents_of(sha)],
            "message": git.message_of(sha),
        }

    def _create_tree(self, call: Call) -> tuple[int, dict[str, Any]]:
        git = self._repo_git()
        entries = []
        for entry in call.body["tree"]:
            sha = entry.get("sha")
            if "content" in entry:
                sha = git.blob(entry["content"].encode())
            entries.append((entry["path"], entry["mode"], sha))
        try:
            sha = git.tree(call.body.get("base_tree"), entries)
        except GitRefused as exc:
            return 422, {"message": f"GitRPC::BadObjectState: {exc}"}
        return 201, {"sha": sha, "url": f"/git/trees/{sha}", "tree": [], "truncated": False}

    def _create_git_commit(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.body
        sha = self._repo_git().commit(body["tree"], body.get("parents", []), body["message"])
        return 201, {"sha": sha, "tree": {"sha": body["tree"]}, "message": body["message"]}

    def _create_ref(self, call: Call) -> tuple[int, dict[str, Any]]:
        git, ref, sha = self._repo_git(), call.body["ref"], call.body["sha"]
        if git.ref(ref) is not None or ref.removeprefix("refs/heads/") in self.branches:
            return 422, {"message": "Reference already exists"}
        self._move(ref, sha)
        return 201, {"ref": ref, "object": {"sha": sha, "type": "commit"}}

    def _update_ref(self, call: Call) -> tuple[int, dict[str, Any]]:
        git, ref, sha = self._repo_git(), "refs/" + call.params["ref"], call.body["sha"]
        old = git.ref(ref)
        if old is None:
            return 422, {"message": "Reference does not exist"}
        if not call.body.get("force") and not git.is_ancestor(old, sha):
            return 422, {"message": "Update is not a fast forward"}
        self._move(ref, sha)
        return 200, {"ref": ref, "object": {"sha": sha, "type": "commit"}}

    def _move(self, ref: str, sha: str) -> None:
        self._repo_git().set_ref(ref, sha)
        if ref.startswith("refs/heads/"):
            self.branches[ref.removeprefix("refs/heads/")] = sha

    def _head_of(self, branch: str) -> str | None:
        return self.branches.get(branch) or self._repo_git().ref(f"refs/heads/{branch}")

    def _create_pull(self, call: Call) -> tuple[int, dict[str, Any]]:
        body, owner, name = call.body, call.params["owner"], call.params["repo"]
        head, base = self._head_of(body["head"]), self._head_of(body["base"])
        if head is None or base is None:
            return 422, {"message": "Validation Failed", "errors": [{"field": "head"}]}
        number = max([500, *self.issues, *self.pulls]) + 1  # issues and PRs share numbers
        full_name = f"{owner}/{name}"
        self.pulls[number] = {
            "id": next(self._ids),
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "state": "open",
            "user": _user(self.bot_login, self._kind()),
            "html_url": f"https://github.com/{full_name}/pull/{number}",
            "base": {"ref": body["base"], "sha": base, "repo": {"full_name": full_name}},
            "head": {"ref": body["head"], "sha": head, "repo": {"full_name": full_name}},
            "merged_at": None,
            "merge_commit_sha": None,
        }
        self.opened.append(number)
        return 201, self.pulls[number]

    def _merge_pull(self, call: Call) -> tuple[int, dict[str, Any]]:
        pull = self.pulls.get(int(call.params["pull_number"]))
        if pull is None:
            return 404, {"message": "Not Found"}
        if pull["merged_at"] or call.body.get("merge_method", "merge") != "merge":
            return 405, {"message": "Pull Request is not mergeable"}
        try:
            merge = self.merge_button(pull["number"], call.body.get("commit_title"))
        except GitRefused:
            return 405, {"message": "Pull Request is not mergeable"}
        return 200, {"sha": merge, "merged": True, "message": "Pull Request successfully merged"}

    def merge_button(self, number: int, title: str | None = None) -> str:
        """Merge PR `number` as GitHub's merge button does: a merge commit on the base branch."""
        pull = self.pulls[number]
        base_ref = pull["base"]["ref"]
        base = self._head_of(base_ref)
        assert base is not None
        message = title or f"Merge pull request #{number}"
        merge = self._repo_git().merge(base, pull["head"]["sha"], message)
        self._move(f"refs/heads/{base_ref}", merge)
        merged_at = datetime.datetime.fromtimestamp(self.clock(), datetime.UTC)
        pull.update(
            merged_at=merged_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            merge_commit_sha=merge,
            state="closed",
        )
        return merge


_HANDLERS: dict[tuple[str, str], Handler] = {
    ("POST", "/app-manifests/{code}/conversions"): FakeGitHub._convert_manifest,
    ("POST", "/app/installations/{installation_id}/access_tokens"): FakeGitHub._new_token,
    ("GET", "/app"): FakeGitHub._app,
    ("GET", "/user"): FakeGitHub._user,
    ("GET", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): FakeGitHub._list_comments,
    ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"): FakeGitHub._create_comment,
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}"): FakeGitHub._edit_comment,
    ("DELETE", "/repos/{owner}/{repo}/issues/comments/{comment_id}"): FakeGitHub._delete_comment,
    ("GET", "/repos/{owner}/{repo}/branches/{branch}"): FakeGitHub._branch,
    ("GET", "/repos/{owner}/{repo}/contents/{path}"): FakeGitHub._contents,
    ("GET", "/app/installations"): FakeGitHub._installations,
    ("GET", "/installation/repositories"): FakeGitHub._installation_repositories,
    ("GET", "/user/repos"): FakeGitHub._user_repositories,
    ("GET", "/repos/{owner}/{repo}/issues"): FakeGitHub._list_issues,
    ("POST", "/repos/{owner}/{repo}/issues"): FakeGitHub._create_issue,
    ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"): FakeGitHub._update_issue,
    ("POST", "/repos/{owner}/{repo}/check-runs"): FakeGitHub._create_check_run,
    ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}"): FakeGitHub._update_check_run,
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}"): FakeGitHub._create_status,
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs"): FakeGitHub._list_check_runs,
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses"): FakeGitHub._list_statuses,
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}"): FakeGitHub._pull,
    ("GET", "/repos/{owner}/{repo}/pulls"): FakeGitHub._list_pulls,
    ("GET", "/repos/{owner}/{repo}/commits/{commit_sha}/pulls"): FakeGitHub._pulls_for_commit,
    ("GET", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews"): FakeGitHub._reviews,
    (
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
    ): FakeGitHub._permission,
    ("GET", "/repos/{owner}/{repo}/deployments"): FakeGitHub._list_deployments,
    ("POST", "/repos/{owner}/{repo}/deployments"): FakeGitHub._create_deployment,
    (
        "POST",
        "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    ): FakeGitHub._create_deployment_status,
    ("POST", "/repos/{owner}/{repo}/git/blobs"): FakeGitHub._create_blob,
    ("GET", "/repos/{owner}/{repo}/git/commits/{commit_sha}"): FakeGitHub._get_commit,
    ("POST", "/repos/{owner}/{repo}/git/trees"): FakeGitHub._create_tree,
    ("POST", "/repos/{owner}/{repo}/git/commits"): FakeGitHub._create_git_commit,
    ("POST", "/repos/{owner}/{repo}/git/refs"): FakeGitHub._create_ref,
    ("PATCH", "/repos/{owner}/{repo}/git/refs/{ref}"): FakeGitHub._update_ref,
    ("POST", "/repos/{owner}/{repo}/pulls"): FakeGitHub._create_pull,
    ("PUT", "/repos/{owner}/{repo}/pulls/{pull_number}/merge"): FakeGitHub._merge_pull,
    (
        "GET",
        "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses",
    ): FakeGitHub._list_deployment_statuses,
}


def _complete(run: dict[str, Any]) -> None:
    """A run given a conclusion is completed, as on GitHub."""
    if run.get("conclusion"):
        run["status"] = "completed"


def _user(login: str, kind: str) -> dict[str, Any]:
    return {"login": login, "id": abs(hash(login)) % 10**8, "type": kind}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """What GitHub shows of an item: none of the fake's own bookkeeping."""
    return {k: v for k, v in item.items() if k != "issue" and not k.startswith("_")}
