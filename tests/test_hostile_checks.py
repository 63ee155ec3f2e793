"""Hostile policies against the real server: probes and webhooks keep answering.

`gitops-bot serve` runs as a subprocess against the fake GitHub. A pull request is
planned with policies from its base commit that are built to burn CPU; from the moment
the plan starts until it is reported, the test keeps asking `/healthz` and sending
signed deliveries, each request with a 5 s timeout (GitHub gives up after 10 s), and
every one must be answered. The plan then ends with a finding that blocks the merge.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from helpers.botprocess import BotProcess, bot_environment, comment, deliver, pull_request
from helpers.fakegithub import FakeGitHub, OpenAPIDescription
from helpers.githubbot import deployment
from helpers.gitrepos import Repo

SLUG = "hostile/policies"
PROBE_SECONDS = 5  # per request: well within GitHub's 10 s
GUARD_SECONDS = 300  # against a hang only; Python's re would need hours for case one
CHECK_TIMEOUT = 15  # seconds the exponential policy may burn before it is cut off
VICTIM = "a" * 40 + "!"  # ^(a+)+$ takes Python's re about 2**40 steps on this
CONFIG = """\
environments:
  staging: {path: deploy, cluster: staging, namespace: shop}
policies: [policies]
"""


def policy(policy_id: str, schema: dict[str, Any]) -> str:
    head = {"id": policy_id, "description": f"{policy_id} (hostile)", "severity": "error"}
    return json.dumps({**head, "schema": schema})


def exponential_policy(depth: int = 40) -> str:
    """Small, and linear regexes do not help: each level tries both branches, 2**40 paths."""
    levels = {
        f"l{n}": {"anyOf": [{"$ref": f"#/$defs/l{n + 1}"}, {"$ref": f"#/$defs/l{n + 1}"}]}
        for n in range(depth)
    }
    schema = {"$defs": {**levels, f"l{depth}": {"required": ["absent"]}}, "$ref": "#/$defs/l0"}
    return policy("exponential", schema)


LABELS = {"properties": {"metadata": {"properties": {"labels": {"additionalProperties": {}}}}}}


def labels_policy(policy_id: str, pattern: str) -> str:
    schema = json.loads(json.dumps(LABELS))
    schema["properties"]["metadata"]["properties"]["labels"]["additionalProperties"] = {
        "pattern": pattern
    }
    return policy(policy_id, schema)


def labelled_deployment() -> str:
    text = deployment("web", "registry.example.com/web:1.0.1")
    return text.replace("  labels:\n", f"  labels:\n    team: '{VICTIM}'\n", 1)


async def test_a_backtracking_regex_no_longer_freezes_and_a_backreference_is_refused(
    tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    policies = {
        "policies/tidy-labels.yaml": labels_policy("tidy-labels", "^(a+)+$"),
        "policies/echo.yaml": labels_policy("echo", r"^(a)\1$"),
    }
    fake, body = await plan_while_probing(tmp_path, openapi, aiohttp_server, policies)
    assert "tidy-labels" in body and VICTIM in body  # checked, and the label broke it
    assert "policies/echo.yaml" in body
    assert "schema.properties.metadata.properties.labels.additionalProperties.pattern" in body
    assert "needs a backtracking engine" in body
    assert fake.statuses[-1]["state"] == "failure"


async def test_a_policy_too_expensive_to_check_is_cut_off_with_a_blocking_finding(
    tmp_path: Path, openapi: OpenAPIDescription, aiohttp_server: Any
) -> None:
    policies = {"policies/exponential.yaml": exponential_policy()}
    fake, body = await plan_while_probing(
        tmp_path, openapi, aiohttp_server, policies, check_timeout_seconds=str(CHECK_TIMEOUT)
    )
    assert f"checks did not finish within {CHECK_TIMEOUT} s" in body
    assert "Cannot preview this environment" in body  # a failure, not an empty change
    assert fake.statuses[-1]["state"] == "failure"


async def plan_while_probing(
    tmp_path: Path,
    openapi: OpenAPIDescription,
    aiohttp_server: Any,
    policies: dict[str, str],
    **settings: str,
) -> tuple[FakeGitHub, str]:
    """Plan a PR whose base holds `policies`, probing until it is reported; the comment."""
    fake = FakeGitHub(openapi, time.time)
    fake.personal_token = "ghp_" + uuid.uuid4().hex
    api = await aiohttp_server(fake.make_app())
    origin = Repo(tmp_path / "origin")
    tree = {".gitops-bot.yaml": CONFIG, "deploy/web.yaml": deployment("web", "r.io/web:1.0.0")}
    base = origin.commit({**tree, **policies})
    head = origin.commit({**tree, **policies, "deploy/web.yaml": labelled_deployment()})
    bot = BotProcess(
        bot_environment(
            f"sqlite:///{tmp_path / 'bot.sqlite3'}",
            str(api.make_url("")).rstrip("/"),
            fake.personal_token,
            tmp_path / "data",
            **settings,
        ),
        tmp_path / "bot.log",
    )
    timeout = aiohttp.ClientTimeout(total=PROBE_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await bot.start(session)
        try:
            opened = pull_request(fake, origin, SLUG, 1, base, head)
            assert await deliver(session, bot, opened) == 202
            probes = await probe_until_reported(session, bot, fake, origin)
        finally:
            await bot.stop()
    assert probes >= 1
    [plan] = [c for c in fake.comments_on(1) if "<!-- gitops-bot:plan" in c["body"]]
    return fake, str(plan["body"])


async def probe_until_reported(
    session: aiohttp.ClientSession, bot: BotProcess, fake: FakeGitHub, origin: Repo
) -> int:
    """Ask /healthz and send a signed delivery, again and again, until the plan is
    reported; each must be answered within PROBE_SECONDS. Returns how many rounds ran."""
    deadline, rounds = time.monotonic() + GUARD_SECONDS, 0
    while not any(s["state"] != "pending" for s in fake.statuses):
        assert time.monotonic() < deadline, f"the plan never ended: {bot.log.read_text()[-3000:]}"
        try:
            async with session.get(f"{bot.url}/healthz") as health:
                assert health.status == 200
        except TimeoutError:
            raise AssertionError(f"/healthz did not answer within {PROBE_SECONDS} s") from None
        command = comment(origin, SLUG, 1, "octocat", "/gitops help")
        assert await deliver(session, bot, command) == 202, "a delivery got no timely 202"
        rounds += 1
        await asyncio.sleep(0.5)
    return rounds


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with a 3 s limit on checks; the subprocess timeout only guards a hang."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env["GITOPS_BOT_CHECK_TIMEOUT_SECONDS"] = "3"
    command = [sys.executable, "-m", "bot", *args]
    return subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=GUARD_SECONDS
    )


def test_validate_and_plan_on_the_command_line_are_cut_off_too(tmp_path: Path) -> None:
    origin = Repo(tmp_path / "repo")
    tree = {".gitops-bot.yaml": CONFIG, "policies/exponential.yaml": exponential_policy()}
    base = origin.commit({**tree, "deploy/web.yaml": deployment("web", "r.io/web:1.0.0")})
    head = origin.commit({**tree, "deploy/web.yaml": labelled_deployment()})
    validated = run_cli(tmp_path, "validate", "--policies", "repo/policies", "repo/deploy")
    planned = run_cli(
        tmp_path, "plan", "--repo", "repo", "--base", base, "--head", head, "--format", "text"
    )
    for done in (validated, planned):
        assert done.returncode == 1, done.stderr
        assert "checks did not finish within 3 s" in done.stdout
        assert "Traceback" not in done.stderr
