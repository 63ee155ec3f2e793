"""The sandbox around rendering tools: the walls that hold even if a check upstream missed."""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path

import pytest
from helpers.gitrepos import Repo

from bot.core.repoconfig import Environment, EnvironmentSource, SourceType
from bot.git.repos import GitRepo
from bot.renderers import RenderOptions, RenderRequest, render
from bot.renderers.kustomize import BUILD_FLAGS
from bot.renderers.sandbox import (
    CLOSED_PROXY,
    ToolFailed,
    ToolOutputTooLarge,
    ToolTimedOut,
    prepare_home,
    run_tool,
    sandbox_environment,
)
from bot.renderers.workspaces import Workspace

GUARD_SECONDS = 60  # a hang fails the test instead of stalling the suite


def program(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is not installed"
    return found


async def test_a_tool_sees_none_of_the_bot_s_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITOPS_BOT_GITHUB_TOKEN", "ghp_do-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-do-not-leak")
    monkeypatch.setenv("KUBECONFIG", "/root/.kube/bot-config")
    prepare_home(tmp_path)
    out = await run_tool(
        [program("env")], tmp_path, sandbox_environment(tmp_path, False), 30, 100_000
    )
    seen = dict(line.split("=", 1) for line in out.decode().splitlines())
    assert not [name for name in seen if name.startswith("GITOPS_BOT_") or "AWS" in name]
    assert "do-not-leak" not in out.decode()
    assert seen["HOME"] == str(tmp_path)
    assert seen["KUBECONFIG"] == str(tmp_path / "kubeconfig")
    assert seen["HTTPS_PROXY"] == seen["HTTP_PROXY"] == CLOSED_PROXY
    assert list(Path(seen["PATH"]).iterdir()) == []  # no git, no shell to reach for


async def test_an_endless_output_is_cut_at_the_limit(tmp_path: Path) -> None:
    with pytest.raises(ToolOutputTooLarge, match="more than 100000 bytes"):
        await asyncio.wait_for(
            run_tool([program("yes")], tmp_path, {}, GUARD_SECONDS, 100_000), GUARD_SECONDS
        )


async def test_a_timeout_kills_everything_the_tool_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    with pytest.raises(ToolTimedOut, match="did not finish within 1 seconds"):
        await asyncio.wait_for(
            run_tool([program("sh"), "-c", script], tmp_path, {"PATH": "/usr/bin:/bin"}, 1, 1000),
            GUARD_SECONDS,
        )
    child = int(pid_file.read_text())
    for _ in range(GUARD_SECONDS * 10):
        if not is_running(child):
            break
        await asyncio.sleep(0.1)
    assert not is_running(child)


def is_running(pid: int) -> bool:
    """Alive and not a zombie (a killed child may wait to be reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


async def kustomize_in_sandbox(tools: Path, files: dict[str, str]) -> str:
    """Run the real kustomize as the renderer does, on files that skip the bot's checks."""
    async with Workspace(RenderOptions()) as space:
        for name, text in files.items():
            target = space.checkout / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        with pytest.raises(ToolFailed) as failed:
            await space.run([str(tools / "kustomize"), *BUILD_FLAGS, str(space.checkout / "env")])
        return space.scrub(str(failed.value))


async def test_kustomize_cannot_reach_the_network_even_unchecked(render_tools: Path) -> None:
    message = await kustomize_in_sandbox(
        render_tools, {"env/kustomization.yaml": "resources: [https://remote.example/x.yaml]\n"}
    )
    assert "proxyconnect" in message and "127.0.0.1:9" in message


async def test_kustomize_cannot_read_outside_the_kustomization_even_unchecked(
    render_tools: Path,
) -> None:
    message = await kustomize_in_sandbox(
        render_tools,
        {
            "env/kustomization.yaml": "resources: [../outside.yaml]\n",
            "outside.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: outside}\n",
        },
    )
    assert "security; file 'outside.yaml' is not in or below 'env'" in message


async def test_kustomize_runs_no_exec_function_even_unchecked(
    render_tools: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    function = textwrap.dedent(f"""\
        apiVersion: example.com/v1
        kind: Run
        metadata:
          name: fn
          annotations:
            config.kubernetes.io/function: |
              exec:
                path: /bin/sh
                args: ["-c", "touch {marker}"]
    """)
    message = await kustomize_in_sandbox(
        render_tools,
        {"env/kustomization.yaml": "transformers: [fn.yaml]\n", "env/fn.yaml": function},
    )
    assert "kustomize failed" in message
    assert not marker.exists()


async def test_a_missing_tool_is_reported_with_the_setting_to_fix_it(repo: Repo) -> None:
    commit = repo.commit({"env/kustomization.yaml": "resources: []\n"})
    env = Environment("prod", "env", "main", source=EnvironmentSource(SourceType.KUSTOMIZE))
    options = RenderOptions(kustomize="no-such-kustomize")
    loaded = (await render(RenderRequest(GitRepo(repo.path), commit, env, "1.33", options))).loaded
    [finding] = loaded.findings
    assert finding.rule == "render.tool-missing"
    assert "GITOPS_BOT_KUSTOMIZE_COMMAND" in finding.message
