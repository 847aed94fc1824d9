"""The bench's pure parts: which variants a command line asks for, who owns which account, CPU per transfer."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

from cli.bench.cpu import TOTAL
from cli.bench.driver import RunResult
from cli.bench.report import cpu_ms_per_committed, ratios
from cli.bench.variants import ScaleSize, parse_setting, parse_setting_values, variants
from cli.bench.workloads import ACCOUNTS_PER_CUSTOMER, WORKLOADS


def test_one_plain_variant_without_comparison() -> None:
    assert [variant.label for variant in variants(None, None)] == [""]


def test_compare_env_gives_one_fresh_system_per_value_and_scale_doubles_them() -> None:
    planned = variants("BATCH_MAX_TRANSFERS=1,16", ScaleSize(10, 20))
    assert [(variant.service_env, variant.preload) for variant in planned] == [
        ({"BATCH_MAX_TRANSFERS": "1"}, None),
        ({"BATCH_MAX_TRANSFERS": "1"}, ScaleSize(10, 20)),
        ({"BATCH_MAX_TRANSFERS": "16"}, None),
        ({"BATCH_MAX_TRANSFERS": "16"}, ScaleSize(10, 20)),
    ]
    assert planned[1].label == "BATCH_MAX_TRANSFERS=1 loaded 10/20"
    assert planned[2].label == "BATCH_MAX_TRANSFERS=16 empty"


@pytest.mark.parametrize("text", ["BATCH", "batch=1", "=1,2", "A=", "A=" + ",".join("123456789")])
def test_a_malformed_setting_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_setting_values(text)


def test_a_common_setting_has_one_value() -> None:
    assert parse_setting("DB_POOL_SIZE=40") == ("DB_POOL_SIZE", "40")
    with pytest.raises(ValueError):
        parse_setting("DB_POOL_SIZE=40,50")


def test_every_account_has_an_owner_and_customers_own_a_few_each() -> None:
    uniform = WORKLOADS["uniform"]
    owners = Counter(uniform.owner_of(index) for index in range(uniform.accounts))
    assert len(owners) == uniform.customers
    assert set(owners.values()) == {ACCOUNTS_PER_CUSTOMER}
    assert WORKLOADS["hot"].customers == 1


def test_cpu_per_committed_transfer_and_the_system_total_leave_out_the_load_generator() -> None:
    result = RunResult(
        "2pc",
        "uniform",
        4,
        2.0,
        outcomes=Counter(committed=500, insufficient_funds=7),
        cpu_seconds={"coordinator": 1.0, "participant": 0.5, "postgres": 0.75, "load_generator": 2.0},
    )
    figures = cpu_ms_per_committed(result)
    assert figures["coordinator"] == 2 and figures["load_generator"] == 4
    assert figures[TOTAL] == figures["coordinator"] + figures["participant"] + figures["postgres"]


def test_ratios_pair_each_variant_with_its_own_baseline() -> None:
    runs = [
        RunResult(target, "uniform", 1, 1.0, variant=variant, outcomes=Counter(committed=committed))
        for variant, target, committed in (
            ("A=1", "2pc", 10),
            ("A=1", "baseline", 100),
            ("A=2", "2pc", 30),
            ("A=2", "baseline", 60),
        )
    ]
    assert ratios(runs) == {"A=1 uniform": Decimal("0.100"), "A=2 uniform": Decimal("0.500")}


def test_a_profile_sample_is_charged_to_its_innermost_named_component() -> None:
    from harness.profile_summary import component_of

    loop = "<module> (transactions_service/__main__.py:5);run_app (aiohttp/web.py:502)"
    assert component_of(loop) == "event loop"
    assert (
        component_of(
            loop + ";_handle (aiohttp/web_app.py:552);transfer (transactions_service/handlers.py:60)"
            ";execute (sqlalchemy/engine/base.py:1400);__do_execute (asyncpg/prepared_stmt.py:257)"
        )
        == "asyncpg"
    )
    assert (
        component_of(loop + ";_handle (aiohttp/web_app.py:552);transfer (transactions_service/handlers.py:60)")
        == "our code"
    )
    assert component_of("somewhere (elsewhere.py:1)") == "other"


def test_the_machine_speed_reference_is_the_fastest_repeat_of_a_fixed_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli.bench import machine

    repeats = iter([0.0912, 0.0751, 0.0803, 0.1200, 0.0777])
    monkeypatch.setattr(machine, "_one_loop_s", lambda: next(repeats))
    assert machine.python_reference_ms() == Decimal("75.10")
    assert next(repeats, None) is None, "every repeat ran"
