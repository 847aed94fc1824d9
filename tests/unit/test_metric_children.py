"""shared.metrics.CachedChildren: one child per label values, made once, and a bounded number kept."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from shared import metrics
from shared.metrics import CachedChildren


def test_the_same_labels_give_the_same_child_and_count_where_prometheus_reads() -> None:
    registry = CollectorRegistry()
    counter = CachedChildren(Counter("things_total", "things", ["kind"], registry=registry))
    assert counter.labels("a") is counter.labels("a")
    counter.labels("a").inc()
    counter.labels("a").inc()
    counter.labels("b").inc()
    assert registry.get_sample_value("things_total", {"kind": "a"}) == 2
    assert registry.get_sample_value("things_total", {"kind": "b"}) == 1


def test_past_its_bound_a_child_is_still_counted_but_not_kept(monkeypatch) -> None:
    monkeypatch.setattr(metrics, "METRIC_CHILDREN_CACHED_MAX", 2)
    registry = CollectorRegistry()
    counter = CachedChildren(Counter("methods_total", "methods", ["method"], registry=registry))
    for method in ("GET", "POST", "BREW", "BREW"):
        counter.labels(method).inc()
    assert len(counter._children) == 2
    assert registry.get_sample_value("methods_total", {"method": "BREW"}) == 2
