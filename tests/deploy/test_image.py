"""The Dockerfile, parsed by BuildKit's parser (no container engine runs here): one slim, non-root image."""

from __future__ import annotations

from tests.deploy.manifests import (
    DOCKERIGNORE_FILE,
    dockerfile_environment,
    dockerfile_global_arguments,
    dockerfile_stages,
)

BUILD_TOOLS = ("gcc", "build-essential", "make ", "apt-get", "pip install", "git ")


def final_stage() -> list:
    return dockerfile_stages()[-1]


def arguments_of(stage: list, name: str) -> list[tuple[str, ...]]:
    return [instruction.value for instruction in stage if instruction.cmd == name]


def test_the_image_is_built_in_two_stages_from_one_slim_python_base() -> None:
    stages = dockerfile_stages()
    assert len(stages) == 2
    assert arguments_of(stages[0], "FROM") == [("${PYTHON_IMAGE}", "AS", "build")]
    assert arguments_of(stages[1], "FROM") == [("${PYTHON_IMAGE}",)]
    assert dockerfile_global_arguments()["PYTHON_IMAGE"].startswith("python:3.11-slim")


def test_the_final_stage_has_no_build_tools_and_takes_only_the_virtualenv() -> None:
    for instruction in final_stage():
        if instruction.cmd == "RUN":
            assert not any(tool in instruction.value[0] for tool in BUILD_TOOLS), instruction.original
        if instruction.cmd == "COPY":
            assert instruction.flags == ("--from=build",) and instruction.value == ("/opt/venv", "/opt/venv")


def test_the_final_stage_runs_as_a_non_root_user() -> None:
    [(user,)] = arguments_of(final_stage(), "USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "numeric, so Kubernetes' runAsNonRoot can check it"


def test_the_image_sets_no_service_setting_and_the_command_picks_the_role() -> None:
    """Every setting comes from compose.yaml or the manifests, where the command test reads it."""
    assert set(dockerfile_environment(final_stage())) == {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
    [command] = [instruction for instruction in final_stage() if instruction.cmd == "CMD"]
    assert command.json and command.value[0] == "banking-cli"
    assert arguments_of(final_stage(), "ENTRYPOINT") == [], "the command alone picks the role"


def test_secrets_and_local_state_stay_out_of_the_build_context() -> None:
    ignored = set(DOCKERIGNORE_FILE.read_text(encoding="utf-8").splitlines())
    assert {".env", ".venv", ".data", ".git", "logs"} <= ignored
