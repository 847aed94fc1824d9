"""python -m customer_service create-admin --username NAME: the first admin of a deployment, without demo data.

The password comes from --password-file FILE (its first line), else ADMIN_PASSWORD in the environment,
else a hidden prompt (asked twice). It is never an argument, so it stays out of shell history and `ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
from pathlib import Path

from customer_service.domain import Login, Role, parse_password, parse_username
from customer_service.passwords import Passwords
from customer_service.service import create_login
from customer_service.settings import Settings
from shared.database import create_engine
from shared.errors import ApiError

PASSWORD_VARIABLE = "ADMIN_PASSWORD"


def create_admin(settings: Settings, arguments: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m customer_service create-admin")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password-file", type=Path, help="a file whose first line is the password")
    chosen = parser.parse_args(arguments)
    try:
        login = Login(
            username=parse_username(chosen.username),
            password=parse_password(_password(chosen)),
            role=Role.ADMIN,
            customer_id=None,
        )
        asyncio.run(_create(settings, login))
    except ApiError as error:  # a bad name or password, or the username is taken: one line, exit 1
        raise SystemExit(f"create-admin: {error.message}") from None
    print(f"admin {login.username} created")


def _password(chosen: argparse.Namespace) -> str:
    if chosen.password_file is not None:
        lines = chosen.password_file.read_text().splitlines()
        return lines[0] if lines else ""
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    password = getpass.getpass("password for the new admin: ")
    if getpass.getpass("the same password again: ") != password:
        raise SystemExit("create-admin: the passwords differ")
    return password


async def _create(settings: Settings, login: Login) -> None:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        await create_login(
            engine, Passwords(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib), login
        )
    finally:
        await engine.dispose()
