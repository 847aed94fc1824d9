"""Participant recovery, on its own clock: resolve in-doubt locks by asking the coordinator; purge tombstones.

A participant that voted YES never decides alone. A row locked longer than the in-doubt timeout asks
the coordinator for the outcome and applies it; the coordinator's positive "no record of this transfer"
(TRANSFER_NOT_FOUND naming it) means abort (presumed abort, safe because the coordinator logs a
transfer before sending any prepare). Anything else, a 404 from another route or service included,
counts as unreachable: the row stays locked and is asked again next tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from uuid import UUID

import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from accounts_service import db, participant
from accounts_service.metrics import ParticipantMetrics
from accounts_service.participant import NO_SIGNALS, ReleaseSignals
from shared.errors import ConflictError, TransferNotFoundError
from shared.http_client import PeerResponse, PeerUnavailableError, ServiceClient
from shared.settings import RecoveryClock, seconds

log = structlog.get_logger()

DEFAULT_IN_DOUBT_TIMEOUT_S = 5.0
DEFAULT_TOMBSTONE_RETENTION_S = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ParticipantRecoverySettings(RecoveryClock):
    in_doubt_timeout_s: float = seconds(DEFAULT_IN_DOUBT_TIMEOUT_S, env="IN_DOUBT_TIMEOUT_S")
    tombstone_retention_s: float = seconds(DEFAULT_TOMBSTONE_RETENTION_S, env="TOMBSTONE_RETENTION_S")


async def resolve_in_doubt(
    engine: AsyncEngine,
    coordinator: ServiceClient,
    settings: ParticipantRecoverySettings,
    signals: ReleaseSignals = NO_SIGNALS,
) -> int:
    """Ask about every long-held lock, oldest first; how many were resolved now.

    One transfer that fails (a refused commit, a broken invariant, a database error) is logged and
    left for the next tick; it never keeps the others in the batch from being resolved.
    """
    async with engine.connect() as connection:
        in_doubt = await db.select_in_doubt(connection, settings.in_doubt_timeout_s, settings.batch_max)
    resolved = 0
    for transaction_id in in_doubt:
        try:
            resolved += await _resolve(engine, coordinator, transaction_id, signals)
        except Exception:  # one transfer's failure must not stop the pass; it is asked again next tick
            log.exception("in_doubt_resolution_failed", transaction_id=str(transaction_id))
    return resolved


def outcome_from_answer(transaction_id: UUID, answer: PeerResponse) -> str | None:
    """committed | aborted from the coordinator's answer, or None: unknown, ask again (the row stays locked).

    Abort is presumed only on the coordinator's positive "no record" (TRANSFER_NOT_FOUND naming this very
    transfer). A 404 from an unknown route, another service or a proxy names no transfer: unreachable.
    """
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 404:
        error = found if isinstance(found := body.get("error"), dict) else {}
        details = found if isinstance(found := error.get("details"), dict) else {}
        named = error.get("code") == TransferNotFoundError.code and details.get("transaction_id") == str(transaction_id)
        return "aborted" if named else None
    data = found if isinstance(found := body.get("data"), dict) else {}
    if answer.status != 200 or data.get("transaction_id") not in (None, str(transaction_id)):
        return None
    status = data.get("status")
    return status if status in ("committed", "aborted") else None  # preparing: the coordinator will decide


async def _resolve(
    engine: AsyncEngine, coordinator: ServiceClient, transaction_id: UUID, signals: ReleaseSignals
) -> int:
    try:
        answer = await coordinator.get(f"/transactions/{transaction_id}/outcome")
    except PeerUnavailableError:
        log.warning("in_doubt_coordinator_unreachable", transaction_id=str(transaction_id))
        return 0
    status = outcome_from_answer(transaction_id, answer)
    if status is None:
        if answer.status != 200:
            log.warning(
                "in_doubt_no_answer", transaction_id=str(transaction_id), details={"http_status": answer.status}
            )
        return 0
    try:
        if status == "committed":
            await participant.commit(engine, transaction_id, signals=signals)
        else:
            await participant.abort(engine, transaction_id, [], signals=signals)
    except ConflictError:
        log.error("in_doubt_conflict", transaction_id=str(transaction_id), details={"outcome": status})
        return 0
    log.info(
        "in_doubt_resolved",
        transaction_id=str(transaction_id),
        details={"outcome": status, "presumed": answer.status == 404},
    )
    return 1


async def purge_tombstones(engine: AsyncEngine, settings: ParticipantRecoverySettings) -> int:
    async with engine.begin() as connection:
        return await db.purge_tombstones(connection, settings.tombstone_retention_s, settings.batch_max)


async def run_forever(
    engine: AsyncEngine,
    coordinator: ServiceClient,
    settings: ParticipantRecoverySettings,
    metrics: ParticipantMetrics,
    signals: ReleaseSignals,
) -> None:
    while True:
        try:
            metrics.recovery_actions.labels("in_doubt_resolved").inc(
                await resolve_in_doubt(engine, coordinator, settings, signals)
            )
            metrics.recovery_actions.labels("tombstones_purged").inc(await purge_tombstones(engine, settings))
            async with engine.connect() as connection:
                locked, in_doubt = await db.count_locks(connection, settings.in_doubt_timeout_s)
            metrics.locks_held.set(locked)
            metrics.in_doubt.set(in_doubt)
        except Exception:  # the loop must outlive any one failure; the next tick retries
            log.exception("participant_recovery_failed")
        await asyncio.sleep(settings.interval_s)


def recovery_context(
    engine_key: web.AppKey,
    coordinator_key: web.AppKey,
    settings_key: web.AppKey,
    metrics_key: web.AppKey,
    signals_key: web.AppKey,
):
    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(
            run_forever(
                app[engine_key], app[coordinator_key], app[settings_key].recovery, app[metrics_key], app[signals_key]
            )
        )
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    return context
