"""The container image, checked without a Docker engine: what the Dockerfile copies exists
and is in the build context, its bases and tools are pinned to what the tests use, it runs
as a non-root user, and the command and health check it names work."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
import venv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from bot.config.secrets import Secret
from bot.config.settings import Settings
from bot.server.app import create_app

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
PIP = (sys.executable, "-m", "pip")
PINNED_TAG = re.compile(
    r"^(?P<name>[a-z0-9./-]+):(?P<version>\d+\.\d+\.\d+)(?P<variant>-[a-z0-9-]+)?$"
)


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM it belongs to


@cache
def instructions() -> tuple[Instruction, ...]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    parsed, stage = [], -1
    for text in logical:
        keyword, _, arguments = text.partition(" ")
        stage += keyword.upper() == "FROM"
        parsed.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return tuple(parsed)


def only(keyword: str, stage: int | None = None) -> list[Instruction]:
    return [
        i for i in instructions() if i.keyword == keyword and (stage is None or i.stage == stage)
    ]


def final_stage() -> int:
    return only("FROM")[-1].stage


def runtime_env() -> dict[str, str]:
    """ENV of the final stage (KEY=value pairs)."""
    values: dict[str, str] = {}
    for instruction in only("ENV", final_stage()):
        for pair in instruction.arguments.split():
            key, _, value = pair.partition("=")
            values[key] = value
    return values


def go_directive(gomod: Path) -> tuple[int, ...]:
    match = re.search(r"^go (\d+(?:\.\d+)*)$", gomod.read_text(), re.MULTILINE)
    assert match, f"{gomod} has no go directive"
    return tuple(int(part) for part in match.group(1).split("."))


def test_every_base_image_is_pinned_to_a_patch_release() -> None:
    bases = [i.arguments.split()[0] for i in only("FROM")]
    assert len(bases) == 3, "tools, wheel and runtime stages"
    for base in bases:
        assert PINNED_TAG.match(base), f"{base}: pin an exact patch release, never a moving tag"
    runtime = PINNED_TAG.match(bases[-1])
    assert runtime and runtime["name"] == "python" and runtime["variant"] == "-slim-bookworm"
    assert runtime["version"].startswith("3.11."), "the Python the project is tested with"
    assert bases[1] == bases[-1], "the venv is built on the very base it runs on"


def test_the_tools_are_built_from_the_modules_the_tests_pin() -> None:
    tools = only("FROM")[0]
    assert tools.arguments.endswith(" AS tools")
    go = PINNED_TAG.match(tools.arguments.split()[0])
    assert go and go["name"] == "golang"
    have = tuple(int(part) for part in go["version"].split("."))
    assert have >= go_directive(ROOT / "testenv/tools/go.mod"), "Go too old for the tools module"
    (build,) = only("RUN", tools.stage)
    # The same script as `make test`: -mod=readonly builds from testenv/tools/go.mod and
    # go.sum, and it rejects binaries that do not report the pinned versions.
    assert "bash testenv/build.sh tools" in build.arguments
    copied = [i.arguments for i in only("COPY", tools.stage)]
    assert any("testenv/tools/" in c for c in copied)
    runtime_copies = [i.arguments for i in only("COPY", final_stage())]
    assert "--from=tools /out/kustomize /out/helm /usr/local/bin/" in runtime_copies


def test_the_tools_module_pins_the_versions_the_renderer_tests_run() -> None:
    gomod = (ROOT / "testenv/tools/go.mod").read_text()
    for module in ("sigs.k8s.io/kustomize/kustomize/v5", "helm.sh/helm/v4"):
        assert re.search(rf"^\s+{re.escape(module)} v\d+\.\d+\.\d+$", gomod, re.MULTILINE), module


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for instruction in only("COPY"):
        words = instruction.arguments.split()
        if any(w.startswith("--from=") for w in words):
            continue
        sources += [w for w in words[:-1] if not w.startswith("--")]
    assert sources, "the Dockerfile copies files from the context"
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"COPY {source}: no such file in the repository"
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        kept = [f for f in files if in_context(f.relative_to(ROOT).as_posix(), patterns)]
        assert kept, f"COPY {source}: .dockerignore leaves it out of the build context"
    assert not in_context("tests/conftest.py", patterns)
    assert not in_context(".git/config", patterns)
    assert not in_context("gitops-bot.sqlite3", patterns)


def in_context(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; a pattern that matches
    a parent folder matches everything in it; `!` keeps what an earlier pattern left out."""
    kept = True
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        parents = [path.rsplit("/", n)[0] for n in range(path.count("/") + 1)]
        if any(_matches(candidate, glob) for candidate in parents):
            kept = negated
    return kept


def _matches(path: str, glob: str) -> bool:
    if glob.startswith("**/"):
        return any(_matches(path.split("/", n)[-1], glob[3:]) for n in range(path.count("/") + 1))
    return path.count("/") == glob.count("/") and fnmatch.fnmatchcase(path, glob)


def test_the_runtime_runs_as_the_non_root_user_the_deployment_expects() -> None:
    (user,) = only("USER", final_stage())
    uid, _, gid = user.arguments.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    deployment = yaml.safe_load((ROOT / "deploy/kubernetes/deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))
    assert pod["runAsNonRoot"] is True


def test_the_runtime_installs_git_and_no_build_tools() -> None:
    (install,) = only("RUN", final_stage())
    assert "git" in install.arguments.split()
    assert "--no-install-recommends" in install.arguments
    for compiler in ("gcc", "build-essential", "golang"):
        assert compiler not in install.arguments.split()
    copies = [i.arguments for i in only("COPY", final_stage())]
    assert all(c.startswith("--from=") for c in copies), "only built artefacts are copied in"


def test_entrypoint_and_health_check_match_the_app() -> None:
    (entrypoint,) = only("ENTRYPOINT")
    (command,) = only("CMD", final_stage())
    argv = json.loads(entrypoint.arguments) + json.loads(command.arguments)
    assert argv == ["/usr/bin/tini", "--", "gitops-bot", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["gitops-bot"] == "bot.__main__:console"
    (health,) = only("HEALTHCHECK")
    assert "/healthz" in health.arguments and "GITOPS_BOT_PORT" in health.arguments
    env = runtime_env()
    assert env["GITOPS_BOT_HOST"] == "0.0.0.0"  # noqa: S104 (reachable from outside the container)
    (exposed,) = only("EXPOSE")
    assert exposed.arguments == env["GITOPS_BOT_PORT"] == str(Settings().port)
    assert ("GET", "/healthz") in routes()
    assert env["GITOPS_BOT_DATABASE_URL"].startswith("sqlite:////var/lib/gitops-bot/")
    assert env["GITOPS_BOT_DATA_DIR"].startswith("/var/lib/gitops-bot/")


def routes() -> set[tuple[str, str]]:
    app = create_app(Settings(github_webhook_secret=Secret("x" * 20), github_token=Secret("t")))
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }


# The installed package must be found through its venv alone, not a PYTHONPATH that a
# developer's shell (or a worktree's test runner) points at a source tree.
OWN_PATHS_ONLY = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def share_dependencies(python: Path) -> None:
    """Let the venv at `python` import the dependencies installed in the test run's own
    environment (not the base interpreter's, which may hold none of them). A path listed
    in a `.pth` file is added as it is: the `.pth` files inside it, among them the project's
    editable install, are not read, so `import bot` still finds the wheel's copy."""
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(own) / "test-run-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built and installed as the Dockerfile's wheel stage does (dependencies come
    from the test run's environment instead of PyPI); the bin dir of its venv."""
    work = tmp_path_factory.mktemp("image")
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (work / "dist").glob("gitops_bot-*.whl")
    venv.create(work / "venv", with_pip=False)
    bin_dir = work / "venv" / "bin"
    share_dependencies(bin_dir / "python")
    subprocess.run(
        [
            *PIP,
            "--python",
            str(bin_dir / "python"),
            "install",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return bin_dir


def test_the_installed_package_runs_the_entry_command(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [installed / "python", "-c", "import bot; print(bot.__file__)"],
        env=OWN_PATHS_ONLY,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(installed.parent)), "the wheel's copy, not the source tree"
    done = subprocess.run(
        [installed / "gitops-bot", "serve", "--help"],
        env=OWN_PATHS_ONLY,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: gitops-bot serve" in done.stdout


def test_the_installed_package_carries_its_default_policies(
    installed: Path, tmp_path: Path
) -> None:
    """`policies/` goes into the wheel (bot/default_policies): validation in the image has
    the organisation defaults, so an unpinned image is refused."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels:\n"
        "    app.kubernetes.io/name: web\nspec:\n  containers:\n    - name: web\n"
        "      image: nginx:latest\n      resources:\n        limits: {cpu: 100m, memory: 64Mi}\n"
    )
    done = subprocess.run(
        [installed / "gitops-bot", "validate", str(manifest)],
        env=OWN_PATHS_ONLY,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "pinned" in done.stdout
