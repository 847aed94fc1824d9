"""Coordinator recovery, on its own clock: presumed abort of orphans, and finishing every decided transfer.

Runs once at start, then every `interval_s`, each pass bounded by `batch_max`. Several coordinator
replicas may run it on one database: orphans are aborted by compare-and-set, and unfinished transfers
are claimed with FOR UPDATE SKIP LOCKED plus a lease (next_attempt_at), so no transfer is decided twice
or differently and no decision is re-sent by two replicas at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from aiohttp import web

from shared.settings import RecoveryClock, seconds
from transactions_service import db
from transactions_service.coordinator import (
    DEFAULT_PREPARE_DEADLINE_S,
    DEFAULT_RETRY_FIRST_S,
    DEFAULT_RETRY_MAX_S,
    Coordinator,
)
from transactions_service.domain import Event, Transfer
from transactions_service.protocol import AbortReason, EventType

log = structlog.get_logger()


@dataclass(frozen=True)
class RecoverySettings(RecoveryClock):
    """Read from RECOVERY_<FIELD> (RECOVERY_RETRY_FIRST_S, ...), but for the older PREPARE_DEADLINE_S."""

    prepare_deadline_s: float = seconds(DEFAULT_PREPARE_DEADLINE_S, env="PREPARE_DEADLINE_S")
    retry_first_s: float = seconds(DEFAULT_RETRY_FIRST_S)
    retry_max_s: float = seconds(DEFAULT_RETRY_MAX_S)


@dataclass(frozen=True)
class RecoveryPass:
    aborted: int
    attempted: int
    completed: int


async def recover_once(coordinator: Coordinator, settings: RecoverySettings) -> RecoveryPass:
    aborted = await _abort_orphans(coordinator, settings)
    async with coordinator.engine.begin() as connection:
        claimed = await db.claim_unfinished(
            connection, lease_s=coordinator.completion_lease_s, limit=settings.batch_max
        )
    # One transfer's failure is logged and left to its lease's end; it never stops the others.
    finished = await asyncio.gather(*(coordinator.complete(transfer) for transfer in claimed), return_exceptions=True)
    for transfer, outcome in zip(claimed, finished, strict=True):
        if isinstance(outcome, BaseException):
            log.error(
                "completion_attempt_failed",
                transaction_id=str(transfer.transaction_id),
                details={"error": f"{type(outcome).__name__}: {outcome}"},
            )
    result = RecoveryPass(
        aborted=aborted,
        attempted=len(claimed),
        completed=sum(1 for outcome in finished if isinstance(outcome, Transfer) and outcome.completed),
    )
    actions = coordinator.metrics.recovery_actions
    actions.labels("presumed_abort").inc(result.aborted)
    actions.labels("completion_attempt").inc(result.attempted)
    actions.labels("completed").inc(result.completed)
    async with coordinator.engine.connect() as connection:
        coordinator.metrics.unfinished.set(await db.count_unfinished(connection))
    if result.aborted or result.attempted:
        log.info(
            "recovery_pass",
            details={"presumed_aborted": result.aborted, "attempted": result.attempted, "completed": result.completed},
        )
    return result


async def _abort_orphans(coordinator: Coordinator, settings: RecoverySettings) -> int:
    """Presumed abort: nobody is still deciding a transfer that has been preparing past the deadline."""
    async with coordinator.engine.begin() as connection:
        orphans = await db.abort_orphans(
            connection,
            deadline_s=settings.prepare_deadline_s,
            reason=AbortReason.PREPARE_TIMEOUT.value,
            limit=settings.batch_max,
        )
        for transfer in orphans:
            await db.insert_events(
                connection,
                transfer.transaction_id,
                [
                    Event(
                        EventType.DECISION,
                        "recovery",
                        {"status": "aborted", "reason": AbortReason.PREPARE_TIMEOUT.value, "presumed_abort": True},
                    )
                ],
            )
    for transfer in orphans:
        log.warning("transfer_presumed_aborted", transaction_id=str(transfer.transaction_id))
        coordinator.metrics.transfers.labels("aborted", AbortReason.PREPARE_TIMEOUT.value).inc()
    return len(orphans)


async def run_forever(coordinator: Coordinator, settings: RecoverySettings) -> None:
    """A fixed tick; a failed pass (database or peer down) is logged and tried again next tick."""
    while True:
        try:
            await recover_once(coordinator, settings)
        except Exception:  # the loop must outlive any one failure; the next tick retries
            log.exception("recovery_pass_failed")
        await asyncio.sleep(settings.interval_s)


def recovery_context(coordinator_key: web.AppKey, settings_key: web.AppKey):
    """A cleanup_ctx generator: the recovery task starts with the app (its first pass at once) and stops with it."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run_forever(app[coordinator_key], app[settings_key].recovery))
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context
