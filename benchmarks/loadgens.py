"""The load generators of benchmark 1: `intakeload` (Go, built here on first use) or
`benchmarks/loadgen.py` (Python, aiohttp). Both take the same options and print the
same JSON object."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import BenchmarkError

SOURCE = harness.ROOT / "benchmarks" / "intakeload"


def command(kind: str) -> list[str]:
    """The argv that starts the load generator of `kind` (go or python), before options."""
    if kind == "python":
        return [sys.executable, "-m", "benchmarks.loadgen"]
    return [str(intakeload())]


def options(**values: object) -> list[str]:
    """`--name value` pairs (True: a bare `--name`), spelt alike by both generators."""
    argv: list[str] = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:
            argv += [flag, str(value)]
    return argv


def intakeload() -> Path:
    """The Go load generator, built into the cache under a digest of its source."""
    digest = hashlib.sha256()
    for name in ("go.mod", "main.go"):
        digest.update((SOURCE / name).read_bytes())
    binary = harness.CACHE / f"intakeload-{digest.hexdigest()[:12]}" / "intakeload"
    if binary.is_file():
        return binary
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise BenchmarkError(
            "no Go toolchain for benchmarks/intakeload: install Go, or pass --loadgen python"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"GOWORK": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
    print(f"building {binary} with {go}", file=sys.stderr)
    subprocess.run(
        [go, "build", "-trimpath", "-buildvcs=false", "-o", str(binary), "."],
        cwd=SOURCE,
        env=env,
        check=True,
    )
    return binary
