"""The benchmark runs end to end in a few seconds: it completes, conserves money and writes valid JSON.

No speed is asserted here: figures come from `banking-cli bench` on a quiet machine.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from harness.system import LocalSystem
from tests.conftest import TEST_JWT_SECRET

pytestmark = pytest.mark.e2e


def test_bench_completes_conserves_money_and_writes_json(system: LocalSystem, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    environment = {"CUSTOMER_SERVICE_URL": system.url("customer_service"),
                   "ACCOUNTS_SERVICE_URL": system.url("accounts_service"),
                   "TRANSACTIONS_SERVICE_URL": system.url("transactions_service"),
                   "JWT_SECRET": TEST_JWT_SECRET}

    result = CliRunner().invoke(app, [
        "bench", "-w", "uniform", "-w", "hot", "-w", "overdraft", "--accounts", "20", "--clients", "4",
        "--seconds", "2", "--warmup", "0.5", "--out", str(out),
        "--baseline-url", system.postgres.url("postgres")], env=environment)

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert {(run["workload"], run["target"]) for run in document["runs"]} == {
        (workload, target) for workload in ("uniform", "hot", "overdraft") for target in ("2pc", "baseline")}
    for run in document["runs"]:
        assert run["money_conserved"] is True, run
        assert run["locks_left"] == 0, run
        assert run["committed"] > 0, run
    overdraft = next(run for run in document["runs"] if run["workload"] == "overdraft"
                     and run["target"] == "2pc")
    assert overdraft["aborted_per_s_by_reason"].get("insufficient_funds", 0) > 0
    assert set(document["ratio_2pc_to_baseline"]) == {"uniform", "hot", "overdraft"}
    assert out.with_suffix(".png").stat().st_size > 0
