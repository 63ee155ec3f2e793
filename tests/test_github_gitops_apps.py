"""A pull request in a repository managed by Argo CD: one preview comment, nothing applied."""

from __future__ import annotations

from helpers.githubbot import BotFactory
from helpers.gitopsrepo import application
from helpers.manifests import configmap

from bot.core.markdown import parse_marker


def repository(clone_url: str, mode: str) -> dict[str, str]:
    app = application("web", f"repoURL: {clone_url}\npath: deploy\n")
    other = application("other", "repoURL: https://example.com/other.git\npath: x\n")
    return {
        "apps/web.yaml": app,
        "apps/other.yaml": other,
        "deploy/settings.yaml": configmap(mode=mode),
    }


async def test_the_preview_names_the_application_and_what_is_not_previewed(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    base = bot.origin.commit(repository(bot.clone_url, "fast"))
    head = bot.origin.commit(repository(bot.clone_url, "slow"))
    await bot.deliver("pull_request", bot.pull_request("opened", 5, base, head))
    assert await bot.drain() == 1

    [comment] = bot.fake.comments_on(5)
    body = comment["body"]
    assert parse_marker(body, "plan") == 1
    assert "ready to merge" in body
    assert "#### Environment `argocd/web` → cluster `https://kubernetes.default.svc`" in body
    assert "update <code>ConfigMap shop/settings</code>" in body
    assert "not previewed: argocd/other (declared in apps/other.yaml)" in body
    assert "The bot applies nothing: Argo CD or Flux does" in body
    [run] = bot.fake.check_runs.values()
    assert run["conclusion"] == "success"

    # Argo CD applies the merge: the bot neither applies nor posts a refusal.
    await bot.deliver("push", bot.merge(5, head))
    assert await bot.drain() == 1
    assert [parse_marker(c["body"], "apply") for c in bot.fake.comments_on(5)] == [None]


async def test_an_affected_application_that_cannot_be_previewed_gets_a_neutral_check(
    make_bot: BotFactory,
) -> None:
    bot = await make_bot()
    files = repository(bot.clone_url, "fast")
    base = bot.origin.commit(files)
    moved = files["apps/other.yaml"].replace("path: x", "path: y")
    head = bot.origin.commit(files | {"apps/other.yaml": moved})
    await bot.deliver("pull_request", bot.pull_request("opened", 6, base, head))
    assert await bot.drain() == 1

    [comment] = bot.fake.comments_on(6)
    body = comment["body"]
    assert "### gitops-bot plan: ⚠️ 1 affected application could not be previewed" in body
    assert "ready to merge" not in body
    assert "argocd/other (declared in apps/other.yaml): its source is another repository" in body
    [run] = bot.fake.check_runs.values()
    assert run["conclusion"] == "neutral"
    assert run["output"]["title"] == "1 affected application not previewed; no findings"
