"""The Forge port on GitLab (python-gitlab): MR notes, commit statuses, deployments, roles.

Each method does its GitLab calls in one function that runs off the event loop
(GitLabClients.run), so nothing outside this adapter knows python-gitlab is synchronous.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import gitlab
from gitlab.v4.objects import Project, ProjectCommit, ProjectMergeRequest

from bot.config.secrets import Secret
from bot.config.settings import Settings
from bot.core.ledgerchain import Anchor, anchors_in
from bot.core.markdown import GITLAB_NOTE_LIMIT, parse_marker
from bot.core.mergepreviews import Mergeability
from bot.core.proposalresume import BranchTip
from bot.events import GITLAB, Repository
from bot.forges.gitlab.api import GitLabClients, GitLabError, describe, is_not_found
from bot.forges.gitlab.conditional import ConditionalReads
from bot.forges.ports import (
    CHECK_NAME,
    BranchMissing,
    CheckReport,
    CheckState,
    DeploymentReport,
    FileChange,
    PullRequest,
)

DEVELOPER = 30  # GitLab's access level of the Developer role; Maintainer is 40, Owner 50
PROJECT_LISTING = {"membership": "true", "archived": "false", "per_page": "100"}
_STATUS_DESCRIPTION_LIMIT = 255
DIFF_RETRY_SECONDS = 30.0
_COMMIT_STATES = {
    CheckState.PENDING: "pending",
    CheckState.SUCCESS: "success",
    CheckState.FAILURE: "failed",
    # A superseded head's plan was not run to the end. Of the states GitLab takes,
    # "skipped" is the one a project can count as passing ("skipped pipelines are
    # considered successful"); "canceled" would always block, "success" would claim a plan.
    CheckState.NEUTRAL: "skipped",
}
_OPEN_STATES = frozenset({"pending", "running"})
_NOT_CHECKED = frozenset(
    {
        None,
        "unchecked",
        "checking",
        "preparing",
        "cannot_be_merged_recheck",
        "cannot_be_merged_rechecking",
    }
)
_DEPLOYMENT_STATES = {
    "in_progress": "running",
    "success": "success",
    "failure": "failed",
    "error": "failed",  # GitLab has no "could not run"; the apply note says which it was
}


class GitLabForges:
    """The Forges for one GitLab instance (gitlab.com or self-managed) and one token."""

    def __init__(self, settings: Settings) -> None:
        assert settings.gitlab_token is not None  # checked by check_gitlab_settings
        self.clients = GitLabClients(settings.gitlab_url, settings.gitlab_token)
        self._token = settings.gitlab_token
        self._host = urlsplit(settings.gitlab_url).hostname
        self._username = settings.gitlab_bot_username
        self.conditional = ConditionalReads()

    def forge_for(self, repo: Repository) -> GitLabForge:
        return GitLabForge(self)

    async def served_repositories(self) -> tuple[Repository, ...]:
        """The projects the token's user is a member of; archived and empty ones (no
        branch to catch up on) left out."""

        def listing(gl: gitlab.Gitlab) -> tuple[Repository, ...]:
            found: list[Repository] = []
            page: str | None = "1"
            while page is not None:
                query = {**PROJECT_LISTING, "page": page}
                projects, page = self.conditional.read(gl, "/projects", query)
                found += [_repository(p) for p in projects if not p.get("empty_repo")]
            return tuple(found)

        return await self.clients.run("GET /projects", listing)

    async def username(self) -> str:
        """The bot's own username, to tell its notes from everyone else's."""
        if self._username is None:

            def current_user(gl: gitlab.Gitlab) -> str:
                gl.auth()
                assert gl.user is not None
                return str(gl.user.username)

            self._username = await self.clients.run("GET /user", current_user)
        return self._username

    def git_header(self, repo: Repository) -> Secret | None:
        """Basic auth for git over HTTPS, and only towards this GitLab's own host."""
        parts = urlsplit(repo.clone_url)
        if parts.scheme != "https" or parts.hostname != self._host:
            return None
        basic = base64.b64encode(f"oauth2:{self._token.reveal()}".encode()).decode()
        return Secret(f"Authorization: Basic {basic}")


class GitLabForge:
    """The Forge Protocol for GitLab projects; merge request iids are the PR numbers."""

    comment_limit = GITLAB_NOTE_LIMIT
    command_permission = "the Developer role or higher in this project"

    def __init__(self, forges: GitLabForges) -> None:
        self._forges = forges

    async def upsert_comment(
        self, repo: Repository, number: int, kind: str, parts: Sequence[str]
    ) -> None:
        login = await self._forges.username()

        def upsert(gl: gitlab.Gitlab) -> None:
            notes = _merge_request(gl, repo, number).notes
            mine: dict[int, Any] = {}
            for note in sorted(notes.list(get_all=True), key=lambda n: int(n.id)):
                part = parse_marker(str(note.body or ""), kind)
                if part is not None and _author(note) == login and not note.system:
                    mine.setdefault(part, note)
            for part, body in enumerate(parts, 1):
                if part not in mine:
                    notes.create({"body": body})
                elif mine[part].body != body:
                    notes.update(mine[part].id, {"body": body})
            for part, note in sorted(mine.items()):
                if part > len(parts):  # the plan got shorter: drop parts that no longer exist
                    notes.delete(note.id)

        await self._forges.clients.run(f"notes of !{number}", upsert)

    async def reply(self, repo: Repository, number: int, text: str, on_issue: bool = False) -> None:
        def create(gl: gitlab.Gitlab) -> None:
            project = _project(gl, repo)
            noteable = project.issues if on_issue else project.mergerequests
            noteable.get(number, lazy=True).notes.create({"body": text})

        await self._forges.clients.run(f"POST note on !{number}", create)

    async def report_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        await self._set_status(repo, commit, report, only_if_absent=False)

    async def open_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        await self._set_status(repo, commit, report, only_if_absent=True)

    async def conclude_open_check(self, repo: Repository, commit: str, report: CheckReport) -> bool:
        def conclude(gl: gitlab.Gitlab) -> bool:
            commit_api = _project(gl, repo).commits.get(commit, lazy=True)
            newest = _newest_status(commit_api)
            if newest is None or newest.status not in _OPEN_STATES:
                return False
            _post_status(commit_api, _status_data(report))
            return True

        return await self._forges.clients.run(f"conclude status of {commit[:12]}", conclude)

    async def _set_status(
        self, repo: Repository, commit: str, report: CheckReport, only_if_absent: bool
    ) -> None:
        """Post the status unless the newest one already reads the same, or (with
        `only_if_absent`) unless there is one at all."""
        data = _status_data(report)

        def post(gl: gitlab.Gitlab) -> None:
            commit_api = _project(gl, repo).commits.get(commit, lazy=True)
            newest = _newest_status(commit_api)
            if newest is not None and (only_if_absent or _status_reads(newest, data)):
                return
            _post_status(commit_api, data)

        await self._forges.clients.run(f"POST status {data['state']} for {commit[:12]}", post)

    async def pull_request(self, repo: Repository, number: int) -> PullRequest:
        def get(gl: gitlab.Gitlab) -> PullRequest:
            return _pull_request(_project(gl, repo).mergerequests.get(number).attributes)

        pull = await self._forges.clients.run(f"GET !{number}", get)
        if not pull.base_sha and not pull.merged:
            raise GitLabError(
                f"merge request !{number} has no diff yet (GitLab prepares it in the "
                "background); the bot tries again shortly",
                retry_in=DIFF_RETRY_SECONDS,
            )
        return pull

    async def pull_request_for_commit(self, repo: Repository, commit: str) -> PullRequest | None:
        def find(gl: gitlab.Gitlab) -> PullRequest | None:
            project = _project(gl, repo)
            found = project.commits.get(commit, lazy=True).merge_requests(get_all=True)
            merged = [m for m in found if m.get("state") == "merged"]
            made = [m for m in merged if commit in _resulting_commits(m)]
            candidates = made or merged
            if not candidates:
                return None
            return _pull_request(project.mergerequests.get(candidates[0]["iid"]).attributes)

        return await self._forges.clients.run(f"GET MRs of {commit[:12]}", find)

    async def approvers(self, repo: Repository, number: int) -> tuple[str, ...]:
        def get(gl: gitlab.Gitlab) -> tuple[str, ...]:
            approvals = _merge_request(gl, repo, number).approvals.get()
            names = {str(a["user"]["username"]) for a in approvals.approved_by or ()}
            return tuple(sorted(names))

        return await self._forges.clients.run(f"GET approvals of !{number}", get)

    async def can_write(self, repo: Repository, user: str) -> bool:
        """Developer role or higher, directly or through a group."""

        def check(gl: gitlab.Gitlab) -> bool:
            users = gl.users.list(username=user, get_all=False)
            if not users:
                return False
            try:
                member = _project(gl, repo).members_all.get(users[0].id)
            except gitlab.exceptions.GitlabGetError as exc:
                if is_not_found(exc):
                    return False  # not a member at all
                raise
            active = getattr(member, "state", "active") == "active"
            return active and int(member.access_level) >= DEVELOPER

        return await self._forges.clients.run(f"GET role of {user}", check)

    async def record_deployment(
        self, repo: Repository, commit: str, report: DeploymentReport
    ) -> None:
        """A GitLab deployment of `commit` to the environment (GitLab creates the
        environment on first use), reused when a retry already made it."""
        status = _DEPLOYMENT_STATES[str(report.state)]

        def record(gl: gitlab.Gitlab) -> None:
            deployments = _project(gl, repo).deployments
            listed = deployments.list(
                environment=report.environment, order_by="id", sort="desc", get_all=False
            )
            existing = next((d for d in listed if d.sha == commit), None)
            if existing is None:
                data = {
                    "environment": report.environment,
                    "sha": commit,
                    "ref": repo.default_branch,
                    "tag": False,
                    "status": status,
                }
                deployments.create(data)
            elif existing.status != status:
                deployments.update(existing.id, {"status": status})

        await self._forges.clients.run(f"deployment to {report.environment}", record)

    async def ledger_anchors(self, repo: Repository) -> tuple[Anchor, ...]:
        """GitLab deployments hold no text, so the anchors are in the bot's apply notes on
        the merge requests of the newest deployments."""
        login = await self._forges.username()

        def read(gl: gitlab.Gitlab) -> tuple[Anchor, ...]:
            project = _project(gl, repo)
            listed = project.deployments.list(order_by="id", sort="desc", get_all=False)
            commits = dict.fromkeys(str(d.sha) for d in listed)
            return tuple(a for c in commits for a in _anchors_of_commit(project, c, login))

        return await self._forges.clients.run("GET ledger anchors", read)

    async def git_auth_header(self, repo: Repository) -> Secret | None:
        return self._forges.git_header(repo)

    async def branch_head(self, repo: Repository, branch: str) -> str:
        path = f"/projects/{quote(repo.slug, safe='')}/repository/branches/{quote(branch, safe='')}"

        def get(gl: gitlab.Gitlab) -> str:
            try:
                data, _ = self._forges.conditional.read(gl, path, {})
            except gitlab.exceptions.GitlabHttpError as exc:
                if is_not_found(exc):
                    what = f"GitLab API GET branch {branch} failed: {describe(exc)}"
                    raise BranchMissing(what) from exc
                raise
            return str(data["commit"]["id"])

        return await self._forges.clients.run(f"GET branch {branch}", get)

    async def has_file(self, repo: Repository, commit: str, path: str) -> bool:
        def head(gl: gitlab.Gitlab) -> bool:
            try:
                _project(gl, repo).files.head(path, ref=commit)
            except gitlab.exceptions.GitlabHeadError as exc:
                if is_not_found(exc):
                    return False
                raise
            return True

        return await self._forges.clients.run(f"HEAD {path} at {commit[:12]}", head)

    async def upsert_tracking_issue(
        self, repo: Repository, key: str, title: str, parts: Sequence[str]
    ) -> str:
        login = await self._forges.username()

        def upsert(gl: gitlab.Gitlab) -> str:
            project = _project(gl, repo)
            issue = self._tracking_issue(project, key, login)
            data = {"title": title, "description": parts[0]}
            if issue is None:
                issue = project.issues.create(data)
            elif (issue.title, issue.description) != (title, parts[0]):
                project.issues.update(issue.iid, data)
            notes = project.issues.get(issue.iid, lazy=True).notes
            self._sync_issue_notes(notes, key, login, parts)
            return str(issue.web_url or "")

        return await self._forges.clients.run(f"tracking issue {key}", upsert)

    async def close_tracking_issue(self, repo: Repository, key: str, comment: str) -> bool:
        login = await self._forges.username()

        def close(gl: gitlab.Gitlab) -> bool:
            project = _project(gl, repo)
            issue = self._tracking_issue(project, key, login)
            if issue is None:
                return False
            project.issues.get(issue.iid, lazy=True).notes.create({"body": comment})
            project.issues.update(issue.iid, {"state_event": "close"})
            return True

        return await self._forges.clients.run(f"close tracking issue {key}", close)

    async def create_branch(self, repo: Repository, branch: str, commit: str) -> None:
        def create(gl: gitlab.Gitlab) -> None:
            _project(gl, repo).branches.create({"branch": branch, "ref": commit})

        await self._forges.clients.run(f"POST branch {branch}", create)

    async def commit_files(
        self,
        repo: Repository,
        branch: str,
        parent: str,
        message: str,
        files: Sequence[FileChange],
    ) -> str:
        """One commit with an action per file (POST /projects/:id/repository/commits)."""
        data = {"branch": branch, "commit_message": message, "actions": _actions(files)}

        def create(gl: gitlab.Gitlab) -> str:
            made = _project(gl, repo).commits.create(data)
            if list(made.parent_ids or ()) != [parent]:  # someone pushed to the branch first
                raise GitLabError(f"{branch} moved past {parent[:12]}; the commit is not on it")
            return str(made.id)

        return await self._forges.clients.run(f"POST commit on {branch}", create)

    async def open_pull_request(
        self, repo: Repository, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        data = {"source_branch": head, "target_branch": base, "title": title, "description": body}

        def create(gl: gitlab.Gitlab) -> PullRequest:
            return _pull_request(_project(gl, repo).mergerequests.create(data).attributes)

        return await self._forges.clients.run(f"POST merge request from {head}", create)

    async def branch_tip(self, repo: Repository, branch: str) -> BranchTip | None:
        """GitLab's branch answer carries its commit's parents and message."""

        def get(gl: gitlab.Gitlab) -> BranchTip | None:
            try:
                commit = _project(gl, repo).branches.get(branch).commit
            except gitlab.exceptions.GitlabGetError as exc:
                if is_not_found(exc):
                    return None
                raise
            parents = tuple(str(p) for p in commit.get("parent_ids") or ())
            return BranchTip(str(commit["id"]), parents, str(commit.get("message") or ""))

        return await self._forges.clients.run(f"GET branch {branch}", get)

    async def open_pull_request_from(
        self, repo: Repository, head: str, base: str
    ) -> PullRequest | None:
        def find(gl: gitlab.Gitlab) -> PullRequest | None:
            found = _project(gl, repo).mergerequests.list(
                state="opened", source_branch=head, target_branch=base, get_all=False
            )
            return _pull_request(found[0].attributes) if found else None

        return await self._forges.clients.run(f"GET merge requests from {head}", find)

    async def merge_pull_request(self, repo: Repository, number: int, message: str) -> str:
        def merge(gl: gitlab.Gitlab) -> str:
            merged = _merge_request(gl, repo, number).merge(merge_commit_message=message)
            return str(merged.get("merge_commit_sha") or "")

        sha = await self._forges.clients.run(f"PUT merge of !{number}", merge)
        if not sha:
            raise GitLabError(f"merge request !{number} was merged without a merge commit")
        return sha

    @staticmethod
    def _tracking_issue(project: Project, key: str, login: str) -> Any:
        """The bot's open issue whose description carries the marker of `key` (in a thread)."""
        issues = project.issues.list(state="opened", author_username=login, get_all=True)
        for issue in sorted(issues, key=lambda i: int(i.iid)):
            if _author(issue) == login and parse_marker(str(issue.description or ""), key) == 1:
                return issue
        return None

    @staticmethod
    def _sync_issue_notes(notes: Any, key: str, login: str, parts: Sequence[str]) -> None:
        """Parts after the first (the description) as the issue's notes, by part number."""
        mine: dict[int, Any] = {}
        for note in notes.list(get_all=True):
            number = parse_marker(str(note.body or ""), key)
            if number is not None and _author(note) == login and not note.system:
                mine.setdefault(number, note)
        for part, body in enumerate(parts[1:], 2):
            if part not in mine:
                notes.create({"body": body})
            elif mine[part].body != body:
                notes.update(mine[part].id, {"body": body})
        for number, note in mine.items():
            if number > len(parts):  # the drift got shorter: drop parts that no longer exist
                notes.delete(note.id)


def _repository(project: dict[str, Any]) -> Repository:
    return Repository(
        GITLAB,
        str(project["path_with_namespace"]),
        str(project["http_url_to_repo"]),
        str(project.get("default_branch") or "main"),
    )


def _project(gl: gitlab.Gitlab, repo: Repository) -> Project:
    return gl.projects.get(repo.slug, lazy=True)  # the path, URL-encoded by python-gitlab


def _merge_request(gl: gitlab.Gitlab, repo: Repository, number: int) -> ProjectMergeRequest:
    return _project(gl, repo).mergerequests.get(number, lazy=True)


def _actions(files: Sequence[FileChange]) -> list[dict[str, str]]:
    actions = []
    for change in files:
        if change.content is None:
            actions.append({"action": "delete", "file_path": change.path})
            continue
        content = base64.b64encode(change.content).decode()
        verb = "create" if change.new_file else "update"
        action = {"action": verb, "file_path": change.path, "encoding": "base64"}
        actions.append({**action, "content": content})
    return actions


def _status_data(report: CheckReport) -> dict[str, str]:
    state = _COMMIT_STATES[report.state]
    return {"state": state, "name": CHECK_NAME, "description": _short(report.title)}


def _newest_status(commit: ProjectCommit) -> Any:
    mine = [s for s in commit.statuses.list(get_all=True) if s.name == CHECK_NAME]
    return max(mine, key=lambda status: int(status.id)) if mine else None


def _status_reads(status: Any, data: dict[str, str]) -> bool:
    return (status.status, status.description or "") == (data["state"], data["description"])


def _post_status(commit: ProjectCommit, data: dict[str, str]) -> None:
    try:
        _create_status(commit, data)
    except gitlab.exceptions.GitlabCreateError as exc:
        # A fork's commit is on no branch of this project: GitLab then needs a ref.
        ref = _merge_request_ref(commit) if _needs_ref(exc) else None
        if ref is None:
            raise
        _create_status(commit, {**data, "ref": ref})


def _create_status(commit: ProjectCommit, data: dict[str, str]) -> None:
    try:
        commit.statuses.create(data)
    except gitlab.exceptions.GitlabCreateError as exc:
        # GitLab refuses to move a status to the state it is already in: it is there.
        if exc.response_code != 400 or "Cannot transition" not in str(exc.error_message):
            raise


def _needs_ref(exc: gitlab.exceptions.GitlabCreateError) -> bool:
    return exc.response_code == 404 and "References for commit" in str(exc.error_message)


def _merge_request_ref(commit: ProjectCommit) -> str | None:
    """The ref GitLab keeps for the head of the open merge request that has `commit`."""
    found = commit.merge_requests(get_all=True)
    iids = [int(m["iid"]) for m in found if m.get("state") == "opened"]
    return f"refs/merge-requests/{iids[0]}/head" if iids else None


def _anchors_of_commit(project: Project, commit: str, login: str) -> list[Anchor]:
    """The anchors in `login`'s notes on the merge requests that have `commit`."""
    found: list[Anchor] = []
    for mr in project.commits.get(commit, lazy=True).merge_requests(get_all=True):
        notes = project.mergerequests.get(mr["iid"], lazy=True).notes.list(get_all=True)
        mine = (n for n in notes if _author(n) == login and not n.system)
        found += [a for n in mine for a in anchors_in(str(n.body or ""))]
    return found


def _author(note: Any) -> str | None:
    author = getattr(note, "author", None) or {}
    return str(author.get("username")) if author.get("username") else None


def _resulting_commits(mr: dict[str, Any]) -> set[str]:
    """The commits a merged MR can have put on the target branch (merge, squash, fast-forward)."""
    return {str(mr[k]) for k in ("merge_commit_sha", "squash_commit_sha", "sha") if mr.get(k)}


def _pull_request(data: dict[str, Any]) -> PullRequest:
    refs = data.get("diff_refs") or {}
    return PullRequest(
        number=int(data["iid"]),
        url=str(data.get("web_url") or ""),
        author=str((data.get("author") or {}).get("username") or ""),
        base_sha=str(refs.get("base_sha") or ""),
        head_sha=str(data.get("sha") or refs.get("head_sha") or ""),
        from_fork=data.get("source_project_id") != data.get("target_project_id"),
        merged=data.get("state") == "merged",
        merge_commit=data.get("merge_commit_sha") or data.get("squash_commit_sha"),
        mergeability=_mergeability(data),
        merge_ref=f"refs/merge-requests/{int(data['iid'])}/merge",
    )


def _mergeability(data: dict[str, Any]) -> Mergeability:
    """GitLab checks mergeability in the background: `detailed_merge_status` (or the older
    `merge_status`) says when it has not yet; `has_conflicts` says whether the merge ref
    can be made at all."""
    if data.get("has_conflicts") or data.get("detailed_merge_status") == "conflict":
        return Mergeability.CONFLICT
    status = data.get("detailed_merge_status") or data.get("merge_status")
    return Mergeability.UNKNOWN if status in _NOT_CHECKED else Mergeability.MERGEABLE


def _short(text: str) -> str:
    limit = _STATUS_DESCRIPTION_LIMIT
    return text if len(text) <= limit else text[: limit - 1] + "…"
