"""Comment commands on pull requests: `/gitops plan` and `/gitops help`, for writers only."""

from __future__ import annotations

from bot.core.markdown import code, mention
from bot.events import CommentCommand, PullRequestChanged
from bot.forges.ports import Forge
from bot.store.ports import Job
from bot.workflows.context import Services, job_for

# Every answer starts with a mention, never with the command prefix, so the bot's own
# comments can never read as commands (GitHub marks App comments as Bot users as well).
USAGE = """\
**gitops-bot commands** (people with {permission}):

- `/gitops plan` — plan this pull request again and refresh the plan comment and check.
- `/gitops help` — this text.

Merging applies the default branch to every environment with `apply_on_merge`."""


async def run_command(services: Services, event: CommentCommand, job: Job) -> str:
    forge = services.forges.forge_for(event.repo)
    if not await forge.can_write(event.repo, event.author):
        await forge.reply(event.repo, event.number, refusal(event, forge.command_permission))
        return "refused"
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
        return "planned"
    if event.command == "help":
        await forge.reply(event.repo, event.number, f"{mention(event.author)}\n\n{usage(forge)}")
        return "help"
    await forge.reply(
        event.repo,
        event.number,
        f"{mention(event.author)} I do not know "
        f"{code(' '.join(('/gitops', event.command, *event.args)))}."
        f"\n\n{usage(forge)}",
    )
    return "unknown"


def usage(forge: Forge) -> str:
    return USAGE.format(permission=forge.command_permission)


def refusal(event: CommentCommand, permission: str) -> str:
    return (
        f"{mention(event.author)} sorry, only people with {permission} can run "
        f"{code('/gitops ' + event.command)}. Ask a maintainer to run it for you."
    )
