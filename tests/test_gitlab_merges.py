"""Merges on GitLab through the real app: apply, MR note, deployments, audit records."""

from __future__ import annotations

import textwrap

from helpers.githubbot import base_tree, deployment
from helpers.gitlabbot import API_TOKEN, PROJECT, GitLabBot, GitLabBotFactory
from helpers.storetools import audit_verify, execute_sql

from bot.core.markdown import parse_marker
from bot.store.ports import JobState

CART = deployment("cart", "registry.example.com/cart:1.0.0")


async def _merged(bot: GitLabBot, iid: int) -> str:
    """MR !iid opened and approved; the merge commit exists in the origin repository."""
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})
    bot.merge_request("open", iid, base, head)
    bot.fake.approvals[iid] = ["rene", "mia"]
    return bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART}, f"Merge !{iid}")


async def test_merge_applies_notes_deploys_and_audits(make_gitlab_bot: GitLabBotFactory) -> None:
    bot = await make_gitlab_bot()
    merge = await _merged(bot, 21)

    response = await bot.deliver("Push Hook", bot.merge(21, merge))
    assert response.status == 202
    assert await bot.drain() == 1

    [note] = bot.fake.notes_on(21)
    assert parse_marker(note["body"], "apply") == 1
    assert "gitops-bot apply" in note["body"] and merge[:12] in note["body"]
    deployments = sorted(bot.fake.deployments.values(), key=lambda d: d["environment"]["name"])
    assert [(d["environment"]["name"], d["sha"], d["ref"]) for d in deployments] == [
        ("production", merge, "main"),
        ("staging", merge, "main"),
    ]
    assert [d["history"] for d in deployments] == [["success"], ["success"]]
    entries = [r.entry for r in await bot.services.store.audit_records()]
    assert {e.environment for e in entries} == {"staging", "production"}
    staging = next(e for e in entries if e.environment == "staging")
    assert (staging.commit, staging.pr_number, staging.author) == (merge, 21, "dana")
    assert staging.pr_url == f"https://gitlab.example.com/{PROJECT}/-/merge_requests/21"
    assert staging.approvers == ("mia", "rene")  # from GitLab's approvals API
    assert (staging.result, staging.trigger) == ("dry-run", "merge")


async def test_a_retried_apply_reuses_its_gitlab_deployments(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    merge = await _merged(bot, 22)
    # The MR note fails once after both deployments were recorded: the job runs again.
    bot.fake.fail("POST", r"/merge_requests/22/notes$", 502, message="Bad Gateway")

    await bot.deliver("Push Hook", bot.merge(22, merge))
    await bot.drain()
    bot.clock.advance(3600)
    await bot.drain()

    assert len(bot.fake.deployments) == 2  # found again by environment and commit
    assert len(bot.fake.notes_on(22)) == 1
    assert (await bot.services.store.job_counts())[JobState.DONE] == 1


async def test_a_fork_merge_request_is_previewed_but_never_applied(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    base = bot.origin.commit(base_tree())
    head = bot.origin.commit({**base_tree(), "deploy/staging/cart.yaml": CART})

    hook = bot.merge_request("open", 23, base, head, fork=True)
    assert (await bot.deliver("Merge Request Hook", hook)).status == 202
    await bot.drain()

    assert len(bot.fake.notes_on(23)) == 1
    # The fork's head is on no branch of the project: the status names the MR's own ref.
    [status] = bot.fake.statuses
    assert (status["sha"], status["ref"]) == (head, "refs/merge-requests/23/head")
    assert status["history"] == ["pending", "success"]
    assert not bot.fake.deployments
    assert not await bot.services.store.audit_records()


async def test_an_apply_that_cannot_complete_says_how_to_retry(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    merge = await _merged(bot, 25)
    bot.fake.fail("POST", r"/deployments$", 500, message="500 Internal Server Error", times=99)

    await bot.deliver("Push Hook", bot.merge(25, merge))
    for _ in range(3):  # every attempt the job has, the queue's backoff in between
        await bot.drain()
        bot.clock.advance(3600)

    assert (await bot.services.store.job_counts())[JobState.DEAD] == 1
    [note] = bot.fake.notes_on(25)
    assert "could not complete" in note["body"]
    assert "gitops-bot retry 1" in note["body"]
    assert not bot.fake.deployments  # nothing claims a success


async def test_an_apply_note_holds_the_ledger_head_and_verify_finds_a_cut(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    """GitLab deployments hold no text: the anchor is in the apply note's hidden data."""
    bot = await make_gitlab_bot()
    merge = await _merged(bot, 26)
    await bot.deliver("Push Hook", bot.merge(26, merge))
    assert await bot.drain() == 1
    rows = await bot.services.store.audit_rows()
    settings = bot.services.settings
    access = {
        "database_url": settings.database_url,
        "gitlab_url": settings.gitlab_url,
        "gitlab_token": API_TOKEN,
    }

    intact = await audit_verify(access, "--repository", f"gitlab:{PROJECT}")
    execute_sql(settings.database_url, "DELETE FROM audit_ledger WHERE sequence = 2")
    cut = await audit_verify(access, "--repository", f"gitlab:{PROJECT}")

    [note] = bot.fake.notes_on(26)
    head = f"{rows[-1].sequence}:{rows[-1].hash}"
    assert note["body"].rstrip().endswith(f"<!-- ledger {head} -->")
    assert intact[0] == 0, intact[1]
    assert "matches every anchor given (1; newest: 2)" in intact[1]
    assert cut[0] == 1, cut[1]
    assert f"from record 2: it is missing: the forge holds anchor {head}" in cut[1]


async def test_a_merge_in_a_flux_repository_without_config_says_nothing(
    make_gitlab_bot: GitLabBotFactory,
) -> None:
    bot = await make_gitlab_bot()
    flux = textwrap.dedent(f"""\
        apiVersion: source.toolkit.fluxcd.io/v1
        kind: GitRepository
        metadata: {{name: flux-system, namespace: flux-system}}
        spec: {{url: "{bot.clone_url}", ref: {{branch: main}}}}
        ---
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata: {{name: apps, namespace: flux-system}}
        spec:
          path: ./deploy
          sourceRef: {{kind: GitRepository, name: flux-system}}
        """)
    files = {"clusters/a/apps.yaml": flux, "deploy/cart.yaml": CART}
    base = bot.origin.commit(files)
    head = bot.origin.commit(files | {"deploy/cart.yaml": CART.replace("1.0.0", "1.1.0")})
    bot.merge_request("open", 27, base, head)
    merge = bot.origin.commit(files | {"deploy/cart.yaml": CART.replace("1.0.0", "1.1.0")})

    await bot.deliver("Push Hook", bot.merge(27, merge))
    await bot.drain()
    # Flux deploys the merge: no refusal of a missing .gitops-bot.yaml, nothing applied.
    assert bot.fake.notes_on(27) == []
    assert bot.fake.deployments == {}
    assert await bot.services.store.audit_records() == []
