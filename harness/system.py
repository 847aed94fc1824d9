"""A whole local system, started as processes: one PostgreSQL cluster, three databases, three service processes.

`banking-cli up`, the end-to-end tests and the benchmark all start the system through this module.
It talks to the services the way a deployment does: as separate processes configured by environment
variables (`python -m accounts_service`), never by importing them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.local_postgres import LocalPostgres

HEALTH_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
SEED_SKIPPED_MARK = "seed-demo: skipped "  # shared/seeding.py: one line per demo row it could not restore


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # the Python package: python -m <name>
    database: str  # its own database
    default_port: int
    url_variable: str  # how the other services find it


SERVICES = (
    ServiceSpec("customer_service", "customers", 3001, "CUSTOMER_SERVICE_URL"),
    ServiceSpec("accounts_service", "accounts", 3002, "ACCOUNTS_SERVICE_URL"),
    ServiceSpec("transactions_service", "transactions", 3003, "TRANSACTIONS_SERVICE_URL"),
)
SERVICE_BY_NAME = {spec.name: spec for spec in SERVICES}
CONSOLE = "web"  # the web console (python -m web): no database, in front of the three services
COORDINATOR_KEY_HOLDERS = ("transactions_service", "accounts_service")


@dataclass
class LocalSystem:
    postgres: LocalPostgres
    ports: dict[str, int]
    log_dir: Path
    jwt_secret: str
    database_prefix: str = ""
    demo_endpoints: bool = True
    extra_env: dict[str, str] = field(default_factory=dict)
    # The key of the coordinator's /2pc calls, for transactions_service and accounts_service only. No client
    # needs it, so a fresh one per system is the default.
    coordinator_token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    service_token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))  # likewise
    dev_mode: bool = False  # DEV_MODE for the services: `banking-cli up` sets it
    # argv per service when it is not `python -m <service>` (a test can run a deliberately broken one)
    commands: dict[str, list[str]] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    # More processes of a service (replicas on its database, or shards on their own): instance -> service.
    # An instance is started, killed and addressed by its name like a service; its environment adds its own.
    instances: dict[str, str] = field(default_factory=dict)
    instance_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def add_instance(self, service: str, instance: str, port: int, env: dict[str, str] | None = None) -> None:
        assert service in SERVICE_BY_NAME and instance not in self.ports, "a new name for a known service"
        self.instances[instance] = service
        self.ports[instance] = port
        self.instance_env[instance] = dict(env or {})

    def service_of(self, name: str) -> str:
        return self.instances.get(name, name)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def database_name(self, service: str) -> str:
        return self.database_prefix + SERVICE_BY_NAME[self.service_of(service)].database

    def database_url(self, service: str) -> str:
        return self.postgres.url(self.database_name(service))

    def service_env(self, service: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
        environ = dict(os.environ)
        environ.update(
            {
                "DATABASE_URL": self.database_url(service),
                "PORT": str(self.ports[service]),
                "JWT_SECRET": self.jwt_secret,
                "SERVICE_TOKEN_SECRET": self.service_token_secret,
                "DEV_MODE": "true" if self.dev_mode else "false",
                "LOG_DIR": str(self.log_dir),
                "DEMO_ENDPOINTS": "true" if self.demo_endpoints else "false",
                **{spec.url_variable: self.url(spec.name) for spec in SERVICES},
                **(
                    {"COORDINATOR_TOKEN_SECRET": self.coordinator_token_secret}
                    if self.service_of(service) in COORDINATOR_KEY_HOLDERS
                    else {}
                ),
                **self.extra_env,
                **self.instance_env.get(service, {}),
                **(overrides or {}),
            }
        )
        return environ

    def create_databases(self) -> None:
        for spec in SERVICES:
            asyncio.run(self.postgres.create_database(self.database_name(spec.name)))

    def run_command(self, service: str, command: str) -> str:
        """Run `python -m <service> <command>` (migrate, seed-demo) to completion; what it printed."""
        result = subprocess.run(
            [sys.executable, "-m", self.service_of(service), command],
            env=self.service_env(service),
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{service} {command} failed:\n{result.stderr[-4000:]}")
        return result.stdout

    def prepare(self, *, seed: bool = True) -> list[str]:
        """Databases, migrations, demo data: everything before the first service starts; the demo rows skipped."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.create_databases()
        skipped = []
        for spec in SERVICES:
            self.run_command(spec.name, "migrate")
            if seed:
                output = self.run_command(spec.name, "seed-demo")
                skipped += [line for line in output.splitlines() if SEED_SKIPPED_MARK in line]
        return skipped

    def start(self, service: str, overrides: dict[str, str] | None = None, *, wait: bool = True) -> subprocess.Popen:
        assert service not in self.processes or self.processes[service].poll() is not None, "already running"
        package = self.service_of(service)
        command = self.commands.get(package, [sys.executable, "-m", package])
        return self._spawn(service, command, self.service_env(service, overrides), wait=wait)

    def start_console(self, port: int, *, wait: bool = True) -> subprocess.Popen:
        """The web console on `port`, passing the API through to this system's services."""
        self.ports[CONSOLE] = port
        environ = {
            **os.environ,
            "PORT": str(port),
            "DEMO_ENDPOINTS": "true" if self.demo_endpoints else "false",
            **{spec.url_variable: self.url(spec.name) for spec in SERVICES},
        }
        return self._spawn(CONSOLE, [sys.executable, "-m", CONSOLE], environ, wait=wait)

    def _spawn(self, name: str, command: list[str], environ: Mapping[str, str], *, wait: bool) -> subprocess.Popen:
        """Start `name`, its output appended to <log_dir>/<name>.out; with `wait`, until it answers."""
        with open(self.log_dir / f"{name}.out", "ab") as output:
            process = subprocess.Popen(
                command, env=environ, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        self.processes[name] = process
        if wait:
            self.wait_ready(name)
        return process

    def start_all(self) -> None:
        for spec in SERVICES:
            self.start(spec.name, wait=False)
        for spec in SERVICES:
            self.wait_ready(spec.name)

    def wait_ready(self, service: str, timeout_s: float = HEALTH_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            process = self.processes.get(service)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{service} exited with {process.returncode}; see {self.log_dir}/{service}.out")
            try:
                with urllib.request.urlopen(self.url(service) + "/health/ping", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{service} not ready after {timeout_s}s")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        process = self.processes.get(service)
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def stop_all(self) -> None:
        self.kill(CONSOLE, signal.SIGTERM)
        for name in [*reversed(self.instances), *(spec.name for spec in reversed(SERVICES))]:
            self.kill(name, signal.SIGTERM)
