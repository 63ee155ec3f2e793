"""Run a rendering tool as a bounded subprocess: no credentials, no network, time and size caps."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

# A loopback port nothing listens on: any HTTP(S) request a tool makes through the proxy
# settings fails at once instead of reaching the network (the second wall, behind the
# checks that refuse remote references before a tool runs).
CLOSED_PROXY = "http://127.0.0.1:9"
MAX_MESSAGE_BYTES = 16 * 1024  # of a tool's stderr kept for the error message
_READ_CHUNK = 64 * 1024
_REAP_SECONDS = 10.0
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"


class ToolError(RuntimeError):
    """A tool could not produce a render; the message says why and what to do."""


class ToolMissing(ToolError):
    pass


class ToolFailed(ToolError):
    """The tool ran and refused: the message is its own error output."""


class ToolTimedOut(ToolError):
    pass


class ToolOutputTooLarge(ToolError):
    pass


def find_tool(command: str, setting: str) -> str:
    """The absolute path of `command` (a name on the bot's PATH, or a path)."""
    found = shutil.which(command)
    if found is None:
        raise ToolMissing(
            f"{command!r} is not installed on the bot's server (or not on its PATH); "
            f"the operator can install it or set {setting} to its path"
        )
    return str(Path(found).resolve())


def sandbox_environment(home: Path, allow_network: bool) -> dict[str, str]:
    """The whole environment a tool gets: nothing inherited, every config dir empty.

    Nothing of the bot's own environment passes (no GITOPS_BOT_* settings, no tokens,
    no kubeconfig), so a chart or plugin cannot read or use the bot's credentials.
    """
    env = {
        "HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "XDG_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "kubeconfig"),
        "KUSTOMIZE_PLUGIN_HOME": str(home / "kustomize-plugins"),
        "HELM_CACHE_HOME": str(home / "cache/helm"),
        "HELM_CONFIG_HOME": str(home / "config/helm"),
        "HELM_DATA_HOME": str(home / "data/helm"),
        "HELM_PLUGINS": str(home / "helm-plugins"),
        "HELM_CONTENT_CACHE": str(home / "cache/helm/content"),
        "HELM_REGISTRY_CONFIG": str(home / "config/helm/registry/config.json"),
        "HELM_REPOSITORY_CONFIG": str(home / "config/helm/repositories.yaml"),
        "HELM_REPOSITORY_CACHE": str(home / "cache/helm/repository"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    if allow_network:
        env["PATH"] = _SYSTEM_PATH  # kustomize clones remote bases with git
        return env
    # An empty PATH: without git, kustomize cannot clone a remote base even if a check
    # missed one; the tools themselves are started by absolute path.
    env["PATH"] = str(home / "no-programs")
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        env[name] = CLOSED_PROXY
    env["NO_PROXY"] = env["no_proxy"] = ""
    return env


def prepare_home(home: Path) -> None:
    """Create the empty directories and files `sandbox_environment` points at."""
    for name in ("tmp", "config/helm/registry", "cache/helm/repository", "data/helm"):
        (home / name).mkdir(parents=True, exist_ok=True)
    for name in ("kustomize-plugins", "helm-plugins", "no-programs"):
        (home / name).mkdir(exist_ok=True)
    (home / "kubeconfig").write_text("")


async def run_tool(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float,
    max_output: int,
) -> bytes:
    """The tool's standard output; ToolError when it fails, overruns or says too much.

    The tool runs in its own process group, so everything it started is killed with it.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    name = Path(argv[0]).name
    try:
        out, err = await asyncio.wait_for(_collect(process, max_output), timeout)
    except TimeoutError:
        raise ToolTimedOut(
            f"{name} did not finish within {timeout:g} seconds and was stopped; a template "
            "that loops or renders far too much? Simplify it or split the environment"
        ) from None
    except _OutputTooLarge:
        raise ToolOutputTooLarge(
            f"{name} wrote more than {max_output} bytes of manifests and was stopped; "
            "a template that explodes in size? Split the environment"
        ) from None
    finally:
        await _stop(process)
    if process.returncode != 0:
        raise ToolFailed(_message(name, process.returncode, err))
    return out


class _OutputTooLarge(Exception):
    pass


async def _collect(process: asyncio.subprocess.Process, max_output: int) -> tuple[bytes, bytes]:
    assert process.stdout is not None and process.stderr is not None
    reads = (
        asyncio.ensure_future(_read(process.stdout, max_output, fail=True)),
        asyncio.ensure_future(_read(process.stderr, MAX_MESSAGE_BYTES, fail=False)),
    )
    try:
        out, err = await asyncio.gather(*reads)
    finally:  # on a failure, no reader may be left behind to race `_stop`'s draining
        for read in reads:
            read.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
    await process.wait()
    return out, err


async def _read(stream: asyncio.StreamReader, limit: int, fail: bool) -> bytes:
    """Up to `limit` bytes; past it, fail or keep draining so the tool never blocks."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await stream.read(_READ_CHUNK):
        size += len(chunk)
        if size > limit and fail:
            raise _OutputTooLarge
        if size - len(chunk) < limit:
            chunks.append(chunk)
    return b"".join(chunks)[:limit]


async def _stop(process: asyncio.subprocess.Process) -> None:
    """Kill the tool's whole process group (a no-op when it already exited cleanly).

    The pipes are drained to their end afterwards: a pipe that stopped being read holds
    its transport paused, and asyncio's wait() would then never see the process end.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):  # a child that left the group keeps a pipe open
        await asyncio.wait_for(_drain_and_wait(process), _REAP_SECONDS)


async def _drain_and_wait(process: asyncio.subprocess.Process) -> None:
    for stream in (process.stdout, process.stderr):
        while stream is not None and await stream.read(_READ_CHUNK):
            pass
    await process.wait()


def _message(name: str, code: int | None, err: bytes) -> str:
    text = err.decode("utf-8", "replace").strip()
    if len(err) >= MAX_MESSAGE_BYTES:
        text += " … (shortened)"
    return f"{name} failed (exit code {code}): {text or 'no error message'}"
