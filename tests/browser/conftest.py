"""The console in a real browser: Debian's Chromium, driven by Playwright for Python (never a downloaded
browser). Without /usr/bin/chromium or Playwright these tests are skipped and the run says so."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.local_postgres import LocalPostgres, free_port
from harness.system import LocalSystem
from tests.conftest import ROOT
from tests.e2e.conftest import start_system

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("BROWSER_ARTIFACTS_DIR", ROOT / "tmp" / "artifacts" / "browser"))
# Recovery on a short clock, so the demo's broken transfer is finished within the test: a decision
# unanswered for 1 s is given up by the request, and recovery re-sends it 3 s after the decision.
FAST_RECOVERY = {
    "COMPLETION_GRACE_S": "3",
    "RECOVERY_INTERVAL_S": "0.5",
    "RECOVERY_RETRY_FIRST_S": "0.5",
    "DECISION_TIMEOUT_S": "1",
}


def browser_missing() -> str | None:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright)"
    return None


SKIP_REASON = browser_missing()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SKIP_REASON:
        for item in items:
            if "tests/browser" in item.nodeid:
                item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {SKIP_REASON}"))


@pytest.fixture(scope="module")
def console_system(postgres: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalSystem]:
    """A system of its own (fresh demo balances) with the web console in front of it."""
    system = start_system(postgres, tmp_path_factory.mktemp("browser-logs"), FAST_RECOVERY)
    try:
        system.start_console(free_port())
        yield system
    finally:
        system.stop_all()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright gives each launch a fresh temporary profile (its own --user-data-dir).
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
