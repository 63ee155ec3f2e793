"""The console program ends `validate` and `plan` without the interpreter's teardown, once
their output is out; every other command ends normally."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers.manifests import deployment

# The program as the console script runs it, with a hook that only a normal exit runs.
PROGRAM = """
import atexit, sys
atexit.register(print, "torn down")
from bot.__main__ import console
sys.exit(console())
"""
LIBRARY = """
import atexit, sys
atexit.register(print, "torn down")
from bot.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


# Buffered, as a pipe is by default (this machine's shells set PYTHONUNBUFFERED).
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def run(source: str, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-c", source, *args]  # the output must still all be out
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=BUFFERED)


def manifests(folder: Path, count: int) -> Path:
    """`count` files whose objects break a default policy: long output, exit code 1."""
    folder.mkdir()
    for number in range(count):
        untagged = deployment(name=f"web-{number}", image="registry.example.com/web")
        (folder / f"web-{number}.yaml").write_text(untagged)
    return folder


def test_validate_ends_at_once_with_all_its_output_and_its_exit_code(tmp_path: Path) -> None:
    # Little output (less than a pipe's buffer) and much: each must be out in full.
    for count, format_ in ((3, "text"), (300, "json")):
        folder = manifests(tmp_path / f"deploy-{count}", count)
        quick = run(PROGRAM, "validate", "--format", format_, str(folder))
        normal = run(LIBRARY, "validate", "--format", format_, str(folder))
        assert normal.stdout.endswith("torn down\n")
        assert quick.stdout == normal.stdout.removesuffix("torn down\n")
        assert quick.returncode == normal.returncode == 1
        assert quick.stdout.count("pinned-images") == count


def test_other_commands_and_failures_end_normally(tmp_path: Path) -> None:
    done = run(PROGRAM, "init", "--repo", str(manifests(tmp_path / "deploy", 1)))
    assert done.stdout.endswith("torn down\n")
    failed = run(PROGRAM, "plan", "--no-such-option")
    assert failed.returncode == 2 and "torn down" in failed.stdout  # usage error: argparse
    unreadable = run(
        PROGRAM, "plan", "--repo", str(tmp_path / "gone"), "--base", "a", "--head", "b"
    )
    assert unreadable.returncode == 3 and "is not a folder" in unreadable.stderr
    assert "torn down" not in unreadable.stdout  # a read-only command, said in one line


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`gitops-bot validate ... | head`: more output than a pipe holds, its reader gone."""
    folder = manifests(tmp_path / "deploy", 300)
    for source in (PROGRAM, LIBRARY):
        argv = [sys.executable, "-c", source, "validate", "--format", "json", str(folder)]
        out, err = subprocess.PIPE, subprocess.PIPE
        with subprocess.Popen(argv, stdout=out, stderr=err, env=BUFFERED) as proc:
            assert proc.stdout is not None and proc.stderr is not None
            assert proc.stdout.read(100).startswith(b"{")
            proc.stdout.close()  # the rest (over 100 KB) cannot all be in the pipe yet
            errors = proc.stderr.read().decode()
        assert proc.returncode == 3
        assert "Traceback" not in errors and "BrokenPipeError" not in errors
