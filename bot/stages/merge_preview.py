"""The commits a pull request's preview compares: the forge's merge result when it has one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from bot.config.secrets import Secret
from bot.core.mergepreviews import Mergeability, MergeResult, PreviewTarget, preview_target
from bot.events import Repository
from bot.forges.ports import Forge, PullRequest
from bot.git.mirrors import Mirrors, parents
from bot.git.repos import GitRepo

# GitHub answers `mergeable: null` while it computes the test merge in the background
# (GitLab: `detailed_merge_status: checking`); it is asked again this often, then the
# head is previewed, saying why.
POLL_SECONDS = (1.0, 2.0, 4.0)
FORGE_NAMES = {"github": "GitHub", "gitlab": "GitLab"}
Sleep = Callable[[float], Awaitable[None]]


async def current_pull(forge: Forge, repo: Repository, number: int, sleep: Sleep) -> PullRequest:
    """The pull request as the forge has it now, asked again (a bounded number of times)
    while the forge has not computed the merge result yet."""
    pull = await forge.pull_request(repo, number)
    for seconds in POLL_SECONDS:
        if pull.mergeability is not Mergeability.UNKNOWN:
            break
        await sleep(seconds)
        pull = await forge.pull_request(repo, number)
    return pull


async def merge_target(
    mirrors: Mirrors, repo: Repository, pull: PullRequest, auth: Secret | None
) -> tuple[PreviewTarget, GitRepo]:
    """What to preview (the merge result, or the head and why), and the mirror holding it."""
    result = None
    if pull.mergeability is Mergeability.MERGEABLE and pull.merge_ref:
        commit = await mirrors.ref_target(repo, pull.merge_ref, auth)
        if commit is not None:
            mirror = await mirrors.fetch(repo, (pull.base_sha, pull.head_sha, commit), auth)
            result = MergeResult(commit, await parents(mirror, commit))
    forge = FORGE_NAMES.get(repo.forge, repo.forge)
    target = preview_target(pull.head_sha, pull.base_sha, pull.mergeability, result, forge)
    mirror = await mirrors.fetch(repo, (target.base, target.rendered), auth)
    return target, mirror
