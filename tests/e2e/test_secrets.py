"""A service refuses to start with a missing, placeholder, short or shared key, and says which; DEV_MODE
(what `banking-cli up` runs with) lets a weak one through but never a missing or shared one."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request

import pytest

from harness.local_postgres import free_port
from harness.system import SERVICES, LocalSystem

EXIT_TIMEOUT_S = 30
SERVICE_NAMES = [spec.name for spec in SERVICES]
BAD_KEYS = {
    "no JWT_SECRET": ({"JWT_SECRET": ""}, "JWT_SECRET must be set"),
    "the original's secret": ({"JWT_SECRET": "your-super-secret-jwt-key"}, "JWT_SECRET is a known placeholder"),
    "the old dev default": ({"JWT_SECRET": "dev-only-insecure-jwt-secret-change-me"}, "known placeholder"),
    "REPLACE_ME": ({"SERVICE_TOKEN_SECRET": "REPLACE_ME"}, "SERVICE_TOKEN_SECRET is a known placeholder"),
    "31 bytes": ({"JWT_SECRET": "x" * 31}, "JWT_SECRET is shorter than 32 bytes"),
    "no service secret": ({"SERVICE_TOKEN_SECRET": ""}, "SERVICE_TOKEN_SECRET must be set"),
    "user key = service key": ({"SERVICE_TOKEN_SECRET": "SAME"}, "must differ"),
}


def run_briefly(system: LocalSystem, service: str, overrides: dict[str, str]) -> subprocess.CompletedProcess:
    environment = system.service_env(service, {"PORT": str(free_port()), **overrides})
    if environment.get("SERVICE_TOKEN_SECRET") == "SAME":
        environment["SERVICE_TOKEN_SECRET"] = environment["JWT_SECRET"]
    return subprocess.run(
        [sys.executable, "-m", service],
        env=environment,
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


# Every case against one service, one case against each of the others (each start costs seconds of imports).
CELLS = [("customer_service", case) for case in sorted(BAD_KEYS)] + [
    (service, "REPLACE_ME") for service in SERVICE_NAMES if service != "customer_service"
]


@pytest.mark.parametrize(("service", "case"), CELLS)
def test_a_service_refuses_to_start_with_a_bad_key(system: LocalSystem, service: str, case: str) -> None:
    overrides, words = BAD_KEYS[case]
    result = run_briefly(system, service, overrides)
    assert result.returncode != 0
    assert f"{service} refuses to start" in result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr  # one clear line, not a stack


@pytest.mark.parametrize("service", ["accounts_service", "transactions_service"])
def test_the_coordinator_and_the_participant_need_the_coordinator_key(system: LocalSystem, service: str) -> None:
    result = run_briefly(system, service, {"COORDINATOR_TOKEN_SECRET": ""})
    assert result.returncode != 0
    assert "COORDINATOR_TOKEN_SECRET must be set" in result.stderr


def test_dev_mode_starts_with_a_weak_key_but_not_without_one(system: LocalSystem) -> None:
    assert "must be set" in run_briefly(system, "customer_service", {"DEV_MODE": "true", "JWT_SECRET": ""}).stderr
    port = free_port()
    environment = system.service_env(
        "customer_service", {"PORT": str(port), "DEV_MODE": "true", "JWT_SECRET": "REPLACE_ME"}
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "customer_service"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + EXIT_TIMEOUT_S
        while time.monotonic() < deadline:
            assert process.poll() is None, "DEV_MODE lets a placeholder key through (with a warning)"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ping", timeout=1) as response:
                    assert response.status == 200
                    return
            except OSError:
                time.sleep(0.1)
        pytest.fail("customer_service did not start in DEV_MODE")
    finally:
        process.terminate()
        process.wait(timeout=10)
