"""Time a gitops-bot command the way the server runs it: in a process that is already warm.

    python -m benchmarks.warm [--warm-up "ARGS"] -- ARGS

`gitops-bot serve` runs every preview and apply in one long-lived process, so imports,
compiled schemas and parsed policies are paid once, not per pull request. This runs
the warm-up command (by default ARGS itself) once, untimed, then ARGS once, timed; it
prints the timed run's output, then its wall and CPU seconds as JSON on the last line.
The exit code is the timed run's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import time

from bot.__main__ import main as gitops_bot


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm-up", help="arguments of the untimed first command")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = [a for a in args.command if a != "--"]
    _captured(shlex.split(args.warm_up) if args.warm_up else command)
    wall, cpu = time.perf_counter(), time.process_time()
    code, output = _captured(command)
    timing = {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}
    print(output, json.dumps(timing), sep="\n")
    return code


def _captured(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = gitops_bot(argv)
    return code, out.getvalue()


if __name__ == "__main__":
    raise SystemExit(main())
