"""The Forge port on GitHub (gidgethub.aiohttp): comments, checks, deployments, permissions."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import aiohttp
import gidgethub

from bot.config.secrets import Secret
from bot.config.settings import Settings, SettingsError
from bot.core.checkwrites import CheckSeen, CheckWrite, check_write
from bot.core.ledgerchain import Anchor, anchor_text, anchors_in
from bot.core.markdown import GITHUB_COMMENT_LIMIT, parse_marker
from bot.core.mergepreviews import Mergeability
from bot.core.proposalresume import BranchTip
from bot.events import Repository
from bot.forges.github.api import GitHubClient, GitHubError, Lane, Pacing
from bot.forges.github.auth import AppCredentials, ClientFactory, Credentials, PersonalToken
from bot.forges.github.listing import (
    installation_ids,
    installation_repositories,
    token_repositories,
)
from bot.forges.ports import (
    CHECK_NAME,
    BranchMissing,
    CheckReport,
    CheckState,
    DeploymentReport,
    FileChange,
    PullRequest,
)
from bot.telemetry.metrics import Metrics

T = TypeVar("T")
ANNOTATIONS_PER_REQUEST = 50  # GitHub's limit for one check-run create or update
_STATUS_DESCRIPTION_LIMIT = 140
_ANCHORED_DEPLOYMENTS = 30  # the newest deployments whose statuses `audit --verify` reads
_SUMMARY_LIMIT = 60_000
_WRITE_ROLES = frozenset({"admin", "maintain", "write"})
# `mergeable: null` means GitHub is still computing the test merge in the background.
_MERGEABILITY = {True: Mergeability.MERGEABLE, False: Mergeability.CONFLICT}
# A commit status has no "neutral": a superseded head's status passes, and says why.
_STATUS_STATES = {
    CheckState.PENDING: "pending",
    CheckState.SUCCESS: "success",
    CheckState.FAILURE: "failure",
    CheckState.NEUTRAL: "success",
}


class GitHubForges:
    """Builds GitHub clients for installations; one per app, sharing one ClientSession."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        metrics: Metrics,
        pacing: Pacing | None = None,
    ) -> None:
        self.session, self.metrics, self.pacing = session, metrics, pacing or Pacing()
        self.base_url = settings.github_api_url.rstrip("/")
        self._lanes: dict[str, Lane] = {}
        self.credentials = _credentials(settings, self.client, self.pacing)

    def client(self, token: Secret | None, lane: str, conditional: bool = False) -> GitHubClient:
        """A client in the lane; a `conditional` one sends the ETags the lane remembers.
        The cache lives in memory, per replica: an ETag fingerprints the content, so one a
        replica remembers still gets a 304 while nothing changed, and after a restart one
        full request per listing and branch refills it. Kept in the store it would cost a
        write per request and a schema change, to save that one request."""
        shared = self._lanes.setdefault(lane, Lane())
        return GitHubClient(
            self.session,
            token=token.reveal() if token else None,
            base_url=self.base_url,
            lane=shared,
            pacing=self.pacing,
            metrics=self.metrics,
            installation=lane,
            cache=shared.etags if conditional else None,
        )

    def forge_for(self, repo: Repository) -> GitHubForge:
        return GitHubForge(self)

    async def served_repositories(self) -> tuple[Repository, ...]:
        """Every repository of every installation of the App, or that the token can see."""
        credentials = self.credentials
        if not isinstance(credentials, AppCredentials):
            token = await credentials.token(None)
            return tuple(await token_repositories(self.client(token, "token", True)))
        found: list[Repository] = []
        app = self.client(None, "app", conditional=True)
        for installation in await installation_ids(app, credentials.app_jwt()):
            token = await credentials.token(installation)
            client = self.client(token, str(installation), conditional=True)
            found += await installation_repositories(client, installation)
        return tuple(found)


def check_github_settings(settings: Settings) -> None:
    """Raise SettingsError unless GitHub credentials of one kind are configured."""
    if not (settings.github_token or (settings.github_app_id and settings.github_private_key)):
        raise SettingsError(
            "no GitHub credentials: set GITOPS_BOT_GITHUB_APP_ID and "
            "GITOPS_BOT_GITHUB_PRIVATE_KEY (a GitHub App, recommended) or GITOPS_BOT_GITHUB_TOKEN"
        )


def _credentials(settings: Settings, clients: ClientFactory, pacing: Pacing) -> Credentials:
    check_github_settings(settings)
    if settings.github_app_id and settings.github_private_key:
        return AppCredentials(
            settings.github_app_id,
            settings.github_private_key,
            clients,
            pacing.clock,
            settings.github_bot_login,
        )
    assert settings.github_token is not None  # checked above
    return PersonalToken(settings.github_token, clients, settings.github_bot_login)


class GitHubForge:
    """The Forge Protocol for GitHub repositories."""

    comment_limit = GITHUB_COMMENT_LIMIT
    command_permission = "write access to this repository"

    def __init__(self, forges: GitHubForges) -> None:
        self._forges = forges
        # (repository, commit) -> the newest gitops-bot run: its id, and what it reads
        self._check_runs: dict[tuple[str, str], tuple[int, CheckSeen]] = {}

    async def _client(self, repo: Repository, conditional: bool = False) -> GitHubClient:
        token = await self._forges.credentials.token(repo.installation)
        return self._forges.client(token, str(repo.installation or "token"), conditional)

    async def upsert_comment(
        self, repo: Repository, number: int, kind: str, parts: Sequence[str]
    ) -> None:
        gh, login = await self._client(repo), await self._forges.credentials.login()
        await self._sync_parts(gh, login, repo, number, kind, dict(enumerate(parts, 1)))

    async def _sync_parts(
        self,
        gh: GitHubClient,
        login: str,
        repo: Repository,
        number: int,
        kind: str,
        parts: Mapping[int, str],
    ) -> None:
        """The bot's `kind` comments on issue or PR `number` read `parts`, by part number."""
        existing: dict[int, dict[str, Any]] = {}
        url = _repo_url(repo, f"/issues/{number}/comments?per_page=100")
        async for comment in _iterate(gh.getiter(url), f"GET {url}"):
            part = parse_marker(str(comment.get("body") or ""), kind)
            if part is not None and (comment.get("user") or {}).get("login") == login:
                existing.setdefault(part, comment)
        for part, body in parts.items():
            if part not in existing:
                await _call(
                    gh.post(_repo_url(repo, f"/issues/{number}/comments"), data={"body": body}),
                    "POST comment",
                )
            elif existing[part]["body"] != body:
                edit = _repo_url(repo, f"/issues/comments/{existing[part]['id']}")
                await _call(gh.patch(edit, data={"body": body}), f"PATCH {edit}")
        for part, comment in sorted(existing.items()):
            if part not in parts:  # the plan got shorter: drop parts that no longer exist
                old = _repo_url(repo, f"/issues/comments/{comment['id']}")
                await _call(gh.delete(old), f"DELETE {old}")

    async def reply(
        self, repo: Repository, number: int, text: str, on_issue: bool = False
    ) -> None:  # issues and pull requests share their comments API on GitHub
        url = _repo_url(repo, f"/issues/{number}/comments")
        await _call((await self._client(repo)).post(url, data={"body": text}), f"POST {url}")

    async def report_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        gh = await self._client(repo)
        if not self._forges.credentials.is_app:
            await self._commit_status(gh, repo, commit, report, only_if_absent=False)
            return
        seen = await self._newest_run(gh, repo, commit)
        await self._write_run(gh, repo, commit, report, seen)

    async def open_check(self, repo: Repository, commit: str, report: CheckReport) -> None:
        gh = await self._client(repo)
        if not self._forges.credentials.is_app:
            await self._commit_status(gh, repo, commit, report, only_if_absent=True)
        elif await self._newest_run(gh, repo, commit) is None:
            await self._write_run(gh, repo, commit, report, None)

    async def conclude_open_check(self, repo: Repository, commit: str, report: CheckReport) -> bool:
        gh = await self._client(repo)
        if not self._forges.credentials.is_app:
            newest = await self._newest_status(gh, repo, commit)
            if newest is None or newest.get("state") != "pending":
                return False
            await self._commit_status(gh, repo, commit, report, only_if_absent=False)
            return True
        runs = [r for r in await self._runs(gh, repo, commit) if r.get("status") != "completed"]
        for run in runs:
            self._check_runs[(repo.slug, commit)] = (int(run["id"]), CheckSeen(True, ""))
            await self._write_run(gh, repo, commit, report, CheckSeen(True, ""))
        return bool(runs)

    async def _newest_run(
        self, gh: GitHubClient, repo: Repository, commit: str
    ) -> CheckSeen | None:
        """The newest `gitops-bot` run of `commit`: remembered from this forge's own
        writes, else asked for (`external_id` holds the fingerprint of what it reads)."""
        known = self._check_runs.get((repo.slug, commit))
        if known is not None:
            return known[1]
        runs = await self._runs(gh, repo, commit)
        if not runs:
            return None
        newest = max(runs, key=lambda run: int(run["id"]))
        seen = CheckSeen(newest.get("status") != "completed", str(newest.get("external_id") or ""))
        self._check_runs[(repo.slug, commit)] = (int(newest["id"]), seen)
        return seen

    async def _runs(self, gh: GitHubClient, repo: Repository, commit: str) -> list[dict[str, Any]]:
        """The bot's `gitops-bot` check runs of `commit` (runs of other apps left out)."""
        url = _repo_url(
            repo, f"/commits/{commit}/check-runs?check_name={CHECK_NAME}&filter=all&per_page=100"
        )
        found = await _call(gh.getitem(url), f"GET {url}")
        app_id = self._forges.credentials.app_id
        runs = found.get("check_runs") or [] if isinstance(found, dict) else []
        return [r for r in runs if app_id is None or str((r.get("app") or {}).get("id")) == app_id]

    async def _write_run(
        self,
        gh: GitHubClient,
        repo: Repository,
        commit: str,
        report: CheckReport,
        seen: CheckSeen | None,
    ) -> None:
        """Make the run read `report` with the fewest writes (`check_write` decides)."""
        pending, fingerprint = report.state is CheckState.PENDING, report_fingerprint(report)
        write = check_write(seen, pending, fingerprint)
        if write is CheckWrite.NONE:
            return
        output = {"title": report.title, "summary": report.summary[:_SUMMARY_LIMIT]}
        batches = _batches(report.annotations) or [()]
        body = {**_run_state(report), "external_id": fingerprint}
        body["output"] = {**output, "annotations": list(batches[0])}
        if write is CheckWrite.CREATE:
            url = _repo_url(repo, "/check-runs")
            data = {"name": CHECK_NAME, "head_sha": commit, **body}
            run_id = int((await _call(gh.post(url, data=data), f"POST {url}"))["id"])
        else:
            run_id = self._check_runs[(repo.slug, commit)][0]
            await self._patch_check(gh, repo, run_id, body)
        self._check_runs[(repo.slug, commit)] = (run_id, CheckSeen(pending, fingerprint))
        for batch in batches[1:]:  # later batches add their annotations to the same run
            await self._patch_check(
                gh, repo, run_id, {"output": {**output, "annotations": list(batch)}}
            )

    async def _patch_check(
        self, gh: GitHubClient, repo: Repository, run_id: int, body: dict[str, Any]
    ) -> None:
        url = _repo_url(repo, f"/check-runs/{run_id}")
        await _call(gh.patch(url, data=body), f"PATCH {url}")

    async def _commit_status(
        self,
        gh: GitHubClient,
        repo: Repository,
        commit: str,
        report: CheckReport,
        only_if_absent: bool,
    ) -> None:
        """A commit status (a token has no check runs); none is added when the newest one
        already reads the same, or (`only_if_absent`) when there is one at all."""
        data = {
            "state": _STATUS_STATES[report.state],
            "context": CHECK_NAME,
            "description": _short(report.title, _STATUS_DESCRIPTION_LIMIT),
        }
        newest = await self._newest_status(gh, repo, commit)
        if newest is not None and (only_if_absent or _status_reads(newest, data)):
            return
        url = _repo_url(repo, f"/statuses/{commit}")
        await _call(gh.post(url, data=data), f"POST {url}")

    async def _newest_status(
        self, gh: GitHubClient, repo: Repository, commit: str
    ) -> dict[str, Any] | None:
        url = _repo_url(repo, f"/commits/{commit}/statuses?per_page=100")
        found = await _call(gh.getitem(url), f"GET {url}")
        statuses = found if isinstance(found, list) else []
        mine = [s for s in statuses if s.get("context") == CHECK_NAME]
        return mine[0] if mine else None  # GitHub lists the newest first

    async def pull_request(self, repo: Repository, number: int) -> PullRequest:
        url = _repo_url(repo, f"/pulls/{number}")
        return _pull_request(
            repo, await _call((await self._client(repo)).getitem(url), f"GET {url}")
        )

    async def pull_request_for_commit(self, repo: Repository, commit: str) -> PullRequest | None:
        url = _repo_url(repo, f"/commits/{commit}/pulls")
        found = await _call((await self._client(repo)).getitem(url), f"GET {url}")
        pulls = [_pull_request(repo, p) for p in found] if isinstance(found, list) else []
        merged = [p for p in pulls if p.merged]
        exact = [p for p in merged if p.merge_commit == commit]
        candidates = exact or merged
        return candidates[0] if candidates else None

    async def approvers(self, repo: Repository, number: int) -> tuple[str, ...]:
        url = _repo_url(repo, f"/pulls/{number}/reviews?per_page=100")
        latest: dict[str, str] = {}
        async for review in _iterate((await self._client(repo)).getiter(url), f"GET {url}"):
            user, state = (review.get("user") or {}).get("login"), review.get("state")
            if user and state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[user] = state  # reviews come oldest first: the last word counts
        return tuple(sorted(u for u, s in latest.items() if s == "APPROVED"))

    async def can_write(self, repo: Repository, user: str) -> bool:
        url = _repo_url(repo, f"/collaborators/{user}/permission")
        try:
            data = await (await self._client(repo)).getitem(url)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 404:
                return False  # not a collaborator at all
            raise _error(exc, f"GET {url}") from exc
        except gidgethub.GitHubException as exc:
            raise _error(exc, f"GET {url}") from exc
        roles = {str(data.get("permission")), str(data.get("role_name"))}
        return bool(roles & _WRITE_ROLES)

    async def record_deployment(
        self, repo: Repository, commit: str, report: DeploymentReport
    ) -> None:
        gh = await self._client(repo)
        deployment_id = await self._deployment(gh, repo, commit, report.environment)
        url = _repo_url(repo, f"/deployments/{deployment_id}/statuses")
        data = {
            "state": str(report.state),
            "environment": report.environment,
            "description": _status_description(report),
            "auto_inactive": True,
        }
        await _call(gh.post(url, data=data), f"POST {url}")

    async def ledger_anchors(self, repo: Repository) -> tuple[Anchor, ...]:
        """The anchors in the bot's own statuses of the repository's newest deployments."""
        gh, login = await self._client(repo), await self._forges.credentials.login()
        url = _repo_url(repo, f"/deployments?per_page={_ANCHORED_DEPLOYMENTS}")
        deployments = await _call(gh.getitem(url), f"GET {url}")
        found: list[Anchor] = []
        for deployment in deployments if isinstance(deployments, list) else ():
            url = _repo_url(repo, f"/deployments/{deployment['id']}/statuses?per_page=100")
            async for status in _iterate(gh.getiter(url), f"GET {url}"):
                if (status.get("creator") or {}).get("login") == login:
                    found += anchors_in(str(status.get("description") or ""))
        return tuple(found)

    async def _deployment(
        self, gh: GitHubClient, repo: Repository, commit: str, environment: str
    ) -> int:
        """The deployment of `commit` to `environment`: reused when a retry made it already."""
        url = _repo_url(repo, f"/deployments?sha={commit}&environment={environment}")
        found = await _call(gh.getitem(url), f"GET {url}")
        if isinstance(found, list) and found:
            return int(found[0]["id"])
        url = _repo_url(repo, "/deployments")
        data = {
            "ref": commit,
            "environment": environment,
            "auto_merge": False,
            "required_contexts": [],
            "description": f"gitops-bot apply of {commit[:12]}",
        }
        created = await _call(gh.post(url, data=data), f"POST {url}")
        return int(created["id"])

    async def git_auth_header(self, repo: Repository) -> Secret | None:
        token = await self._forges.credentials.token(repo.installation)
        basic = base64.b64encode(f"x-access-token:{token.reveal()}".encode()).decode()
        return Secret(f"Authorization: Basic {basic}")

    async def branch_head(self, repo: Repository, branch: str) -> str:
        url = _repo_url(repo, f"/branches/{quote(branch, safe='')}")
        try:
            data = await (await self._client(repo, conditional=True)).getitem(url)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 404:
                raise BranchMissing(str(_error(exc, f"GET {url}"))) from exc
            raise _error(exc, f"GET {url}") from exc
        except gidgethub.GitHubException as exc:
            raise _error(exc, f"GET {url}") from exc
        return str(data["commit"]["sha"])

    async def has_file(self, repo: Repository, commit: str, path: str) -> bool:
        url = _repo_url(repo, f"/contents/{quote(path)}?ref={commit}")
        try:
            await (await self._client(repo)).getitem(url)
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 404:
                return False
            raise _error(exc, f"GET {url}") from exc
        except gidgethub.GitHubException as exc:
            raise _error(exc, f"GET {url}") from exc
        return True

    async def upsert_tracking_issue(
        self, repo: Repository, key: str, title: str, parts: Sequence[str]
    ) -> str:
        gh, login = await self._client(repo), await self._forges.credentials.login()
        found = await self._tracking_issue(gh, login, repo, key)
        data = {"title": title, "body": parts[0]}
        if found is None:
            url = _repo_url(repo, "/issues")
            issue: dict[str, Any] = await _call(gh.post(url, data=data), f"POST {url}")
        elif (found.get("title"), found.get("body")) != (title, parts[0]):
            url = _repo_url(repo, f"/issues/{found['number']}")
            issue = await _call(gh.patch(url, data=data), f"PATCH {url}")
        else:
            issue = found
        rest = dict(enumerate(parts, 1))
        del rest[1]  # part 1 is the description; later parts are the issue's comments
        await self._sync_parts(gh, login, repo, int(issue["number"]), key, rest)
        return str(issue.get("html_url") or "")

    async def close_tracking_issue(self, repo: Repository, key: str, comment: str) -> bool:
        gh, login = await self._client(repo), await self._forges.credentials.login()
        issue = await self._tracking_issue(gh, login, repo, key)
        if issue is None:
            return False
        url = _repo_url(repo, f"/issues/{issue['number']}")
        await _call(gh.post(f"{url}/comments", data={"body": comment}), f"POST {url}/comments")
        closing = {"state": "closed", "state_reason": "completed"}
        await _call(gh.patch(url, data=closing), f"PATCH {url}")
        return True

    async def _tracking_issue(
        self, gh: GitHubClient, login: str, repo: Repository, key: str
    ) -> dict[str, Any] | None:
        """The bot's open issue whose description carries the marker of `key`."""
        url = _repo_url(repo, f"/issues?state=open&creator={quote(login)}&per_page=100")
        async for issue in _iterate(gh.getiter(url), f"GET {url}"):
            mine = (issue.get("user") or {}).get("login") == login
            body = str(issue.get("body") or "")
            if mine and "pull_request" not in issue and parse_marker(body, key) == 1:
                return issue
        return None

    async def create_branch(self, repo: Repository, branch: str, commit: str) -> None:
        url = _repo_url(repo, "/git/refs")
        data = {"ref": f"refs/heads/{branch}", "sha": commit}
        await _call((await self._client(repo)).post(url, data=data), f"POST {url}")

    async def commit_files(
        self,
        repo: Repository,
        branch: str,
        parent: str,
        message: str,
        files: Sequence[FileChange],
    ) -> str:
        """Through the Git Data API: blobs, a tree on the parent's, a commit, the ref."""
        gh = await self._client(repo)
        parent_url = _repo_url(repo, f"/git/commits/{parent}")
        base_tree = (await _call(gh.getitem(parent_url), f"GET {parent_url}"))["tree"]["sha"]
        entries = [await self._tree_entry(gh, repo, change) for change in files]
        url = _repo_url(repo, "/git/trees")
        tree = await _call(gh.post(url, data={"base_tree": base_tree, "tree": entries}), url)
        url = _repo_url(repo, "/git/commits")
        data = {"message": message, "tree": tree["sha"], "parents": [parent]}
        commit = str((await _call(gh.post(url, data=data), f"POST {url}"))["sha"])
        url = _repo_url(repo, f"/git/refs/heads/{quote(branch, safe='/')}")
        await _call(gh.patch(url, data={"sha": commit}), f"PATCH {url}")
        return commit

    async def _tree_entry(
        self, gh: GitHubClient, repo: Repository, change: FileChange
    ) -> dict[str, Any]:
        entry = {"path": change.path, "mode": "100644", "type": "blob"}
        if change.content is None:
            return {**entry, "sha": None}  # GitHub's way of deleting a path from the tree
        url = _repo_url(repo, "/git/blobs")
        data = {"content": base64.b64encode(change.content).decode(), "encoding": "base64"}
        blob = await _call(gh.post(url, data=data), f"POST {url}")
        return {**entry, "sha": blob["sha"]}

    async def open_pull_request(
        self, repo: Repository, head: str, base: str, title: str, body: str
    ) -> PullRequest:
        url = _repo_url(repo, "/pulls")
        data = {"title": title, "head": head, "base": base, "body": body}
        created = await _call((await self._client(repo)).post(url, data=data), f"POST {url}")
        return _pull_request(repo, created)

    async def branch_tip(self, repo: Repository, branch: str) -> BranchTip | None:
        gh, url = await self._client(repo), _repo_url(repo, f"/branches/{quote(branch, safe='')}")
        try:
            sha = str((await gh.getitem(url))["commit"]["sha"])
        except gidgethub.BadRequest as exc:
            if int(exc.status_code) == 404:
                return None
            raise _error(exc, f"GET {url}") from exc
        except gidgethub.GitHubException as exc:
            raise _error(exc, f"GET {url}") from exc
        url = _repo_url(repo, f"/git/commits/{sha}")
        commit = await _call(gh.getitem(url), f"GET {url}")
        parents = tuple(str(p["sha"]) for p in commit.get("parents") or ())
        return BranchTip(sha, parents, str(commit.get("message") or ""))

    async def open_pull_request_from(
        self, repo: Repository, head: str, base: str
    ) -> PullRequest | None:
        owner = repo.slug.partition("/")[0]
        query = urlencode({"state": "open", "head": f"{owner}:{head}", "base": base})
        url = _repo_url(repo, f"/pulls?{query}")
        async for pull in _iterate((await self._client(repo)).getiter(url), f"GET {url}"):
            return _pull_request(repo, pull)
        return None

    async def merge_pull_request(self, repo: Repository, number: int, message: str) -> str:
        url = _repo_url(repo, f"/pulls/{number}/merge")
        data = {"merge_method": "merge", "commit_title": message}
        merged = await _call((await self._client(repo)).put(url, data=data), f"PUT {url}")
        return str(merged["sha"])


def _repo_url(repo: Repository, rest: str) -> str:
    owner, _, name = repo.slug.partition("/")
    return f"/repos/{owner}/{name}{rest}"


def _pull_request(repo: Repository, data: dict[str, Any]) -> PullRequest:
    head_repo = data["head"].get("repo") or {}
    return PullRequest(
        number=int(data["number"]),
        url=str(data.get("html_url") or ""),
        author=str(data["user"]["login"]),
        base_sha=str(data["base"]["sha"]),
        head_sha=str(data["head"]["sha"]),
        from_fork=head_repo.get("full_name") != repo.slug,
        merged=bool(data.get("merged_at")),
        merge_commit=data.get("merge_commit_sha"),
        mergeability=_mergeability(data.get("mergeable")),
        merge_ref=f"refs/pull/{int(data['number'])}/merge",
    )


def _mergeability(mergeable: object) -> Mergeability:
    if mergeable is None:
        return Mergeability.UNKNOWN
    return _MERGEABILITY[bool(mergeable)]


def _batches(items: Sequence[Any]) -> list[tuple[dict[str, Any], ...]]:
    annotations = [
        {
            "path": a.path,
            "start_line": a.line,
            "end_line": a.line,
            "annotation_level": a.level,
            "title": a.title,
            "message": a.message,
        }
        for a in items
    ]
    size = ANNOTATIONS_PER_REQUEST
    return [tuple(annotations[i : i + size]) for i in range(0, len(annotations), size)]


def _run_state(report: CheckReport) -> dict[str, Any]:
    if report.state is CheckState.PENDING:
        return {"status": "in_progress"}
    return {"conclusion": str(report.state)}


def report_fingerprint(report: CheckReport) -> str:
    """What a check run reads, as a digest kept in its `external_id`: a re-plan that
    comes to the same report finds it there and writes nothing."""
    data = json.dumps(dataclasses.asdict(report), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _status_reads(status: dict[str, Any], data: dict[str, str]) -> bool:
    return (status.get("state"), status.get("description")) == (data["state"], data["description"])


def _status_description(report: DeploymentReport) -> str:
    """The description, shortened to fit, and the ledger anchor, which never is."""
    suffix = f" · {anchor_text(report.anchor)}" if report.anchor else ""
    return _short(report.description, _STATUS_DESCRIPTION_LIMIT - len(suffix)) + suffix


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def _call(request: Awaitable[T], what: str) -> T:
    try:
        return await request
    except gidgethub.GitHubException as exc:
        raise _error(exc, what) from exc


async def _iterate(items: AsyncIterator[Any], what: str) -> AsyncIterator[dict[str, Any]]:
    try:
        async for item in items:
            yield item
    except gidgethub.GitHubException as exc:
        raise _error(exc, what) from exc


def _error(exc: gidgethub.GitHubException, what: str) -> GitHubError:
    status = f" {int(exc.status_code)}" if isinstance(exc, gidgethub.HTTPException) else ""
    return GitHubError(f"GitHub API {what} failed:{status} {exc}")
