"""The bank checker's Service proxy: new connections go round the replicas that accept, skipping dead ones."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from harness.local_postgres import free_port
from harness.service_proxy import HOST, ServiceProxy

pytestmark = pytest.mark.asyncio(loop_scope="session")


@contextlib.asynccontextmanager
async def _replica(name: bytes) -> AsyncIterator[tuple[int, asyncio.Server]]:
    """A replica that answers every connection with its name, then echoes what it is sent."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(name)
        while data := await reader.read(1024):
            writer.write(data)
        writer.close()

    port = free_port()
    server = await asyncio.start_server(answer, HOST, port)
    try:
        yield port, server
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def _proxy(replica_ports: list[int]) -> AsyncIterator[int]:
    port = free_port()
    server = await asyncio.start_server(ServiceProxy(replica_ports).handle, HOST, port)
    try:
        yield port
    finally:
        server.close()


async def _first_bytes(port: int) -> bytes:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        return await asyncio.wait_for(reader.read(1), timeout=5)
    finally:
        writer.close()


async def test_connections_take_turns_over_the_replicas_and_carry_both_ways() -> None:
    async with _replica(b"a") as (port_a, _), _replica(b"b") as (port_b, _), _proxy([port_a, port_b]) as proxy:
        seen = [await _first_bytes(proxy) for _ in range(4)]
        reader, writer = await asyncio.open_connection(HOST, proxy)
        await reader.readexactly(1)
        writer.write(b"ping")
        echoed = await asyncio.wait_for(reader.readexactly(4), timeout=5)
        writer.close()

    assert seen == [b"a", b"b", b"a", b"b"]
    assert echoed == b"ping"


async def test_a_dead_replica_is_skipped_and_no_replica_means_a_closed_connection() -> None:
    dead = free_port()  # nothing listens there
    async with _replica(b"a") as (port_a, _), _proxy([dead, port_a]) as proxy:
        seen = [await _first_bytes(proxy) for _ in range(3)]
    async with _proxy([dead]) as proxy:
        nothing = await _first_bytes(proxy)

    assert seen == [b"a"] * 3
    assert nothing == b""
