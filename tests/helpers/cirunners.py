"""Run the CI steps this repository ships as GitHub's and GitLab's runners would, locally.

The install steps run for real (a new venv, `pip install` of this checkout), with the
dependencies taken from the test run's environment instead of the package index, as
tests/test_deploy_image.py does: the same pip command, offline and fast.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# GitHub's `shell: bash` and GitLab's bash runner both stop at the first failing command.
BASH = ("bash", "--noprofile", "--norc", "-eo", "pipefail")


def offline_install_env() -> dict[str, str]:
    """pip installs the package itself; its dependencies (and hatchling, the build backend)
    are imported from the test run's environment. Only PYTHONPATH entries are added, so
    `import bot` finds the freshly installed copy, not the test run's editable one."""
    own = sorted({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")})
    return {
        "PYTHONPATH": os.pathsep.join(own),
        "PIP_NO_INDEX": "1",
        "PIP_NO_DEPS": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # pip reads this inverted: 0 turns isolation off
    }


def base_env(home: Path) -> dict[str, str]:
    """A clean environment: the test run's python3 first on PATH, nothing of the bot's."""
    path = os.pathsep.join((str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"))
    return {"PATH": path, "HOME": str(home), "LANG": "C.UTF-8", **offline_install_env()}


@dataclass
class StepResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


@dataclass
class ActionRun:
    """A composite action's `run:` steps with the environment GitHub sets for them."""

    action_path: Path
    workspace: Path
    temp: Path
    inputs: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)  # e.g. GITHUB_BASE_REF
    steps: list[StepResult] = field(default_factory=list)
    step_outputs: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def definition(self) -> dict[str, Any]:
        loaded: dict[str, Any] = yaml.safe_load((self.action_path / "action.yml").read_text())
        return loaded

    def run(self, only: tuple[str, ...] = ()) -> list[StepResult]:
        """Each step in order (or those whose id or name starts with one of `only`), until
        one fails, as GitHub does."""
        for index, step in enumerate(self.definition["runs"]["steps"]):
            name = self.evaluate(step.get("name", f"step {index}"))
            if only and not any(name.startswith(o) or step.get("id") == o for o in only):
                continue
            result = self._run_step(index, step, name)
            self.steps.append(result)
            if result.returncode != 0:
                break
        return self.steps

    def _run_step(self, index: int, step: dict[str, Any], name: str) -> StepResult:
        assert step.get("shell") == "bash", f"{name}: only bash steps are run here"
        files = {
            k: self.temp / f"{k.lower()}-{index}" for k in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")
        }
        for file in files.values():
            file.write_text("")
        env = {
            **base_env(self.temp / "home"),
            **self.env,
            **{k: str(v) for k, v in files.items()},
            "GITHUB_WORKSPACE": str(self.workspace),
            "GITHUB_ACTION_PATH": str(self.action_path),
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_ACTIONS": "true",
            **{k: self.evaluate(str(v)) for k, v in step.get("env", {}).items()},
        }
        script = self.temp / f"step-{index}.sh"
        script.write_text(self.evaluate(step["run"]))
        done = subprocess.run(
            [*BASH, str(script)], cwd=self.workspace, env=env, capture_output=True, text=True
        )
        outputs = dict(
            line.split("=", 1) for line in files["GITHUB_OUTPUT"].read_text().splitlines()
        )
        if step.get("id"):
            self.step_outputs[step["id"]] = outputs
        summary = files["GITHUB_STEP_SUMMARY"].read_text()
        return StepResult(name, done.returncode, done.stdout, done.stderr, outputs, summary)

    def evaluate(self, text: str) -> str:
        """`${{ ... }}` as GitHub fills it in; an expression the test cannot answer fails."""
        return EXPRESSION.sub(lambda m: self._value(m[1]), text)

    def _value(self, expression: str) -> str:
        declared = self.definition.get("inputs", {})
        if expression.startswith("inputs."):
            name = expression.removeprefix("inputs.")
            assert name in declared, f"the action uses undeclared input {name!r}"
            return str(self.inputs.get(name, declared[name].get("default", "")))
        if expression == "github.action_path":
            return str(self.action_path)
        if match := re.fullmatch(r"steps\.([\w-]+)\.outputs\.([\w-]+)", expression):
            return self.step_outputs.get(match[1], {}).get(match[2], "")
        raise AssertionError(f"the test runner does not know the expression {expression!r}")

    def output(self, name: str) -> str:
        """An output of the action, from its `outputs:` table."""
        return self.evaluate(str(self.definition["outputs"][name]["value"]))


def gitlab_job(template: Path, job: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(template.read_text())
    return dict(loaded[job])


def run_gitlab_job(
    job: Mapping[str, Any],
    project: Path,
    variables: Mapping[str, str],
    temp: Path,
    parts: tuple[str, ...] = ("before_script", "script"),
) -> subprocess.CompletedProcess[str]:
    """The job's `parts` in one shell, as the GitLab runner runs them, with the job's
    variables over the predefined CI variables, and the pipeline's own over those."""
    env = {
        **base_env(temp / "home"),
        "TMPDIR": str(temp),
        "CI": "true",
        "GITLAB_CI": "true",
        "CI_PROJECT_DIR": str(project),
        **{k: str(v) for k, v in job.get("variables", {}).items()},
        **variables,
    }
    script = temp / "gitlab-job.sh"
    script.write_text("\n".join(line for part in parts for line in job.get(part, [])) + "\n")
    return subprocess.run(
        [*BASH, str(script)], cwd=project, env=env, capture_output=True, text=True
    )
