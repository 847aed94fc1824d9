"""Prometheus metrics: one registry per app (so tests can build many apps), HTTP metrics for every route,
and GET /metrics in the text format."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.log import dropped_lines
from shared.web import Handler

REGISTRY_KEY = web.AppKey("metrics_registry", CollectorRegistry)
# Children kept per metric for reuse: one app's routes x methods x statuses stay far below it.
METRIC_CHILDREN_CACHED_MAX = 1_000
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CachedChildren:
    """A labelled metric whose child for each label values is made once: prometheus_client's labels()
    takes a lock and checks and joins its values on every call, and these are counted on every request."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def labels(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self.metric.labels(*values)
            if len(self._children) < METRIC_CHILDREN_CACHED_MAX:  # a client picks the HTTP method: bound it
                self._children[values] = child
        return child


class HttpMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = CachedChildren(
            Counter("http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=registry)
        )
        self.latency = CachedChildren(
            Histogram(
                "http_request_duration_seconds",
                "HTTP request latency",
                ["method", "route"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            )
        )


HTTP_METRICS_KEY = web.AppKey("http_metrics", HttpMetrics)


def install_metrics(app: web.Application, pool_in_use) -> CollectorRegistry:
    """A registry for this app, the HTTP middleware's metrics, a pool gauge and the /metrics route."""
    registry = CollectorRegistry()
    app[REGISTRY_KEY] = registry
    app[HTTP_METRICS_KEY] = HttpMetrics(registry)
    Gauge("db_pool_connections_in_use", "database connections checked out of the pool", registry=registry).set_function(
        pool_in_use
    )
    Gauge(
        "log_lines_dropped", "log lines dropped since start because the log writer's queue was full", registry=registry
    ).set_function(dropped_lines)
    app.router.add_get("/metrics", _metrics)
    return registry


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)
    metrics: HttpMetrics = request.app[HTTP_METRICS_KEY]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    metrics.requests.labels(request.method, route, str(response.status)).inc()
    metrics.latency.labels(request.method, route).observe(time.perf_counter() - started)
    return response


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
