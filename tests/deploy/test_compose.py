"""compose.yaml against the Compose specification's JSON schema, offline, and what the issue asks of it."""

from __future__ import annotations

import copy
import shutil
import subprocess
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from tests.deploy.manifests import (
    COMPOSE_FILE,
    ENV_EXAMPLE_FILE,
    ROOT,
    compose,
    compose_schema,
    env_example,
    interpolated_variables,
    uses_image,
)

DATABASES = {"customers": "customer-service", "accounts": "accounts-service", "transactions": "transactions-service"}
SERVICE_PORTS = {"customer-service": 3001, "accounts-service": 3002, "transactions-service": 3003}
SECRET_SETTINGS = ("JWT_SECRET", "SERVICE_TOKEN_SECRET", "COORDINATOR_TOKEN_SECRET", "POSTGRES_PASSWORD")
COMPOSE_TIMEOUT_S = 60


def compose_cli() -> list[str] | None:
    """Docker Compose v2 or later where installed: the docker plugin, else the standalone binary."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        probe = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            timeout=COMPOSE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
        if probe.returncode == 0 and not probe.stdout.strip().lstrip("v").startswith("1."):
            return command
    return None


@cache
def compose_validator() -> jsonschema.protocols.Validator:
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)


def schema_errors(document: dict) -> list[str]:
    return [
        f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    "break_it",
    [
        lambda document: document["services"]["customer-service"].update(helthcheck={}),
        lambda document: document["services"]["accounts-service"]["depends_on"]["accounts-db"].update(
            condition="service_ready"
        ),
        lambda document: document["services"]["transactions-db"].update(volumes="transactions-data"),
    ],
    ids=["misspelt key", "unknown depends_on condition", "volumes not a list"],
)
def test_the_schema_check_catches_a_broken_compose_file(break_it) -> None:
    document = copy.deepcopy(compose())
    break_it(document)

    assert schema_errors(document) != []


def test_each_database_is_postgres_15_with_a_named_volume_and_pg_isready() -> None:
    document = compose()
    for database in DATABASES:
        server = document["services"][f"{database}-db"]
        assert server["image"] == "postgres:15"
        assert server["environment"]["POSTGRES_DB"] == database
        volume = server["volumes"][0].split(":")[0]
        assert volume in document["volumes"], f"{database}-db keeps its data in a named volume"
        assert "pg_isready" in " ".join(server["healthcheck"]["test"])


def test_each_database_is_migrated_then_seeded_before_its_service_starts() -> None:
    services = compose()["services"]
    for database, service in DATABASES.items():
        migrate, seed = services[f"{database}-migrate"], services[f"{database}-seed"]
        assert migrate["command"][-1] == "migrate" and seed["command"][-1] == "seed-demo"
        assert migrate["depends_on"] == {f"{database}-db": {"condition": "service_healthy"}}
        assert seed["depends_on"] == {f"{database}-migrate": {"condition": "service_completed_successfully"}}
        assert services[service]["depends_on"] == {
            f"{database}-db": {"condition": "service_healthy"},
            f"{database}-migrate": {"condition": "service_completed_successfully"},
            f"{database}-seed": {"condition": "service_completed_successfully"},
        }, "a running service names each one-shot step, or `up --wait` takes its exit for a failure"
        for one_shot in (migrate, seed):
            assert one_shot["restart"] == "no"
            assert one_shot["command"][2] == services[service]["command"][2], "the same service's package"


def test_each_service_publishes_its_port_and_checks_its_health() -> None:
    services = compose()["services"]
    for service, port in SERVICE_PORTS.items():
        assert services[service]["ports"] == [f"{port}:{port}"]
        assert services[service]["environment"]["PORT"] == str(port)
        assert "/health'" in " ".join(services[service]["healthcheck"]["test"])


def test_settings_come_from_the_environment_and_no_secret_is_committed() -> None:
    document = compose()
    variables = interpolated_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    example = env_example()

    assert set(variables) == set(example), f"{ENV_EXAMPLE_FILE.name} names every variable compose.yaml reads"
    for name in SECRET_SETTINGS:
        assert variables[name] == ":?", f"{name} has no default: compose refuses to start without it"
        assert example[name] == "", f"{ENV_EXAMPLE_FILE.name} leaves {name} for the user to fill in"
    for name, service in document["services"].items():
        environment = service.get("environment", {})
        for setting in ("JWT_SECRET", "POSTGRES_PASSWORD", "DATABASE_URL"):
            if setting in environment:
                assert "${" in environment[setting], f"{name}: {setting} comes from the environment"


def test_services_listen_on_all_interfaces_with_demo_endpoints_off() -> None:
    services = compose()["services"]
    for service in SERVICE_PORTS:
        assert services[service]["environment"]["HOST"] == "0.0.0.0"
        assert services[service]["environment"]["DEMO_ENDPOINTS"] == "false"


def test_every_banking_container_is_built_from_this_repository() -> None:
    for name, service in compose()["services"].items():
        if uses_image(service["image"]):
            assert service["build"] == {"context": "."}, name


@pytest.mark.skipif(compose_cli() is None, reason="no Docker Compose v2 CLI installed")
def test_docker_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    """Compose's own parser (interpolation, merge keys, dependency graph); needs no daemon."""
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{name}={value or 'x'}\n" for name, value in env_example().items()))
    result = subprocess.run(
        [
            *compose_cli(),
            "--project-directory",
            str(ROOT),
            "--env-file",
            str(env_file),
            "--profile",
            "cli",
            "config",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=COMPOSE_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr


def test_only_the_coordinator_and_the_participant_get_the_coordinator_key() -> None:
    services = compose()["services"]
    holders = {
        name for name, service in services.items() if "COORDINATOR_TOKEN_SECRET" in service.get("environment", {})
    }
    assert holders == {"accounts-service", "transactions-service"}


def test_compose_loads_no_demo_logins_unless_asked() -> None:
    """Found: every `up` seeded admin/admin123 and teller/teller123 on published ports."""
    services = compose()["services"]
    for database in ("customers", "accounts", "transactions"):
        assert services[f"{database}-seed"]["environment"]["DEMO_DATA"] == "${DEMO_DATA:-false}"
    assert env_example()["DEMO_DATA"] == "false"
