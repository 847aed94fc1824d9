"""A deliberately lying transactions_service, for proving the bank checker catches wrong answers.

Every other committed transfer is answered 503 "try again" although it committed: the lie a client
that retries without an Idempotency-Key pays twice for. Run it exactly like the real one:
`python -m tests.faults.lying_coordinator` with the same environment.
"""

from __future__ import annotations

import itertools

from shared.errors import ServiceUnavailableError
from transactions_service import handlers
from transactions_service.protocol import TransferStatus

_honest_answer = handlers.transfer_answer
_committed = itertools.count()


def _lying_answer(transfer):
    if transfer.status is TransferStatus.COMMITTED and next(_committed) % 2:
        raise ServiceUnavailableError("database unavailable, try again")
    return _honest_answer(transfer)


if __name__ == "__main__":
    handlers.transfer_answer = _lying_answer
    from transactions_service.__main__ import main

    main(["serve"])
