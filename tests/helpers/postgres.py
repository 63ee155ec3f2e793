"""A throwaway PostgreSQL server on a loopback port, for tests of the multi-replica store."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SETUP_SCRIPT = Path(__file__).resolve().parents[2] / "testenv" / "postgres.sh"
BIN_ENV_VAR = "GITOPS_BOT_POSTGRES_BIN"


class PostgresUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class PostgresServer:
    port: int
    data_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


def find_bin_dir() -> Path:
    """Where initdb and postgres are: the override variable, else the setup script's answer."""
    override = os.environ.get(BIN_ENV_VAR)
    if override:
        return Path(override)
    done = subprocess.run(["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{SETUP_SCRIPT} failed: {done.stderr.strip()[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@contextmanager
def start_postgres(bin_dir: Path, workdir: Path, durable: bool = False) -> Iterator[PostgresServer]:
    """initdb, start on a free loopback port with trust auth, yield, then stop fast.

    Tests run without fsync (a crash test kills the bot, not the database); `durable`
    keeps PostgreSQL's default, for benchmarks that count what reached the disk.
    """
    data = workdir / "pgdata"
    data.mkdir(parents=True)
    as_postgres = _demote_command()
    _chown_for_postgres(workdir)
    _run(
        [
            *as_postgres,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]
    )
    port = _free_port()
    log = workdir / "postgres.log"
    options = f"-h 127.0.0.1 -p {port} -k {workdir} -c max_connections=200"
    options += "" if durable else " -c fsync=off"
    _run(
        [
            *as_postgres,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
    try:
        _wait_for_port(port, log)
        yield PostgresServer(port, data)
    finally:
        subprocess.run(
            [
                *as_postgres,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
            capture_output=True,
            check=False,
        )


def create_database(server: PostgresServer, name: str) -> str:
    import psycopg

    with psycopg.connect(server.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)


def _demote_command() -> list[str]:
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root but runuser is missing; cannot demote")
    return [runuser, "-u", "postgres", "--"]


def _chown_for_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user="postgres")
        for child in path.rglob("*"):
            shutil.chown(child, user="postgres")


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(f"{Path(argv[-1]).name}: {done.stderr.strip()[-2000:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise PostgresUnavailable(f"postgres did not listen on {port}: {log.read_text()[-2000:]}")
