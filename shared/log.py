"""structlog setup: JSON lines into logs/<service>.log, errors also into logs/error.log, readable console.

Every line carries timestamp, level, service_name and event; protocol lines add transaction_id and
details. Context bound with structlog.contextvars (request_id, transaction_id) follows the request.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import structlog

LOG_LEVEL_DEFAULT = "INFO"
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
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared_processors, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def _add_service_name(service_name: str):
    def processor(_logger, _method, event_dict):
        event_dict.setdefault("service_name", service_name)
        return event_dict

    return processor


def _file_handler(path: Path, formatter: logging.Formatter, level: int) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
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
