"""python -m web: the console on PORT (3000), in front of the three services."""

from __future__ import annotations

from aiohttp import web

from shared.settings import process_environ
from web.app import create_app
from web.settings import Settings


def main() -> None:
    settings = Settings.from_environ(process_environ())
    web.run_app(
        create_app(settings), host=settings.host, port=settings.port, access_log=None, print=None, shutdown_timeout=5
    )


if __name__ == "__main__":
    main()
