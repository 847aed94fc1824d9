"""CPU seconds of each process the bench measures, read with psutil: the services, PostgreSQL, the bench itself.

PostgreSQL forks one backend per connection: its figure is the postmaster, every live child, and the
children that already exited (the postmaster reaps them, so their time lands in its children_* fields).
"""

from __future__ import annotations

from collections.abc import Callable

import psutil

# The processes of a run, in the order the report shows them, by the listening port's role.
COORDINATOR = "coordinator"
PARTICIPANT = "participant"
CUSTOMER_SERVICE = "customer_service"
POSTGRES = "postgres"
LOAD_GENERATOR = "load_generator"
PROCESSES = (COORDINATOR, PARTICIPANT, CUSTOMER_SERVICE, POSTGRES, LOAD_GENERATOR)
# What "the system" costs per transfer: everything but the load generator.
SYSTEM_PROCESSES = (COORDINATOR, PARTICIPANT, CUSTOMER_SERVICE, POSTGRES)
TOTAL = "services_and_postgres"

CpuProbe = Callable[[], dict[str, float]]


def listening_processes(ports: dict[str, int]) -> dict[str, psutil.Process]:
    """The process listening on each named port (those found; a remote service has none here)."""
    listeners = {
        connection.laddr.port: connection.pid
        for connection in psutil.net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN and connection.pid
    }
    return {name: psutil.Process(listeners[port]) for name, port in ports.items() if port in listeners}


def cpu_probe(ports: dict[str, int]) -> CpuProbe:
    """A function reading the CPU seconds (user + system) so far of each process, the bench's own included."""
    processes = {**listening_processes(ports), LOAD_GENERATOR: psutil.Process()}

    def probe() -> dict[str, float]:
        return {
            name: (_family_cpu(process) if name == POSTGRES else _cpu(process)) for name, process in processes.items()
        }

    return probe


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


def _family_cpu(postmaster: psutil.Process) -> float:
    try:
        own = postmaster.cpu_times()
        children = postmaster.children(recursive=True)
    except psutil.Error:
        return 0.0
    reaped = own.children_user + own.children_system
    return own.user + own.system + reaped + sum(_cpu(child) for child in children)


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.Error:  # a backend that exited between listing and reading
        return 0.0
    return times.user + times.system
