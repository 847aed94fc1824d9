"""Typed application state keys."""

from aiohttp import web

from accounts_service.metrics import ParticipantMetrics
from accounts_service.participant import ReleaseSignals
from accounts_service.settings import Settings
from shared.http_client import ServiceClient
from shared.service_app import ENGINE_KEY  # noqa: F401 - one engine key for every service

SETTINGS_KEY = web.AppKey("settings", Settings)
CUSTOMERS_KEY = web.AppKey("customer_service", ServiceClient)
COORDINATOR_KEY = web.AppKey("transactions_service", ServiceClient)
METRICS_KEY = web.AppKey("participant_metrics", ParticipantMetrics)
RELEASE_SIGNALS_KEY = web.AppKey("release_signals", ReleaseSignals)
