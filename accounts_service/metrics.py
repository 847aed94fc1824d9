"""What the participant counts: votes, decisions applied, locks held, in-doubt rows, recovery actions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.metrics import CachedChildren


class ParticipantMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        # Labelled metrics are counted per message: their children are made once (CachedChildren).
        self.votes = CachedChildren(
            Counter("participant_votes_total", "prepare votes", ["vote", "reason"], registry=registry)
        )
        self.decisions = CachedChildren(
            Counter("participant_decisions_total", "decisions applied", ["decision"], registry=registry)
        )
        self.locks_held = Gauge(
            "participant_locks_held",
            "accounts locked by a prepared transfer (as of the last recovery pass)",
            registry=registry,
        )
        self.in_doubt = Gauge(
            "participant_in_doubt",
            "locks held longer than the in-doubt timeout (as of the last recovery pass)",
            registry=registry,
        )
        self.recovery_actions = CachedChildren(
            Counter("participant_recovery_actions_total", "recovery actions taken", ["action"], registry=registry)
        )
