"""Pull request previews through the real app: sticky comment, check run, annotations."""

from __future__ import annotations

from helpers.githubbot import SLUG, BotFactory, base_tree, deployment

from bot.core.markdown import GITHUB_COMMENT_LIMIT, parse_marker

BROKEN = deployment("cart", "registry.example.com/cart:latest")
FIXED = deployment("cart", "registry.example.com/cart:1.0.0")


async def test_open_then_fix_edits_one_comment_and_flips_the_check(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": BROKEN})

    response = await bot.deliver("pull_request", bot.pull_request("opened", 7, base, head))
    assert response.status == 202
    assert await bot.drain() == 1

    [comment] = bot.fake.comments_on(7)
    assert parse_marker(comment["body"], "plan") == 1
    assert "blocked" in comment["body"] and "cart" in comment["body"]
    [run] = bot.fake.check_runs.values()
    assert (run["name"], run["head_sha"], run["conclusion"]) == ("gitops-bot", head, "failure")
    [annotation] = [a for a in run["annotations"] if a["annotation_level"] == "failure"]
    assert annotation["path"] == "deploy/staging/cart.yaml"
    assert annotation["start_line"] == 19  # the image line
    assert "pinned-images" in annotation["title"]

    fix = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})
    response = await bot.deliver("pull_request", bot.pull_request("synchronize", 7, base, fix))
    assert response.status == 202
    await bot.drain()

    [edited] = bot.fake.comments_on(7)
    assert edited["id"] == comment["id"]
    assert "ready to merge" in edited["body"]
    assert bot.fake.calls_to("PATCH", rf"/repos/{SLUG}/issues/comments/{comment['id']}$")
    fixed_run = next(r for r in bot.fake.check_runs.values() if r["head_sha"] == fix)
    assert fixed_run["conclusion"] == "success"


async def test_a_plan_too_big_for_one_comment_is_split_into_parts(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    settings = "\n".join(f"  KEY_{i:04d}: '{'x' * 60}'" for i in range(1500))
    big = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n{settings}\n"
    head = bot.origin.commit({**base_tree(), "deploy/staging/big.yaml": big})

    await bot.deliver("pull_request", bot.pull_request("opened", 8, base, head))
    await bot.drain()

    parts = sorted(bot.fake.comments_on(8), key=lambda c: parse_marker(c["body"], "plan") or 0)
    assert len(parts) >= 2
    assert [parse_marker(c["body"], "plan") for c in parts] == list(range(1, len(parts) + 1))
    assert all(len(c["body"]) <= GITHUB_COMMENT_LIMIT for c in parts)
    assert sum(len(c["body"]) for c in parts) > GITHUB_COMMENT_LIMIT
    assert f"part 2 of {len(parts)}" in parts[0]["body"]

    # The plan gets short again: the parts it no longer needs are removed, part 1 edited.
    small = bot.origin.commit(base_tree())
    await bot.deliver("pull_request", bot.pull_request("synchronize", 8, base, small))
    await bot.drain()
    [only] = bot.fake.comments_on(8)
    assert only["id"] == parts[0]["id"]


async def test_a_newer_head_supersedes_a_queued_plan(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    old = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": BROKEN})
    new = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})

    await bot.deliver("pull_request", bot.pull_request("opened", 9, base, old))
    await bot.deliver("pull_request", bot.pull_request("synchronize", 9, base, new))
    await bot.drain()

    [comment] = bot.fake.comments_on(9)
    assert new[:12] in comment["body"] and old[:12] not in comment["body"]
    assert {r["head_sha"] for r in bot.fake.check_runs.values()} == {new}


async def test_the_bot_edits_only_its_own_marked_comment(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})
    impostor = bot.fake.add_comment(10, "<!-- gitops-bot:plan part=1 -->\nfake", "mallory")

    await bot.deliver("pull_request", bot.pull_request("opened", 10, base, head))
    await bot.drain()

    assert bot.fake.comments[impostor]["body"].endswith("fake")
    mine = [c for c in bot.fake.comments_on(10) if c["user"]["login"] == bot.fake.bot_login]
    assert len(mine) == 1


async def test_with_a_token_the_result_is_a_commit_status(make_bot: BotFactory) -> None:
    bot = await make_bot(mode="token")
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": BROKEN})

    await bot.deliver("pull_request", bot.pull_request("opened", 11, base, head))
    await bot.drain()

    assert [(s["sha"], s["state"]) for s in bot.fake.statuses] == [
        (head, "pending"),
        (head, "failure"),
    ]
    assert {s["context"] for s in bot.fake.statuses} == {"gitops-bot"}
    assert not bot.fake.check_runs
    assert len(bot.fake.comments_on(11)) == 1


async def test_annotations_are_sent_fifty_per_request(make_bot: BotFactory) -> None:
    bot = await make_bot()
    base = bot.origin.commit(base_tree())
    many = "---\n".join(
        deployment(f"job-{i}", "registry.example.com/job:latest") for i in range(60)
    )
    head = bot.origin.commit({**base_tree(), "deploy/staging/jobs.yaml": many})

    await bot.deliver("pull_request", bot.pull_request("opened", 12, base, head))
    await bot.drain()

    [run] = [r for r in bot.fake.check_runs.values() if r["head_sha"] == head]
    failures = [a for a in run["annotations"] if a["annotation_level"] == "failure"]
    assert len(failures) == 60
    assert {a["start_line"] for a in failures} == {19 + 22 * i for i in range(60)}
    sent = [
        len(call.body["output"]["annotations"])
        for call in bot.fake.calls
        if "check-runs" in call.path
        and call.method in ("POST", "PATCH")
        and call.body.get("output", {}).get("annotations")
    ]
    assert max(sent) == 50 and sum(sent) == len(run["annotations"])


async def test_github_enterprise_server_paths(make_bot: BotFactory) -> None:
    bot = await make_bot(prefix="/api/v3")
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": FIXED})

    await bot.deliver("pull_request", bot.pull_request("opened", 13, base, head))
    await bot.drain()

    assert len(bot.fake.comments_on(13)) == 1
    assert all(not call.path.startswith("/api/v3") for call in bot.fake.calls)
