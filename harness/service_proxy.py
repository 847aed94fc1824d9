"""A Service in front of one service's replicas, the way Kubernetes gives one: a TCP port on this machine
whose every new connection goes to the next replica that accepts it (round robin); a replica that refuses
is skipped, as a failed readiness probe takes a pod out of its Service. A connection stays with its replica
until either side closes it, so a killed replica drops exactly the connections it held.

    python -m harness.service_proxy LISTEN_PORT REPLICA_PORT [REPLICA_PORT ...]
"""

from __future__ import annotations

import asyncio
import sys

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 1.0
BUFFER_BYTES = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER_BYTES):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass  # either side went away: the other one is closed below
    finally:
        writer.close()


class ServiceProxy:
    def __init__(self, replica_ports: list[int]) -> None:
        assert replica_ports, "a Service has at least one replica"
        self.replica_ports = replica_ports
        self.next_index = 0

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """The next replica that accepts a connection, or None when none does."""
        for _ in range(len(self.replica_ports)):
            port = self.replica_ports[self.next_index]
            self.next_index = (self.next_index + 1) % len(self.replica_ports)
            try:
                return await asyncio.wait_for(asyncio.open_connection(HOST, port), CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                continue
        return None

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            client_writer.close()  # no replica up: the client sees the connection closed, as with no endpoints
            return
        upstream_reader, upstream_writer = upstream
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))


async def serve(listen_port: int, replica_ports: list[int]) -> None:
    proxy = ServiceProxy(replica_ports)
    server = await asyncio.start_server(proxy.handle, HOST, listen_port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ports = [int(argument) for argument in sys.argv[1:]]
    asyncio.run(serve(ports[0], ports[1:]))
