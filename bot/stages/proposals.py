"""Pull requests the bot opens itself: a rollback of one environment, a promotion between two.

Both read the default branch's head (and, for a rollback, the commit it goes back to) from
a local repository, decide in bot.core, and open the pull request through the Forge port;
the pull request's own `opened` webhook then brings the usual preview.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.promotions import (
    ImageSite,
    ambiguous_keys,
    files_changed,
    image_sites,
    promotions,
)
from bot.core.proposalresume import Resume, resume_step
from bot.core.proposaltexts import (
    Introduced,
    crd_note,
    crd_warning,
    promotion_body,
    promotion_title,
    rollback_body,
    rollback_title,
)
from bot.core.repoconfig import (
    CONFIG_PATH,
    ConfigError,
    Environment,
    RepoConfig,
    SourceType,
    parse_config,
)
from bot.core.rollbacks import (
    ProposalRefused,
    RollbackTarget,
    changed_paths,
    defines_crds,
    read_rollback_trailer,
    restored_files,
    rollback_trailer,
)
from bot.events import Repository
from bot.forges.ports import FileChange, Forge, PullRequest
from bot.git.repos import GitError, GitRepo

_REGULAR = frozenset({"100644", "100755"})
_YAML = (".yaml", ".yml")


@dataclass(frozen=True)
class Proposal:
    """A pull request to open: one commit of `files` on a new branch off the default branch."""

    branch: str
    title: str
    body: str
    files: tuple[FileChange, ...]
    warnings: tuple[str, ...] = ()  # said again where the request was made
    trailer: str = ""  # the commit message's trailer, which the preview reads


async def read_config(git: GitRepo, commit: str) -> RepoConfig:
    """The repository's config at `commit` (ConfigError when it cannot be used)."""
    return parse_config(await git.read_file(commit, CONFIG_PATH))


def environment_named(config: RepoConfig, name: str) -> Environment:
    environment = config.environment(name)
    if environment is None:
        names = ", ".join(e.name for e in config.environments) or "none"
        raise ProposalRefused(f"there is no environment {name!r}; the config has: {names}")
    return environment


def sources(environment: Environment) -> tuple[str, ...]:
    """What `.gitops-bot.yaml` names as the environment's own inputs: its folder (plain
    files, a kustomize overlay, a chart) and its Helm values files. Shared kustomize bases
    are not the environment's own: restoring them would move other environments too."""
    return (environment.path, *environment.source.values)


async def blobs_below(git: GitRepo, commit: str, roots: Sequence[str]) -> dict[str, str]:
    """path -> blob of the regular files below `roots` (folders or single files)."""
    found: dict[str, str] = {}
    for root in roots:
        entry = await git.entry(commit, root) if root not in ("", ".") else None
        entries = [entry] if entry and entry.kind == "blob" else await git.list_tree(commit, root)
        found |= {e.path: e.oid for e in entries if e.mode in _REGULAR}
    return found


async def rollback_proposal(
    git: GitRepo, head: str, target: RollbackTarget, suffix: str
) -> Proposal:
    """Restore the environment's sources at `head` to the target commit's."""
    config = await read_config(git, head)
    roots = sources(environment_named(config, target.environment))
    then_commit = target.target.entry.commit
    now, then = await blobs_below(git, head, roots), await blobs_below(git, then_commit, roots)
    restores = restored_files(now, then)
    if not restores:
        raise ProposalRefused(
            f"{target.environment}'s files on the default branch already match "
            f"{then_commit[:12]}; there is nothing to roll back in Git"
        )
    blobs = await git.read_blobs(sorted({oid for oid in [*now.values(), *then.values()]}))
    files = tuple(
        FileChange(r.path, blobs[r.oid] if r.oid else None, r.path not in now) for r in restores
    )
    crds = await schema_changes(git, config, roots, head, then_commit)
    body = rollback_body(target, [r.path for r in restores], crds)
    branch = f"gitops-bot-rollback-{target.environment}-{then_commit[:12]}-{suffix}"
    warnings = (crd_warning(crds),) if crds else ()
    trailer = rollback_trailer(target.environment, then_commit)
    return Proposal(branch, rollback_title(target), body, files, warnings, trailer)


async def schema_changes(
    git: GitRepo, config: RepoConfig, roots: Sequence[str], now_commit: str, then_commit: str
) -> list[str]:
    """The CRD files that differ between two commits: below the repository's `crds:`
    paths, and among the environment's own files (`roots`) those that define a
    CustomResourceDefinition on either side."""
    shared_roots = config.crd_paths
    now, then = (
        await blobs_below(git, now_commit, roots),
        await blobs_below(git, then_commit, roots),
    )
    shared = changed_paths(
        await blobs_below(git, now_commit, shared_roots),
        await blobs_below(git, then_commit, shared_roots),
        shared_roots,
    )
    differing = restored_files(now, then)
    oids = {oid for r in differing for oid in (now.get(r.path), r.oid) if oid}
    blobs = await git.read_blobs(sorted(oids))
    own = [
        r.path
        for r in differing
        if any(defines_crds(blobs[oid]) for oid in (now.get(r.path), r.oid) if oid)
    ]
    return sorted({*shared, *own})


async def rollback_notes(git: GitRepo, base: str, head: str) -> tuple[str, ...]:
    """The preview's warning for a rollback pull request (its commit names the environment
    and the commit it goes back to) that crosses a CRD change."""
    found = read_rollback_trailer(await git.git("log", "-1", "--format=%B", head, "--"))
    if found is None:
        return ()
    environment, then_commit = found
    try:
        await git.resolve(then_commit)
        config = await read_config(git, base)
        roots = sources(environment_named(config, environment))
    except (GitError, ConfigError, ProposalRefused):
        return ()  # not a rollback this repository can describe: the plan says the rest
    crds = await schema_changes(git, config, roots, base, then_commit)
    return (crd_note(crds),) if crds else ()


async def promotion_proposal(
    git: GitRepo, head: str, source: str, target: str, forge: Forge, repo: Repository, suffix: str
) -> Proposal:
    """Carry the source environment's image references into the target's files."""
    config = await read_config(git, head)
    from_env, to_env = environment_named(config, source), environment_named(config, target)
    from_texts = await _image_files(git, head, from_env)
    to_texts = await _image_files(git, head, to_env)
    from_sites = [s for p, t in from_texts.items() for s in _sites(from_env, p, t)]
    to_sites = [s for p, t in to_texts.items() for s in _sites(to_env, p, t)]
    changes = promotions(from_sites, to_sites)
    if not changes:
        raise ProposalRefused(f"{target} already runs the images of {source}; nothing to promote")
    edited = files_changed(to_texts, changes)
    files = tuple(FileChange(path, text.encode()) for path, (text, _) in edited.items())
    origins = {
        change.new: await _introduced(git, head, change.new, list(from_texts), forge, repo)
        for change in changes
    }
    body = promotion_body(source, target, changes, origins, ambiguous_keys(from_sites))
    branch = f"gitops-bot-promote-{source}-to-{target}-{suffix}"
    return Proposal(branch, promotion_title(source, target), body, files)


def _sites(environment: Environment, path: str, text: str) -> list[ImageSite]:
    values_keys = environment.image_values if path in _values_files(environment) else ()
    return list(image_sites(path, text, values_keys))


def _values_files(environment: Environment) -> tuple[str, ...]:
    """A Helm environment's own values files; the chart's values.yaml only when it has none
    (environments often share a chart, whose defaults are then no one's to promote)."""
    if environment.source.type is not SourceType.HELM:
        return ()
    return environment.source.values or (posixpath.join(environment.path, "values.yaml"),)


async def _image_files(git: GitRepo, commit: str, environment: Environment) -> dict[str, str]:
    """The YAML files of the environment that may hold image references, as text. A Helm
    chart's templates are not data: only its values files are read."""
    roots = _values_files(environment) or sources(environment)
    found = await blobs_below(git, commit, roots)
    paths = [p for p in sorted(found) if p.endswith(_YAML) or p.endswith("/Kustomization")]
    blobs = await git.read_blobs([found[p] for p in paths])
    texts = {}
    for path in paths:
        try:
            texts[path] = blobs[found[path]].decode("utf-8")
        except UnicodeDecodeError:
            continue  # not text: it holds no reference the bot could edit
    return texts


async def _introduced(
    git: GitRepo, head: str, value: str, paths: Sequence[str], forge: Forge, repo: Repository
) -> Introduced:
    """The pull request whose merge wrote `value` into the source's files (newest first-
    parent commit of the default branch whose diff adds or removes it)."""
    out = await git.git("log", "--first-parent", "--format=%H", "-S", value, head, "--", *paths)
    commits = out.decode().split()
    pull = await forge.pull_request_for_commit(repo, commits[0]) if commits else None
    return Introduced(pull.number, pull.url) if pull else Introduced(None, None)


async def open_proposal(
    forge: Forge, repo: Repository, head: str, proposal: Proposal
) -> PullRequest:
    """A branch off `head`, the one commit, and the pull request into the default branch.
    A retry after a partial failure resumes: it keeps the branch and commit an earlier try
    made, and answers with the pull request already open from the branch."""
    branch, base = proposal.branch, repo.default_branch
    message = f"{proposal.title}\n\n{proposal.trailer}" if proposal.trailer else proposal.title
    step = resume_step(await forge.branch_tip(repo, branch), branch, head, message)
    if step is Resume.CREATE_BRANCH:
        await forge.create_branch(repo, branch, head)
    if step is not Resume.OPEN:
        await forge.commit_files(repo, branch, head, message, proposal.files)
    already = await forge.open_pull_request_from(repo, branch, base)
    return already or await forge.open_pull_request(
        repo, branch, base, proposal.title, proposal.body
    )
