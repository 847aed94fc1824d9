"""The bank checker against the real system: two replicas of each protocol service under process kills,
killed database connections and PostgreSQL crashes; and a planted bug it must catch."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from harness.bank_check import CheckOptions, CheckReport, run_check
from harness.check_nemesis import CRASH, KILL, TERMINATE

# A check starts a whole system of its own (PostgreSQL, five service processes, two Service proxies)
# before its workload runs: on a loaded machine that alone can take a minute.
CHECK_TIMEOUT_S = 300
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session"), pytest.mark.timeout(CHECK_TIMEOUT_S)]

# The short version of the 10-minute check: a fault every ~1.5 s, so every kind comes up more than once.
SHORT_CHECK = CheckOptions(
    seconds=30, fault_free_s=5, clients=8, accounts=8, fault_every_s=1.5, replicas=2, database_faults=True, seed=12
)
QUIESCE_BOUND_S = 10


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def short_check() -> AsyncIterator[dict]:
    report: CheckReport = await run_check(SHORT_CHECK)
    yield report.as_dict()


async def test_two_replicas_under_every_kind_of_fault_keep_every_invariant(short_check: dict) -> None:
    assert short_check["violations"] == []
    assert short_check["locks_left"] == 0 and short_check["unfinished_left"] == 0
    assert short_check["time_to_quiesce_s"] is not None and short_check["time_to_quiesce_s"] <= QUIESCE_BOUND_S
    assert {KILL, TERMINATE, CRASH} <= set(short_check["faults_by_kind"]), short_check["faults"]
    assert short_check["committed_per_s_fault_free"] > 0 and short_check["committed_per_s_during_faults"] > 0
    assert short_check["reads_checked"] > 0
    assert short_check["restarts_failed"] == []


async def test_no_answer_is_a_500(short_check: dict) -> None:
    assert short_check["answers_500"] == 0, short_check["unhandled_errors_examples"]
    assert short_check["unhandled_errors_logged"] == 0, short_check["unhandled_errors_examples"]


async def test_no_transfer_is_answered_wrong(short_check: dict) -> None:
    assert short_check["answered_wrong_examples"] == []


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def planted_bugs() -> AsyncIterator[CheckReport]:
    """One short run against a participant that creates money and a coordinator that lies about commits."""
    broken = [sys.executable, "-m", "tests.faults.broken_participant"]
    lying = [sys.executable, "-m", "tests.faults.lying_coordinator"]
    yield await run_check(
        CheckOptions(
            seconds=3,
            clients=4,
            accounts=4,
            fault_every_s=60,
            seed=3,
            commands={"accounts_service": broken, "transactions_service": lying},
        )
    )


async def test_checker_catches_a_participant_that_creates_money(planted_bugs: CheckReport) -> None:
    assert planted_bugs.as_dict()["committed"] > 0
    assert any(violation.startswith("1: total money") for violation in planted_bugs.violations)
    assert any(violation.startswith("4: account") for violation in planted_bugs.violations)


async def test_checker_catches_a_coordinator_that_answers_503_for_committed_transfers(
    planted_bugs: CheckReport,
) -> None:
    summary = planted_bugs.as_dict()

    assert summary["answers_503"] > 0
    assert summary["answered_wrong"] == summary["answers_503"]
    assert all("answered 503" in line and "log says committed" in line for line in summary["answered_wrong_examples"])
