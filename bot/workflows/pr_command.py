"""Comment commands on pull requests: `/gitops plan` and `/gitops help`, for writers only."""

from __future__ import annotations

from enum import StrEnum

from bot.core.markdown import code, escape, mention
from bot.events import CommentCommand, PullRequestChanged
from bot.forges.ports import Forge
from bot.store.ports import Job
from bot.workflows.context import EventWorkflow, Failure, Services, job_for

# Every answer starts with a mention, never with the command prefix, so the bot's own
# comments can never read as commands (GitHub marks App comments as Bot users as well).
USAGE = """\
**gitops-bot commands** (people with {permission}):

- `/gitops plan` — plan this pull request again and refresh the plan comment and check.
- `/gitops help` — this text.

Merging applies the default branch to every environment with `apply_on_merge`."""


COMMAND_KIND = "command"


class CommandOutcome(StrEnum):
    PLANNED = "planned"  # a plan job was queued
    HELP = "help"
    UNKNOWN = "unknown"  # answered with the usage
    REFUSED = "refused"  # the author may not command the bot


async def run_command(services: Services, event: CommentCommand, job: Job) -> CommandOutcome:
    forge = services.forges.forge_for(event.repo)
    if not await forge.can_write(event.repo, event.author):
        await forge.reply(event.repo, event.number, refusal(event, forge.command_permission))
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
        await services.forges.forge_for(work.repo).reply(
            work.repo,
            work.number,
            f"{mention(work.author)} {code('/gitops ' + work.command)} could not "
            f"complete: {escape(failure.error)}. Comment the command again to retry.",
        )


WORKFLOW = PullRequestCommand()
