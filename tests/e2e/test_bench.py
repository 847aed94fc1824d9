"""The benchmark runs end to end in a few seconds: it completes, conserves money and writes valid JSON.

No speed is asserted here: figures come from `banking-cli bench` on a quiet machine.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from harness.system import LocalSystem
from tests.conftest import TEST_JWT_SECRET
from tests.e2e.conftest import fetch

pytestmark = pytest.mark.e2e

CPU_FIGURES = {"coordinator", "participant", "postgres", "load_generator", "services_and_postgres"}


def run_bench(system: LocalSystem, out: Path, *options: str):
    environment = {
        "CUSTOMER_SERVICE_URL": system.url("customer_service"),
        "ACCOUNTS_SERVICE_URL": system.url("accounts_service"),
        "TRANSACTIONS_SERVICE_URL": system.url("transactions_service"),
        "JWT_SECRET": TEST_JWT_SECRET,
    }
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--seconds",
            "2",
            "--warmup",
            "0.5",
            "--out",
            str(out),
            "--baseline-url",
            system.postgres.url("postgres"),
            *options,
        ],
        env=environment,
    )
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def test_bench_completes_conserves_money_and_writes_json(system: LocalSystem, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    document = run_bench(
        system, out, "-w", "uniform", "-w", "hot", "-w", "overdraft", "--accounts", "20", "--clients", "4"
    )

    assert {(run["workload"], run["target"]) for run in document["runs"]} == {
        (workload, target) for workload in ("uniform", "hot", "overdraft") for target in ("2pc", "baseline")
    }
    for run in document["runs"]:
        assert run["money_conserved"] is True, run
        assert run["locks_left"] == 0, run
        assert run["committed"] > 0, run
        assert set(run["cpu_ms_per_committed"]) >= CPU_FIGURES, run
    overdraft = next(run for run in document["runs"] if run["workload"] == "overdraft" and run["target"] == "2pc")
    assert overdraft["aborted_per_s_by_reason"].get("insufficient_funds", 0) > 0
    assert set(document["ratio_2pc_to_baseline"]) == {"uniform", "hot", "overdraft"}
    assert out.with_suffix(".png").stat().st_size > 0
    speed = document["machine"]["python_reference_ms"]
    assert Decimal(speed["before"]) > 0 and Decimal(speed["after"]) > 0, speed


def test_bench_transfers_are_sent_by_the_customers_owning_their_source_accounts(
    system: LocalSystem, tmp_path: Path
) -> None:
    since = asyncio.run(fetch(system, "transactions_service", "SELECT now() AS now"))[0]["now"]
    document = run_bench(
        system, tmp_path / "customers.json", "-w", "uniform", "--accounts", "30", "--clients", "4", "--no-baseline"
    )

    assert document["settings"]["caller"] == "customer"
    transfers = asyncio.run(
        fetch(
            system,
            "transactions_service",
            """
        SELECT source_account_id, requested_by_customer_id FROM transactions WHERE created_at >= $1""",
            since,
        )
    )
    assert len(transfers) >= document["runs"][0]["committed"] > 0
    owners = {
        row["account_id"]: row["customer_id"]
        for row in asyncio.run(
            fetch(
                system,
                "accounts_service",
                "SELECT account_id, customer_id FROM accounts WHERE account_id = ANY($1)",
                list({row["source_account_id"] for row in transfers}),
            )
        )
    }
    assert all(row["requested_by_customer_id"] == owners[row["source_account_id"]] for row in transfers)


def test_bench_with_64_clients_runs_without_errors(system: LocalSystem, tmp_path: Path) -> None:
    # Accounts enough that 64 clients rarely meet on one; a warm-up long enough that every client's first
    # transfer (slow on a busy machine) has finished before the window opens.
    document = run_bench(
        system,
        tmp_path / "wide.json",
        "-w",
        "uniform",
        "--accounts",
        "1000",
        "--clients",
        "64",
        "--warmup",
        "2",
        "--no-baseline",
    )

    (run,) = document["runs"]
    assert run["clients"] == 64
    assert run["errors"] == {}, run
    assert run["committed"] > 0 and run["money_conserved"] is True and run["locks_left"] == 0, run


# Two fresh systems (a cluster, migrations and three services each) take a minute or more on a busy machine.
@pytest.mark.timeout(360)
def test_compare_env_runs_a_fresh_system_per_value_side_by_side(tmp_path: Path) -> None:
    """The mechanism a batching setting will use, with a setting that changes nothing a bench sees."""
    out = tmp_path / "compared.json"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--start",
            "--no-fsync",
            "--compare-env",
            "RECOVERY_BATCH_MAX=50,100",
            "-w",
            "uniform",
            "--accounts",
            "20",
            "--clients",
            "2",
            "--seconds",
            "2",
            "--warmup",
            "1",
            "--no-baseline",
            "--out",
            str(out),
        ],
        env={"JWT_SECRET": TEST_JWT_SECRET},
    )

    assert result.exit_code == 0, result.output
    document = json.loads(out.read_text())
    assert [variant["service_env"] for variant in document["settings"]["variants"]] == [
        {"RECOVERY_BATCH_MAX": "50"},
        {"RECOVERY_BATCH_MAX": "100"},
    ]
    assert [run["variant"] for run in document["runs"]] == ["RECOVERY_BATCH_MAX=50", "RECOVERY_BATCH_MAX=100"]
    assert all(run["committed"] > 0 and run["money_conserved"] for run in document["runs"])
