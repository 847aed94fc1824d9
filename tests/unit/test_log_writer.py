"""shared.log: lines are rendered and written by a writer thread, from a bounded queue that drops, never waits."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from shared import log


@pytest.fixture
def log_dir(tmp_path: Path) -> Iterator[Path]:
    log.configure_logging("test-service", "test.log", log_dir=tmp_path, console=False)
    try:
        yield tmp_path
    finally:
        log.drain()
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        structlog.contextvars.clear_contextvars()


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_a_line_keeps_its_format_and_its_context(log_dir: Path) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-1")
    structlog.get_logger().info("transfer_decided", transaction_id="t-1", details={"status": "committed"})
    structlog.contextvars.clear_contextvars()  # the line took its context when it was logged, not when written
    log.drain()
    (line,) = lines(log_dir / "test.log")
    assert line["event"] == "transfer_decided"
    assert line["request_id"] == "req-1"
    assert line["transaction_id"] == "t-1"
    assert line["details"] == {"status": "committed"}
    assert line["level"] == "info" and line["service_name"] == "test-service" and "timestamp" in line
    assert not (log_dir / "error.log").read_text()


def test_the_writer_thread_writes_without_being_drained(log_dir: Path) -> None:
    structlog.get_logger().info("written_soon")
    deadline = time.monotonic() + 2
    while not (log_dir / "test.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [line["event"] for line in lines(log_dir / "test.log")] == ["written_soon"]


def test_an_exception_keeps_its_traceback_and_goes_to_the_error_log(log_dir: Path) -> None:
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        structlog.get_logger().exception("unhandled_error")
    logging.getLogger("some.library").error("library trouble")
    log.drain()
    errors = lines(log_dir / "error.log")
    assert [line["event"] for line in errors] == ["unhandled_error", "library trouble"]
    assert "ZeroDivisionError" in errors[0]["exception"]


def test_a_library_line_keeps_the_request_id_it_was_logged_under(log_dir: Path) -> None:
    structlog.contextvars.bind_contextvars(request_id="req-2")
    logging.getLogger("aiohttp.server").error("Error handling request")
    structlog.contextvars.clear_contextvars()
    log.drain()
    (line,) = lines(log_dir / "error.log")
    assert line["request_id"] == "req-2" and line["event"] == "Error handling request"


def test_a_debug_line_below_the_level_is_not_even_queued(log_dir: Path) -> None:
    structlog.get_logger().debug("noise")
    log.drain()
    assert not (log_dir / "test.log").read_text()


class Slow(logging.Handler):
    """A handler whose writes wait until the test lets them go: a stuck disk."""

    def __init__(self, go: threading.Event) -> None:
        super().__init__()
        self.go = go
        self.seen = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.go.wait(5)
        self.seen += 1


def record() -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, "line", None, None)


def test_a_full_queue_drops_and_counts_lines_without_waiting() -> None:
    release = threading.Event()
    slow = Slow(release)
    writer = log._LineWriter([slow], max_waiting=3, interval_s=0.01)
    try:
        started = time.perf_counter()
        for _ in range(50):
            writer.handle(record())
        assert time.perf_counter() - started < 0.5  # the stuck disk did not hold the caller
        assert writer.dropped >= 50 - 3 - 1  # three wait, one may be in the writer's hands
    finally:
        release.set()
        writer.close()
    assert slow.seen + writer.dropped == 50


def test_close_writes_every_waiting_line() -> None:
    release = threading.Event()
    release.set()
    slow = Slow(release)
    writer = log._LineWriter([slow], max_waiting=100, interval_s=60)  # the tick never comes: close writes
    for _ in range(20):
        writer.handle(record())
    writer.close()
    assert slow.seen == 20 and writer.dropped == 0
