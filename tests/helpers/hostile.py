"""Shared by the hostile-input tests: the CLI as a subprocess, with a bound on its time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BOUND_SECONDS = 120  # a guard against a hang, not a timing claim


def run_bot(*args: str, cwd: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """`gitops-bot ARGS` with only the GITOPS_BOT_* settings given (names without prefix)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_BOT_")}
    env |= {f"GITOPS_BOT_{name.upper()}": value for name, value in settings.items()}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=env,
        timeout=BOUND_SECONDS,
    )
