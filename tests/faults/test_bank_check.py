"""The bank checker finds nothing wrong with the real system under kills, and does find a planted bug."""
from __future__ import annotations

import sys

import pytest

from harness.bank_check import CheckOptions, run_check

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_checker_under_process_kills_finds_no_violation() -> None:
    # Kills every ~1 s with a 1 s outage: two or more fit in 10 s even when a restart is slow under load.
    report = await run_check(CheckOptions(seconds=10, clients=6, accounts=6, kill_every_s=1.0, seed=7))

    summary = report.as_dict()
    assert summary["violations"] == []
    assert summary["faults_injected"] >= 2
    assert summary["committed"] > 0 and summary["reads_checked"] > 0
    assert summary["locks_left"] == 0 and summary["unfinished_left"] == 0


async def test_checker_catches_a_participant_that_creates_money() -> None:
    broken = [sys.executable, "-m", "tests.faults.broken_participant"]

    report = await run_check(CheckOptions(seconds=3, clients=4, accounts=4, kill_every_s=60, seed=3,
                                          commands={"accounts_service": broken}))

    assert report.as_dict()["committed"] > 0
    assert any(violation.startswith("1: total money") for violation in report.violations)
    assert any(violation.startswith("4: account") for violation in report.violations)
