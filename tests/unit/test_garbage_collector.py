"""The services' garbage collector settings (shared/service_app.py): set once, before serving."""

from __future__ import annotations

import gc

from shared.service_app import GC_OLDER_COLLECTION_RATIOS, GC_YOUNG_COLLECTION_ALLOCATIONS, tune_garbage_collector


def test_tuning_collects_cycles_less_often_and_freezes_what_exists() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold() == (GC_YOUNG_COLLECTION_ALLOCATIONS, *GC_OLDER_COLLECTION_RATIOS)
        assert gc.get_freeze_count() > 0
        assert gc.isenabled(), "cycles are still collected"
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
