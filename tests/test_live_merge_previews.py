"""The live dry run of a pull request applies the merge result, on the real API server."""

from __future__ import annotations

from helpers.githubbot import BotFactory
from helpers.livecluster import LiveEnv, configmap


async def test_the_dry_run_of_a_pr_behind_its_base_applies_the_merge_result(
    make_bot: BotFactory, live_env: LiveEnv
) -> None:
    """main moved `settings` to level 2 (and the cluster runs it) after the branch was cut:
    the dry run of the merge keeps level 2 and creates the PR's `cart`."""
    bot = await make_bot(clusters=(live_env.cluster,))

    def tree(**files: str) -> dict[str, str | bytes]:
        return {
            ".gitops-bot.yaml": live_env.config(),
            **{f"deploy/{n}": t for n, t in files.items()},
        }

    base = bot.origin.commit(tree(**{"settings.yaml": configmap("settings", level="1")}))
    bot.origin.git("checkout", "--quiet", "-b", "feature")
    head = bot.origin.commit(
        tree(**{"settings.yaml": configmap("settings", level="1"), "cart.yaml": configmap("cart")})
    )
    bot.origin.git("checkout", "--quiet", "main")
    newer = configmap("settings", level="2")
    bot.fake.branches["master"] = bot.origin.commit(tree(**{"settings.yaml": newer}))
    live_env.kubectl.apply(newer, f"--namespace={live_env.namespace}")

    await bot.deliver("pull_request", bot.pull_request("opened", 7, base, head))
    await bot.drain()

    [comment] = bot.fake.comments_on(7)
    body = comment["body"]
    assert "previewing the merge result" in body
    assert "merging would create 1, update 1" in body  # cart; settings gets the bot's label
    assert "level: '2'" in body and "level: '1'" not in body  # main's level 2 is kept
