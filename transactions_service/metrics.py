"""What the coordinator counts: transfers by outcome, protocol phase latencies, recovery actions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS_S, CachedChildren

BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class CoordinatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        # Labelled metrics are counted per transfer: their children are made once (CachedChildren).
        self.transfers = CachedChildren(
            Counter("transfers_total", "transfers decided", ["status", "reason"], registry=registry)
        )
        self.phase_latency = CachedChildren(
            Histogram(
                "transfer_phase_duration_seconds",
                "time spent in each protocol phase",
                ["phase"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            )
        )
        self.recovery_actions = CachedChildren(
            Counter("recovery_actions_total", "recovery actions taken", ["action"], registry=registry)
        )
        self.batch_size = Histogram(
            "coordinator_batch_size",
            "transfers carried by one batch (one statement or one message), by protocol phase",
            ["phase"],
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        # Read when scraped (set_function), so counting costs the hot path nothing.
        self.batch_waiting = Gauge(
            "coordinator_batch_waiting",
            "transfers waiting for the next batch of a step, per batcher",
            ["batcher"],
            registry=registry,
        )
        self.batch_flights_stalled = Counter(
            "coordinator_batch_flights_stalled",
            "batches in the air past the stall bound, whose slot went to the next batch, per batcher",
            ["batcher"],
            registry=registry,
        )
        self.unfinished = Gauge(
            "transfers_unfinished",
            "decided transfers not yet acknowledged by every participant, as of the last recovery pass",
            registry=registry,
        )
