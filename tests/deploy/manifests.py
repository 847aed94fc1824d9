"""The deployment files read the way their tools read them: compose.yaml, the kustomize builds, the Dockerfile.

Also the commands they give the one image (`python -m <service> [migrate|seed-demo]`, `banking-cli ...`)
with the names of the settings each gets, so a test can run exactly those.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import dockerfile
import yaml

from tests.deploy import kustomize

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
ENV_EXAMPLE_FILE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE_FILE = ROOT / ".dockerignore"
K8S_DIR = ROOT / "deploy" / "k8s"
K8S_BASE = K8S_DIR / "base"
K8S_LOCAL_OVERLAY = K8S_DIR / "overlays" / "local"
K8S_BUILDS = {"base": K8S_BASE, "local": K8S_LOCAL_OVERLAY}
IMAGE_NAME = "banking-2pc"
# The Compose specification's JSON schema as check-jsonschema vendors it (compose-spec/compose-spec,
# schema/compose-spec.json, Apache-2.0; its licence ships next to it in that package).
COMPOSE_SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
COMPOSE_SCHEMA_FILE = "compose-spec.json"


@dataclass(frozen=True)
class ContainerCommand:
    """One way the image is run: where it is written, its argv, and the names of the settings it gets."""

    source: str
    argv: tuple[str, ...]
    environment_names: frozenset[str]


@cache
def compose_schema() -> dict[str, Any]:
    schema_file = importlib.resources.files(COMPOSE_SCHEMA_PACKAGE) / COMPOSE_SCHEMA_FILE
    return json.loads(schema_file.read_text(encoding="utf-8"))


def compose() -> dict[str, Any]:
    """compose.yaml as Compose reads it before interpolation (YAML merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def kubernetes(build: str) -> list[dict[str, Any]]:
    """The resources of one kustomize build: "base" or "local"."""
    return kustomize.build(K8S_BUILDS[build])


def uses_image(image: str) -> bool:
    return image.split(":", 1)[0] == IMAGE_NAME


def compose_commands(document: dict[str, Any]) -> list[ContainerCommand]:
    return [
        ContainerCommand(
            f"compose.yaml services.{name}", tuple(service["command"]), frozenset(service.get("environment", {}))
        )
        for name, service in document["services"].items()
        if uses_image(service["image"])
    ]


def kubernetes_commands(resources: list[dict[str, Any]]) -> list[ContainerCommand]:
    config_maps = {resource["metadata"]["name"]: resource for resource in resources if resource["kind"] == "ConfigMap"}
    commands = []
    for resource in resources:
        for container in kustomize.containers(resource):
            if not uses_image(container["image"]):
                continue
            names = {variable["name"] for variable in container.get("env", [])}
            for source in container.get("envFrom", []):
                assert set(source) == {"configMapRef"}, "settings come from the ConfigMap or per variable"
                names |= set(config_maps[source["configMapRef"]["name"]]["data"])
            commands.append(
                ContainerCommand(
                    f"{resource['kind']}/{resource['metadata']['name']} container {container['name']}",
                    tuple(container.get("command", [])) + tuple(container.get("args", [])),
                    frozenset(names),
                )
            )
    return commands


def interpolated_variables(text: str) -> dict[str, str]:
    """${NAME}, ${NAME:-default}, ${NAME:?error} in a Compose file: each name and its operator ('' if none)."""
    found: dict[str, str] = {}
    for name, operator in re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)(:?[-?+]?)", text):
        found[name] = found.get(name) or operator
    return found


def env_example() -> dict[str, str]:
    lines = ENV_EXAMPLE_FILE.read_text(encoding="utf-8").splitlines()
    pairs = [line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in pairs}


def dockerfile_stages() -> list[list[dockerfile.Command]]:
    """The Dockerfile's build stages, each a list of instructions, parsed by BuildKit's own parser."""
    stages: list[list[dockerfile.Command]] = []
    for instruction in dockerfile.parse_file(str(DOCKERFILE)):
        if instruction.cmd == "FROM":
            stages.append([])
        if stages:  # ARGs before the first FROM belong to no stage
            stages[-1].append(instruction)
    return stages


def dockerfile_global_arguments() -> dict[str, str]:
    """The ARGs before the first FROM, with their defaults (what `${PYTHON_IMAGE}` means)."""
    arguments: dict[str, str] = {}
    for instruction in dockerfile.parse_file(str(DOCKERFILE)):
        if instruction.cmd == "FROM":
            break
        if instruction.cmd == "ARG":
            name, _, default = instruction.value[0].partition("=")
            arguments[name] = default
    return arguments


def dockerfile_environment(stage: list[dockerfile.Command]) -> dict[str, str]:
    """The ENV settings of one stage."""
    return {
        name: value
        for instruction in stage
        if instruction.cmd == "ENV"
        for name, value in zip(instruction.value[::2], instruction.value[1::2], strict=True)
    }
