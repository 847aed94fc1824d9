"""Each service's /metrics parses as Prometheus text, and the transfer counters move with a transfer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.system import SERVICES
from tests.e2e.conftest import ALICE, BOB, Api

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def _samples(api: Api, service: str) -> dict[tuple[str, tuple], float]:
    async with api.session.get(api.system.url(service) + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("service", [spec.name for spec in SERVICES])
async def test_metrics_parse_and_count_requests(api: Api, service: str) -> None:
    async with api.session.get(api.system.url(service) + "/health/ping") as response:
        assert response.status == 200
    samples = await _samples(api, service)
    assert _value(samples, "http_requests_total", method="GET", route="/health/ping", status="200") >= 1
    assert ("db_pool_connections_in_use", ()) in samples


async def test_transfer_counters_move(api: Api) -> None:
    source = await api.open_account(ALICE, Decimal("10"))
    destination = await api.open_account(BOB, Decimal("0"))
    before_coordinator = await _samples(api, "transactions_service")
    before_participant = await _samples(api, "accounts_service")

    assert (await api.transfer(source, destination, 4)).status == 200
    assert (await api.transfer(source, destination, 40)).status == 409

    coordinator = await _samples(api, "transactions_service")
    participant = await _samples(api, "accounts_service")
    committed = ("transfers_total", dict(status="committed", reason=""))
    refused = ("transfers_total", dict(status="aborted", reason="insufficient_funds"))
    for name, labels in (committed, refused):
        assert _value(coordinator, name, **labels) == _value(before_coordinator, name, **labels) + 1
    assert (
        _value(coordinator, "transfer_phase_duration_seconds_count", phase="prepare")
        == _value(before_coordinator, "transfer_phase_duration_seconds_count", phase="prepare") + 2
    )
    assert (
        _value(participant, "participant_votes_total", vote="no", reason="insufficient_funds")
        == _value(before_participant, "participant_votes_total", vote="no", reason="insufficient_funds") + 1
    )
    assert (
        _value(participant, "participant_decisions_total", decision="commit")
        == _value(before_participant, "participant_decisions_total", decision="commit") + 1
    )
