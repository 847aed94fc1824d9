"""Each service run exactly as its container runs it, against the suite's PostgreSQL, with no container engine.

The argv lists and setting names are read out of compose.yaml (and checked to equal the Kubernetes
manifests'); `python` becomes this interpreter and `banking-cli` its script, nothing else changes. Each
setting gets a value for this machine: its own database, a free port, 127.0.0.1 for HOST (the containers'
0.0.0.0 would open the port to the network here). A process gets those settings, the image's own ENV and
nothing else from this shell, so a setting missing from compose.yaml fails here as it would in a container.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from accounts_service.settings import Settings as AccountsSettings
from cli.core.config import ENV_BY_KEY as CLI_SETTINGS
from customer_service.settings import Settings as CustomerSettings
from harness.local_postgres import LocalPostgres, free_port
from shared import demo_ids
from tests.conftest import TEST_COORDINATOR_SECRET, TEST_JWT_SECRET, TEST_SERVICE_SECRET
from tests.deploy.manifests import (
    ContainerCommand,
    compose,
    compose_commands,
    dockerfile_environment,
    dockerfile_stages,
    kubernetes,
    kubernetes_commands,
)
from transactions_service.settings import Settings as TransactionsSettings

pytestmark = pytest.mark.e2e

DATABASE_OF = {"customer_service": "customers", "accounts_service": "accounts", "transactions_service": "transactions"}
URL_SETTING_OF = {
    "customer_service": "CUSTOMER_SERVICE_URL",
    "accounts_service": "ACCOUNTS_SERVICE_URL",
    "transactions_service": "TRANSACTIONS_SERVICE_URL",
}
COMPOSE_SERVICE_OF = {
    "customer_service": "customer-service",
    "accounts_service": "accounts-service",
    "transactions_service": "transactions-service",
}
SETTINGS_OF = {
    "customer_service": CustomerSettings,
    "accounts_service": AccountsSettings,
    "transactions_service": TransactionsSettings,
}
# What differs between a laptop and a container, so a container must set it rather than take the default.
MUST_SET = frozenset({"DATABASE_URL", "HOST", "PORT", "JWT_SECRET", "LOG_DIR", "DEMO_ENDPOINTS"})
ONE_SHOT_STEPS = ("migrate", "seed-demo")
ALICE_MAIN = str(demo_ids.ALICE_MAIN)
BOB_MAIN = str(demo_ids.BOB_MAIN)
STEP_TIMEOUT_S = 60
HEALTH_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10


def host_argv(argv: tuple[str, ...] | list[str]) -> list[str]:
    """The container's argv for this machine: its interpreter and its banking-cli script."""
    scripts = Path(sys.executable).parent
    replacements = {"python": sys.executable, "banking-cli": str(scripts / "banking-cli")}
    return [replacements.get(argv[0], argv[0]), *argv[1:]]


@dataclass
class Machine:
    """This machine's values for the containers' settings."""

    postgres: LocalPostgres
    work_dir: Path
    database_prefix: str = field(default_factory=lambda: f"deploy{uuid.uuid4().hex[:8]}_")
    ports: dict[str, int] = field(default_factory=lambda: {package: free_port() for package in DATABASE_OF})

    def url(self, package: str) -> str:
        return f"http://127.0.0.1:{self.ports[package]}"

    def value(self, name: str, written: Any, package: str | None, port: int | None = None) -> str:
        if name == "DATABASE_URL":
            return self.postgres.url(self.database_prefix + DATABASE_OF[package])
        if name == "PORT":
            return str(port or self.ports[package])
        url_packages = {setting: owner for owner, setting in URL_SETTING_OF.items()}
        values = {
            "HOST": "127.0.0.1",
            "JWT_SECRET": TEST_JWT_SECRET,
            "LOG_DIR": str(self.work_dir / "logs"),
            "COORDINATOR_TOKEN_SECRET": TEST_COORDINATOR_SECRET,
            "SERVICE_TOKEN_SECRET": TEST_SERVICE_SECRET,
            "DEMO_DATA": "true",
        }  # the transfer below moves demo money
        if name in url_packages:
            return self.url(url_packages[name])
        if name in values:
            return values[name]
        assert "${" not in str(written), f"{name} is interpolated in compose.yaml: give it a test value here"
        return str(written)

    def environment(self, service: dict[str, Any], package: str | None, port: int | None = None) -> dict[str, str]:
        image = dockerfile_environment(dockerfile_stages()[-1])
        environment = {name: value for name, value in image.items() if name != "PATH"}
        environment.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            HOME=str(self.work_dir / "home"),
            LANG="C.UTF-8",
        )
        for name, written in service.get("environment", {}).items():
            environment[name] = self.value(name, written, package, port)
        return environment


@dataclass
class RunningSystem:
    machine: Machine
    compose: dict[str, Any]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def service(self, package: str) -> dict[str, Any]:
        return self.compose["services"][COMPOSE_SERVICE_OF[package]]

    def start(self, package: str, *, name: str | None = None, port: int | None = None) -> subprocess.Popen:
        name = name or package
        service = self.service(package)
        output = open(self.machine.work_dir / f"{name}.out", "ab")
        process = subprocess.Popen(
            host_argv(service["command"]),
            env=self.machine.environment(service, package, port),
            cwd=self.machine.work_dir,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        output.close()
        self.processes[name] = process
        return process

    def output(self, name: str) -> str:
        return (self.machine.work_dir / f"{name}.out").read_text(errors="replace")[-4000:]

    def wait_healthy(self, name: str, port: int) -> None:
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.processes[name].poll() is None, f"{name} exited:\n{self.output(name)}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"{name} not healthy after {HEALTH_TIMEOUT_S}s:\n{self.output(name)}")

    def stop(self, name: str) -> int:
        """SIGTERM, as `docker stop` and the kubelet send; SIGKILL only past the grace period."""
        process = self.processes[name]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode


def run_one_shot_step(machine: Machine, document: dict[str, Any], step: str) -> None:
    """Every container whose command ends in `step`, at once (each touches its own database only)."""
    started = []
    for name, service in document["services"].items():
        if service.get("command", [])[-1:] == [step]:
            package = service["command"][2]
            started.append(
                (
                    name,
                    subprocess.Popen(
                        host_argv(service["command"]),
                        env=machine.environment(service, package),
                        cwd=machine.work_dir,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                        text=True,
                        stdin=subprocess.DEVNULL,
                    ),
                )
            )
    assert len(started) == len(DATABASE_OF), f"one {step} per database"
    failures = []
    try:
        for name, process in started:
            _, errors = process.communicate(timeout=STEP_TIMEOUT_S)
            if process.returncode != 0:
                failures.append(f"{name} exited {process.returncode}:\n{errors[-4000:]}")
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def running(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """compose.yaml's order: databases, each migration, each seed, then the three services, healthy."""
    document = compose()
    machine = Machine(postgres, tmp_path_factory.mktemp("containers"))
    (machine.work_dir / "home").mkdir()
    for database in DATABASE_OF.values():
        asyncio.run(postgres.create_database(machine.database_prefix + database))
    for step in ONE_SHOT_STEPS:
        run_one_shot_step(machine, document, step)
    system = RunningSystem(machine, document)
    try:
        for package in DATABASE_OF:
            system.start(package)
        for package in DATABASE_OF:
            system.wait_healthy(package, machine.ports[package])
        yield system
    finally:
        for name in list(system.processes):
            system.stop(name)


def names_read_by(settings_class: Any) -> set[str]:
    """Every setting name a Settings.from_environ looks up (it reads through .get)."""

    class Recording(dict):
        def __init__(self) -> None:
            super().__init__(DATABASE_URL="postgresql://reader@127.0.0.1/reader")
            self.names: set[str] = set()

        def get(self, key: str, default: Any = None) -> Any:
            self.names.add(key)
            return super().get(key, default)

    environ = Recording()
    settings_class.from_environ(environ)
    return environ.names


def names_the_code_reads() -> set[str]:
    return set().union(*map(names_read_by, SETTINGS_OF.values()), CLI_SETTINGS.values())


def commands_by_argv(commands: list[ContainerCommand]) -> dict[tuple[str, ...], frozenset[str]]:
    found: dict[tuple[str, ...], frozenset[str]] = {}
    for command in commands:
        assert found.get(command.argv, command.environment_names) == command.environment_names, command
        found[command.argv] = command.environment_names
    return found


def test_compose_and_kubernetes_give_the_same_commands_the_same_settings() -> None:
    in_compose = commands_by_argv(
        [command for command in compose_commands(compose()) if command.argv[0] != "banking-cli"]
    )
    in_kubernetes = commands_by_argv(kubernetes_commands(kubernetes("local")))

    assert in_kubernetes == in_compose
    assert set(commands_by_argv(kubernetes_commands(kubernetes("base")))) == {
        argv for argv in in_compose if argv[-1] != "seed-demo"
    }


def test_every_setting_given_is_one_the_code_reads() -> None:
    """A misspelt name would be ignored silently by the service and fall back to its default."""
    readable = names_the_code_reads()
    for command in compose_commands(compose()) + kubernetes_commands(kubernetes("local")):
        assert command.environment_names <= readable, f"{command.source}: {command.environment_names - readable}"


def test_every_service_container_sets_what_differs_from_a_laptop() -> None:
    """Its database, address, secret, log folder and its peers' URLs: the defaults point at 127.0.0.1."""
    for package, settings_class in SETTINGS_OF.items():
        read = names_read_by(settings_class)
        required = (MUST_SET | set(URL_SETTING_OF.values())) & read
        service = compose()["services"][COMPOSE_SERVICE_OF[package]]
        assert required <= set(service["environment"]), f"{package}: {required - set(service['environment'])}"


def test_each_service_answers_health_and_its_compose_healthcheck_passes(running: RunningSystem) -> None:
    for package, port in running.machine.ports.items():
        service = running.service(package)
        check = service["healthcheck"]["test"]
        assert check[0] == "CMD"
        result = subprocess.run(
            host_argv(check[1:]),
            env=running.machine.environment(service, package),
            capture_output=True,
            text=True,
            timeout=HTTP_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"{package}: {result.stderr}"
        for path in ("/health/ping", "/ready"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=HTTP_TIMEOUT_S) as response:
                assert response.status == 200


def call(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(
        url, data=None if body is None else json.dumps(body).encode(), headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def transfer_one(coordinator_url: str, customers_url: str) -> tuple[int, dict[str, Any]]:
    """Alice logs in with her demo password (so the seed ran) and pays Bob 1 through the coordinator."""
    status, login = call("POST", f"{customers_url}/auth/login", {"username": "alice", "password": "alice123"})
    assert status == 200, login
    return call(
        "POST",
        f"{coordinator_url}/transfers",
        {"source_account_id": ALICE_MAIN, "destination_account_id": BOB_MAIN, "amount": 1},
        token=login["data"]["token"],
    )


def test_a_transfer_commits_across_the_three_services(running: RunningSystem) -> None:
    """The service URL settings wire the services together: the coordinator reaches the participant."""
    status, answer = transfer_one(running.machine.url("transactions_service"), running.machine.url("customer_service"))

    assert status == 200, answer
    assert answer["data"]["status"] == "committed"


def test_the_cli_container_command_sees_three_healthy_services(running: RunningSystem) -> None:
    cli = running.compose["services"]["cli"]
    result = subprocess.run(
        host_argv(cli["command"]),
        env=running.machine.environment(cli, None),
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_second_coordinator_replica_serves_then_stops_cleanly_on_sigterm(running: RunningSystem) -> None:
    """Two coordinators on one database, as the Deployment runs them; SIGTERM ends one with exit code 0."""
    port = free_port()
    running.start("transactions_service", name="transactions_service_2", port=port)
    running.wait_healthy("transactions_service_2", port)

    status, answer = transfer_one(f"http://127.0.0.1:{port}", running.machine.url("customer_service"))

    assert status == 200, answer
    assert answer["data"]["status"] == "committed"
    assert running.stop("transactions_service_2") == 0, running.output("transactions_service_2")
