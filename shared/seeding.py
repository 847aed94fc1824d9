"""What one demo seed did: the rows it restored and the ones it skipped, with why.

Seeding runs before every start (`banking-cli up`, compose, the Kubernetes Job), on data the API may
have changed since: a demo row that cannot come back is skipped and named, never a failed start.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SeedReport:
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "what: why"

    def restored(self, what: str) -> None:
        self.created.append(what)

    def skip(self, what: str, why: str) -> None:
        self.skipped.append(f"{what}: {why}")

    def lines(self, service: str) -> list[str]:
        """One line for the whole seed, then one per skipped row."""
        return [
            f"{service} seed-demo: created {len(self.created)}, skipped {len(self.skipped)}",
            *(f"{service} seed-demo: skipped {skipped}" for skipped in self.skipped),
        ]
