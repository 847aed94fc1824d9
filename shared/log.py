"""structlog setup: JSON lines into logs/<service>.log, errors also into logs/error.log, readable console.

Every line carries timestamp, level, service_name and event; protocol lines add transaction_id and
details. Context bound with structlog.contextvars (request_id, transaction_id) follows the request.

Lines are written off the event loop: the loop only collects a line's fields (context, level, time)
and appends them to a bounded queue; one writer thread, on a short tick, renders what waits as JSON and
writes the files, one flush per batch. When LOG_LINES_WAITING_MAX lines wait, a new line is dropped and
counted (dropped_lines()), never waited for: a slow disk must not stall transfers. A failpoint crash
drains the queue first (drain()), so the lines before it are kept.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import sys
import threading
from collections import deque
from collections.abc import MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

LOG_LEVEL_DEFAULT = "INFO"
# Lines waiting for the writer thread at most; a burst past it is dropped (and counted), not waited for.
LOG_LINES_WAITING_MAX = 10_000
# How often the writer thread writes what waits: a line reaches its file within about this.
LOG_WRITE_INTERVAL_S = 0.05
# The request id of the request being served, for the HTTP client to pass on (shared/web.py sets it):
# one ContextVar read, where structlog's get_contextvars() copies every context variable.
REQUEST_ID_VAR: ContextVar[str] = ContextVar("request_id", default="")
# Messages from libraries we do not want at INFO in our files.
QUIET_LOGGERS = ("aiohttp.access", "asyncio", "sqlalchemy.engine")


def configure_logging(
    service_name: str,
    log_file_name: str,
    *,
    log_dir: str | Path,
    level: str = LOG_LEVEL_DEFAULT,
    console: bool | None = None,
) -> None:
    """console=None: log to stderr too only when it is a terminal (the files already hold every line)."""
    if console is None:
        console = sys.stderr.isatty()
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    shared_processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service_name(service_name),
    ]
    json_formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(default=str),
        ],
    )
    handlers: list[logging.Handler] = [
        _file_handler(log_dir / log_file_name, json_formatter, logging.DEBUG),
        _file_handler(log_dir / "error.log", json_formatter, logging.ERROR),
    ]
    if console:
        handlers.append(_console_handler(shared_processors))
    root = logging.getLogger()
    drain()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    writer = _start_writer(handlers)
    root.addHandler(writer)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        # The traceback is taken here, on the thread that caught it: the writer thread has no sys.exc_info().
        # Our own lines skip the stdlib's record making (caller lookup, LogRecord) on the loop: the event
        # dict goes straight to the writer, which makes the record the handlers' formatters read.
        processors=[*shared_processors, structlog.processors.format_exc_info, _hand_to_writer],
        logger_factory=lambda *_: writer,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )


def _hand_to_writer(_logger: object, method_name: str, event_dict: MutableMapping[str, Any]) -> tuple[Any, ...]:
    """structlog's last step: the logger's method is called with (method name, event dict)."""
    return (method_name, event_dict), {}


@dataclass(frozen=True, slots=True)
class _Foreign:
    record: logging.LogRecord
    context: contextvars.Context


class _LineWriter(logging.Handler):
    """Root's one handler: the event loop appends each record to a deque (no lock, no thread woken per
    line), and a writer thread, every LOG_WRITE_INTERVAL_S, renders what waits and writes it in one go.
    Past LOG_LINES_WAITING_MAX waiting, a new line is dropped and counted: the loop never waits for a disk."""

    def __init__(self, handlers: list[logging.Handler], max_waiting: int, interval_s: float) -> None:
        assert max_waiting >= 1, "a bounded queue holds at least one line"
        assert interval_s > 0, "the writer sleeps between batches"
        super().__init__()
        self.handlers = handlers
        self.max_waiting = max_waiting
        self.interval_s = interval_s
        self.dropped = 0
        self._waiting: deque[_Foreign | tuple[str, dict]] = deque()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-writer", daemon=True)
        self._thread.start()

    def handle(self, record: logging.LogRecord) -> bool:
        """A library's record, with the context it was logged in (its request id is read when it is written)."""
        return self._wait(_Foreign(record, contextvars.copy_context()))

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def _line(self, method_name: str, event_dict: dict) -> bool:
        """One of our lines: its level and structlog's event dict, context already merged."""
        return self._wait((method_name, event_dict))

    def _wait(self, line: _Foreign | tuple[str, dict]) -> bool:
        # Handler.handle would take the handler's lock: a deque append needs none.
        if len(self._waiting) >= self.max_waiting:
            self.dropped += 1
        else:
            self._waiting.append(line)
        return True

    # structlog calls its logger's method of the line's level with what _hand_to_writer returns.
    debug = info = warning = error = critical = exception = msg = _line

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            self._write_waiting()
        self._write_waiting()

    def _write_waiting(self) -> None:
        written = 0
        while self._waiting and written < self.max_waiting:  # bounded: lines logged meanwhile wait a tick
            waiting = self._waiting.popleft()
            written += 1
            if isinstance(waiting, _Foreign):
                waiting.context.run(self._write, waiting.record)
            else:
                self._write(_record_of(*waiting))
        for handler in self.handlers:
            handler.flush()

    def _write(self, record: logging.LogRecord) -> None:
        for handler in self.handlers:
            if record.levelno >= handler.level:
                try:
                    handler.handle(record)
                except Exception:  # one unwritable line must not stop the thread that writes all the others
                    handler.handleError(record)

    def close(self) -> None:
        """Write every waiting line and stop the thread."""
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        for handler in self.handlers:
            handler.close()
        super().close()


def _record_of(method_name: str, event_dict: dict) -> logging.LogRecord:
    """The record structlog's stdlib integration would have made: the event dict as msg, and the marks
    by which ProcessorFormatter knows it for structlog's (and renders the dict, not str(dict))."""
    level = _LEVELS.get(method_name, logging.INFO)
    record = logging.LogRecord("structlog", level, "", 0, event_dict, None, None)
    record._logger = None
    record._name = method_name
    return record


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "msg": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "exception": logging.ERROR,
    "critical": logging.CRITICAL,
    "fatal": logging.CRITICAL,
}


class _BatchFileHandler(logging.FileHandler):
    """A file handler that flushes once per batch (the writer calls flush()), not once per line."""

    def emit(self, record: logging.LogRecord) -> None:
        if self.stream is None:  # closed: FileHandler opens it again, as it would
            self.stream = self._open()
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:  # as logging.StreamHandler does: a line that cannot be written is reported, not raised
            self.handleError(record)


_writer: _LineWriter | None = None


def _start_writer(handlers: list[logging.Handler]) -> _LineWriter:
    global _writer
    _writer = _LineWriter(handlers, LOG_LINES_WAITING_MAX, LOG_WRITE_INTERVAL_S)
    return _writer


def drain() -> None:
    """Write every waiting line and stop the writer thread (at exit, before a failpoint crash, on reconfigure)."""
    global _writer
    writer, _writer = _writer, None
    if writer is not None:
        logging.getLogger().removeHandler(writer)
        writer.close()


def dropped_lines() -> int:
    """Lines dropped since logging was configured because too many were waiting for the writer thread."""
    return _writer.dropped if _writer is not None else 0


atexit.register(drain)


def _add_service_name(service_name: str):
    def processor(_logger, _method, event_dict):
        event_dict.setdefault("service_name", service_name)
        return event_dict

    return processor


def _file_handler(path: Path, formatter: logging.Formatter, level: int) -> logging.Handler:
    handler = _BatchFileHandler(path, encoding="utf-8")
    handler.setFormatter(formatter)
    handler.setLevel(level)
    return handler


def _console_handler(shared_processors) -> logging.Handler:
    renderer = (
        structlog.dev.ConsoleRenderer(colors=True)
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer(default=str)
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.setLevel(logging.INFO)
    return handler
