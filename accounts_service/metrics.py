"""What the participant counts: votes, decisions applied, locks held, in-doubt rows, recovery actions."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class ParticipantMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry or CollectorRegistry()
        self.votes = Counter("participant_votes_total", "prepare votes", ["vote", "reason"], registry=registry)
        self.decisions = Counter("participant_decisions_total", "decisions applied", ["decision"], registry=registry)
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
        self.recovery_actions = Counter(
            "participant_recovery_actions_total", "recovery actions taken", ["action"], registry=registry
        )
