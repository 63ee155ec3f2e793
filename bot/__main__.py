"""The command line: validate, plan, apply, drift, rollback, init, serve, retry, jobs, audit.

Exit codes: 0 success; 1 findings or a plan that blocks the merge (for apply: refused
because the commit has error findings, nothing applied); 2 wrong usage; 3 the job could
not be done (git, cluster or store unreachable, bad settings, an apply that failed in part,
the output's reader gone before the end, as with `| head`).
For drift: 0 the cluster matches Git, 1 it drifted, 3 it could not be compared.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from bot.cli.exits import EXIT_FAILED
from bot.cli.reports import report_target
from bot.cli.terminals import inert_output
from bot.config.settings import SettingsError
from bot.core.findings import Severity
from bot.core.formats import PLAN_FORMATS, VALIDATE_FORMATS
from bot.core.repoconfig import DEFAULT_KUBERNETES_VERSION, DEFAULT_UNKNOWN_KINDS
from bot.gcpause import cyclic_gc_paused
from bot.git.repos import GitError
from bot.schemas.catalog import UnsupportedKubernetesVersion

# Each command lives in bot/cli/<command>.py and is imported only when it runs: the
# Kubernetes client, the web server and the database drivers take about a second to
# import, so `validate` and `plan` start fast.


# Commands that only read and print. Run from the console, once their output is
# flushed they end without the interpreter's teardown (every module cleared, then a
# last collection over what the run built): 20-35 ms of a `plan`. The others end
# normally, so a store, a server or a ledger closes as it should.
_READ_ONLY = frozenset({"validate", "plan"})


def main(argv: Sequence[str] | None = None, *, quick_exit: bool = False) -> int:
    """Runs one command; `quick_exit` (the console program) ends a read-only one at once."""
    with inert_output():  # text from repositories, the store and forges cannot steer a terminal
        args = _parser().parse_args(argv)
        try:
            code = _run(args)
        except BrokenPipeError:
            code = _reader_gone()
    if quick_exit and args.command in _READ_ONLY:
        _exit_now(code)
    return code


def console() -> int:
    """The `gitops-bot` program."""
    return main(quick_exit=True)


def _run(args: argparse.Namespace) -> int:
    try:
        command = _imported(f"bot.cli.{args.command}")
        return int(command.run(args))
    except Exception as exc:
        if not isinstance(exc, _reported_errors()):
            raise
        print(f"gitops-bot: {exc}", file=sys.stderr)
        return EXIT_FAILED


def _reader_gone() -> int:
    """The output's reader left early (`| head`): the rest of it goes nowhere, without a
    traceback now or a second broken pipe when the interpreter flushes at exit."""
    with contextlib.suppress(OSError, ValueError):  # no descriptor: nothing is left to flush
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_FAILED


def _exit_now(code: int) -> NoReturn:
    """Ends the process once what it printed is out; what the run built is not torn down."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to deliver
            stream.flush()
    os._exit(code)


def _imported(name: str) -> ModuleType:
    """The command's module. Imported here for the first time, with the cyclic collector
    paused and what the imports built frozen after: modules, classes and functions live
    as long as the process and hold no garbage, yet every collector pass would walk them
    again. A process that runs commands one after another (benchmarks/warm.py) freezes
    once, as `serve` does."""
    if name in sys.modules:
        return sys.modules[name]
    with cyclic_gc_paused():
        module = importlib.import_module(name)
        gc.freeze()
    return module


def _reported_errors() -> tuple[type[Exception], ...]:
    """The errors said in one line. StoreError only once a store was imported: only a
    store raises it, and importing the store's port just to name it costs start-up time."""
    errors: tuple[type[Exception], ...] = (GitError, SettingsError, UnsupportedKubernetesVersion)
    ports = sys.modules.get("bot.store.ports")
    return (*errors, ports.StoreError) if ports is not None else errors


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gitops-bot", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="schema and policy check of local files")
    validate.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    validate.add_argument("--kubernetes-version", default=DEFAULT_KUBERNETES_VERSION)
    validate.add_argument(
        "--policies",
        type=Path,
        action="append",
        default=[],
        help="extra policy folder (the defaults always apply)",
    )
    validate.add_argument("--namespace", default="default")
    validate.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="CRD file or folder: schemas for custom resources (repeatable)",
    )
    validate.add_argument(
        "--schema-folder",
        type=Path,
        action="append",
        default=[],
        help="JSON schemas in kubeconform's layout, {group}/{kind}_{version}.json (repeatable)",
    )
    validate.add_argument(
        "--unknown-kinds",
        choices=[s.value for s in Severity],
        default=DEFAULT_UNKNOWN_KINDS.value,
        help="what an object with no schema anywhere gets (default: %(default)s)",
    )
    validate.add_argument("--format", choices=VALIDATE_FORMATS, default="text")
    _add_report_option(validate, VALIDATE_FORMATS)
    validate.set_defaults(command="validate")

    plan = commands.add_parser("plan", help="the preview a pull request gets, run locally")
    plan.add_argument("--repo", type=Path, default=Path())
    plan.add_argument("--base", required=True, help="base ref: config and policies come from here")
    plan.add_argument("--head", required=True)
    plan.add_argument("--env", help="only this environment")
    plan.add_argument("--format", choices=PLAN_FORMATS, default="markdown")
    _add_report_option(plan, PLAN_FORMATS)
    plan.add_argument(
        "--no-cluster",
        action="store_true",
        help="skip the live layer even where the environment's cluster is configured",
    )
    plan.add_argument(
        "--repo-url",
        action="append",
        default=[],
        help="a URL naming this repository in Argo CD and Flux objects (repeatable)",
    )
    plan.add_argument(
        "--any-repo-url", action="store_true", help="take every repoURL as this repository"
    )
    plan.add_argument(
        "--branch",
        action="append",
        default=[],
        help="the branch the change merges into, as revisions name it (default: --base)",
    )
    plan.set_defaults(command="plan")

    apply = commands.add_parser("apply", help="break-glass: apply one environment at a ref now")
    apply.add_argument("--env", required=True, help="the environment to apply")
    apply.add_argument("--repo", type=Path, default=Path())
    apply.add_argument("--ref", required=True, help="the commit; its own config is used")
    apply.add_argument(
        "--repository",
        metavar="FORGE:OWNER/NAME",
        help="the repository as the server knows it (github:acme/shop), so the apply takes "
        "the server's lock and ordering on the environment; default: the forge repository "
        "the checkout's `origin` remote points at",
    )
    apply.add_argument(
        "--allow-older",
        action="store_true",
        help="apply even when the environment runs a newer commit (a rollback on purpose)",
    )
    apply.add_argument("--format", choices=["text", "json"], default="text")
    apply.set_defaults(command="apply")

    drift = commands.add_parser("drift", help="live cluster vs the default branch, for one env")
    drift.add_argument("--env", required=True, help="the environment to compare")
    drift.add_argument("--repo", type=Path, default=Path())
    drift.add_argument("--ref", default="HEAD", help="the default branch's head (default: HEAD)")
    drift.add_argument("--format", choices=["text", "json"], default="text")
    drift.set_defaults(command="drift")

    rollback = commands.add_parser(
        "rollback", help="open a pull request that rolls an environment back (ledger-driven)"
    )
    rollback.add_argument("--env", required=True, help="the environment to roll back")
    rollback.add_argument(
        "--to", metavar="COMMIT", help="an earlier applied commit (default: the one before)"
    )
    rollback.add_argument(
        "--merge", action="store_true", help="break-glass: merge it now, through a merge commit"
    )
    rollback.add_argument(
        "--repository",
        required=True,
        metavar="FORGE:OWNER/NAME",
        help="the repository as the server knows it (github:acme/shop, gitlab:group/project)",
    )
    rollback.add_argument(
        "--repo", type=Path, default=Path(), help="a clone holding the branch's head"
    )
    rollback.add_argument("--branch", default="main", help="the default branch (default: main)")
    rollback.add_argument("--installation", type=int, help="GitHub App installation id")
    rollback.set_defaults(command="rollback")

    init = commands.add_parser("init", help="write a starter .gitops-bot.yaml for a repository")
    init.add_argument("--repo", type=Path, default=Path(), help="the working tree to look at")
    init.add_argument("--force", action="store_true", help="replace an existing config")
    init.set_defaults(command="init")

    _add_github_app(commands)

    serve = commands.add_parser("serve", help="the webhook server (settings: GITOPS_BOT_*)")
    serve.set_defaults(command="serve")
    retry = commands.add_parser("retry", help="re-queue a dead-lettered job by its id")
    retry.add_argument("job_id", type=int, metavar="JOB_ID")
    retry.set_defaults(command="retry")
    jobs = commands.add_parser("jobs", help="the job store: --dead lists dead-lettered jobs")
    jobs.add_argument("--dead", action="store_true", required=True)
    jobs.set_defaults(command="jobs")

    audit = commands.add_parser("audit", help="the audit ledger: list it, or --verify its chain")
    audit.add_argument("--env", help="only this environment")
    audit.add_argument("--since", help="only records written since (ISO date, UTC)")
    audit.add_argument("--format", choices=["text", "json"], default="text")
    audit.add_argument(
        "--verify",
        action="store_true",
        help="check every record's keyed hash and link; exit 1 if any cannot be trusted",
    )
    audit.add_argument(
        "--repository",
        action="append",
        default=[],
        help="with --verify: also compare with the ledger anchors this repository's forge "
        "holds (forge:owner/name; repeatable; default: GITOPS_BOT_DRIFT_REPOSITORIES)",
    )
    audit.add_argument(
        "--anchor",
        action="append",
        default=[],
        help="with --verify: also compare with an anchor noted elsewhere (SEQUENCE:HASH, as "
        "an apply publishes it or a verify prints it; repeatable)",
    )
    audit.set_defaults(command="audit")
    return parser


def _add_github_app(commands: Any) -> None:
    github_app = commands.add_parser("github-app", help="set up the bot's GitHub App")
    actions = github_app.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", help="create the App from its manifest and write its settings file"
    )
    create.add_argument("--url", required=True, help="https://HOST where gitops-bot serve runs")
    create.add_argument("--org", help="create the App in this organisation")
    create.add_argument(
        "--out", type=Path, default=Path("gitops-bot.github-app.yaml"), help="settings file"
    )
    create.add_argument("--force", action="store_true", help="replace an existing --out")
    create.add_argument("--name", default="gitops-bot", help="the App's name on GitHub")
    create.add_argument(
        "--github-url", default="https://github.com", help="GitHub Enterprise: https://HOST"
    )
    create.add_argument("--api-url", help="default: from --github-url (HOST/api/v3 for GHES)")
    create.add_argument("--port", type=int, default=0, help="local port (default: any free)")
    create.set_defaults(command="github_app")


def _add_report_option(command: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    command.add_argument(
        "--report",
        action="append",
        default=[],
        type=report_target(formats),
        metavar="FORMAT=FILE",
        help=f"also write FORMAT ({', '.join(formats)}) to FILE; may be repeated",
    )


if __name__ == "__main__":
    sys.exit(console())
