"""Typed application state keys."""

from aiohttp import web

from shared.http_client import ServiceClient
from shared.service_app import ENGINE_KEY  # noqa: F401 - one engine key for every service
from transactions_service.coordinator import Coordinator
from transactions_service.metrics import CoordinatorMetrics
from transactions_service.settings import Settings

SETTINGS_KEY = web.AppKey("settings", Settings)
COORDINATOR_KEY = web.AppKey("coordinator", Coordinator)
METRICS_KEY = web.AppKey("coordinator_metrics", CoordinatorMetrics)
CUSTOMERS_KEY = web.AppKey("customers_client", ServiceClient)
