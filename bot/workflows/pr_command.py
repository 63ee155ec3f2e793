"""Comment commands: `/gitops plan`, `help`, `rollback` and `promote`, for writers only."""

from __future__ import annotations

from enum import StrEnum

from bot.core.markdown import code, escape, mention
from bot.core.repoconfig import ConfigError
from bot.core.rollbacks import ProposalRefused, rollback_target
from bot.events import CommentCommand, PullRequestChanged
from bot.forges.ports import Forge
from bot.git.repos import GitRepo
from bot.stages.proposals import (
    Proposal,
    environment_named,
    open_proposal,
    promotion_proposal,
    read_config,
    rollback_proposal,
)
from bot.store.ports import Job
from bot.workflows.context import EventWorkflow, Failure, Services, job_for

# Every answer starts with a mention, never with the command prefix, so the bot's own
# comments can never read as commands (GitHub marks App comments as Bot users as well).
USAGE = """\
**gitops-bot commands** (people with {permission}):

- `/gitops plan` — plan this pull request again and refresh the plan comment and check.
- `/gitops rollback ENV` — open a pull request that restores ENV's files to the commit it
  last ran successfully before the current one (`/gitops rollback ENV to COMMIT`: to
  that earlier applied commit). Also on an issue.
- `/gitops promote FROM TO` — open a pull request that gives TO the image references of
  FROM, and changes nothing else. Also on an issue.
- `/gitops help` — this text.

Merging applies the default branch to every environment with `apply_on_merge`."""


COMMAND_KIND = "command"


class CommandOutcome(StrEnum):
    PLANNED = "planned"  # a plan job was queued
    HELP = "help"
    UNKNOWN = "unknown"  # answered with the usage
    REFUSED = "refused"  # the author may not command the bot
    PROPOSED = "proposed"  # a rollback or promotion pull request was opened
    DECLINED = "declined"  # a rollback or promotion cannot be made; the reply says why


async def run_command(services: Services, event: CommentCommand, job: Job) -> CommandOutcome:
    forge = services.forges.forge_for(event.repo)
    if not await forge.can_write(event.repo, event.author):
        await answer(forge, event, refusal(event, forge.command_permission))
        return CommandOutcome.REFUSED
    if event.command == "plan" and not event.args:
        pull = await forge.pull_request(event.repo, event.number)
        replan = PullRequestChanged(
            event.repo,
            pull.number,
            pull.base_sha,
            pull.head_sha,
            pull.author,
            pull.from_fork,
            pull.url,
        )
        await services.store.add_job(job_for(replan))
        return CommandOutcome.PLANNED
    if proposal_asked(event):
        return await propose(services, event, job, forge)
    if event.command == "help":
        await forge.reply(event.repo, event.number, f"{mention(event.author)}\n\n{usage(forge)}")
        return CommandOutcome.HELP
    await forge.reply(
        event.repo,
        event.number,
        f"{mention(event.author)} I do not know "
        f"{code(' '.join(('/gitops', event.command, *event.args)))}."
        f"\n\n{usage(forge)}",
    )
    return CommandOutcome.UNKNOWN


def proposal_asked(event: CommentCommand) -> bool:
    """`rollback ENV`, `rollback ENV to COMMIT` or `promote FROM TO`, exactly."""
    args = event.args
    if event.command == "rollback":
        return len(args) == 1 or (len(args) == 3 and args[1] == "to")
    return event.command == "promote" and len(args) == 2


async def propose(
    services: Services, event: CommentCommand, job: Job, forge: Forge
) -> CommandOutcome:
    """Open the rollback or promotion pull request off the default branch's head."""
    repo = event.repo
    head = await forge.branch_head(repo, repo.default_branch)
    git = await services.mirrors.fetch(repo, [head], await forge.git_auth_header(repo))
    try:
        proposal = await _proposal(services, event, job, forge, git, head)
        pull = await open_proposal(forge, repo, head, proposal)  # refuses a foreign branch
    except (ProposalRefused, ConfigError) as exc:
        text = f"{mention(event.author)} no pull request was opened: {escape(str(exc))}"
        await answer(forge, event, text)
        return CommandOutcome.DECLINED
    warnings = "".join(f"\n\n{w}" for w in proposal.warnings)
    link = f"[#{pull.number}]({pull.url})" if pull.url else f"#{pull.number}"
    text = f"{mention(event.author)} opened {link}: {escape(proposal.title)}{warnings}"
    await answer(forge, event, text)
    return CommandOutcome.PROPOSED


async def _proposal(
    services: Services, event: CommentCommand, job: Job, forge: Forge, git: GitRepo, head: str
) -> Proposal:
    suffix, args = str(job.id), event.args
    if event.command == "promote":
        return await promotion_proposal(git, head, args[0], args[1], forge, event.repo, suffix)
    environment_named(await read_config(git, head), args[0])  # a typo is named as such
    records = await services.store.audit_records(args[0])
    repository = f"{event.repo.forge}:{event.repo.slug}"
    target = rollback_target(records, args[0], repository, args[2] if len(args) == 3 else None)
    commits = [head, target.target.entry.commit]
    git = await services.mirrors.fetch(event.repo, commits, await forge.git_auth_header(event.repo))
    return await rollback_proposal(git, head, target, suffix)


async def answer(forge: Forge, event: CommentCommand, text: str) -> None:
    """Reply where the command was written: a pull/merge request, or an issue."""
    await forge.reply(event.repo, event.number, text, on_issue=event.on_issue)


def usage(forge: Forge) -> str:
    return USAGE.format(permission=forge.command_permission)


def refusal(event: CommentCommand, permission: str) -> str:
    return (
        f"{mention(event.author)} sorry, only people with {permission} can run "
        f"{code('/gitops ' + event.command)}. Ask a maintainer to run it for you."
    )


class PullRequestCommand(EventWorkflow[CommentCommand]):
    """Run a comment command; once its last attempt fails, its author is told to retry."""

    kind, event_type = COMMAND_KIND, CommentCommand

    async def run(self, services: Services, work: CommentCommand, job: Job) -> CommandOutcome:
        return await run_command(services, work, job)

    async def report_failure(
        self, services: Services, work: CommentCommand, failure: Failure
    ) -> None:
        if not failure.final:
            return
        await answer(
            services.forges.forge_for(work.repo),
            work,
            f"{mention(work.author)} {code('/gitops ' + work.command)} could not "
            f"complete: {escape(failure.error)}. Comment the command again to retry.",
        )


WORKFLOW = PullRequestCommand()
