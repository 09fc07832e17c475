"""The SQL endpoint in a process of its own, beside the HTTP server's.

In one process, the SQL endpoint's parsing, planning and row encoding (pure Python) share the
interpreter lock with the HTTP server's event loop, and a client reading a million rows holds
HTTP probes up by hundreds of milliseconds. In its own process it competes for the cores only,
and it runs at a lower scheduling priority (nice +5), so HTTP answers first when they are busy.
Both processes open the same warehouse read only, each with its own engine provider (a new
build reaches both), and share the files behind tokens and the audit log. Per-token
concurrency is counted per process: a token may run its limit on HTTP and on SQL.

Spark keeps the endpoint in a thread of the HTTP process: a second process would start a second
JVM and Spark session.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
from typing import Any

log = logging.getLogger("northstar.sql")

# Lower than the HTTP server's: when both want the cores, probes and API requests go first.
NICE = 5


def separate(settings: Any) -> bool:
    """Whether this warehouse's SQL endpoint runs in its own process."""
    return settings.warehouse_type in ("duckdb", "postgres")


class SqlEndpointProcess:
    """Starts the endpoint on a bound socket in a child process and stops it with the server."""

    def __init__(self, settings: Any, sock: socket.socket) -> None:
        self._process = multiprocessing.get_context("spawn").Process(
            target=_run, args=(settings, sock), name="northstar-sql", daemon=True
        )
        self._sock = sock

    def start(self) -> None:
        # Listening now: clients that come while the child starts wait in the backlog (a bound
        # socket that does not listen refuses them).
        self._sock.listen(128)
        self._process.start()
        # The child has its own copy of the listening socket; ours would only hold the port.
        self._sock.close()

    def stop(self, timeout: float = 10) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
            if self._process.is_alive():
                self._process.kill()


def _run(settings: Any, sock: socket.socket) -> None:
    """The child: its own engine provider, token store, audit log and limiter over the same files."""
    from api.auth import AuditLog, ConcurrencyLimiter
    from api.deps import open_engines
    from api.sql_endpoint.server import Authenticator, SqlEndpoint, SqlLimits
    from core.tokens import TokenStore

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    try:
        os.nice(NICE)
    except OSError:
        pass
    engines = open_engines(settings)
    tokens = TokenStore.in_dir(settings.data_dir)
    endpoint = SqlEndpoint(
        engines,
        Authenticator.from_settings(settings, tokens=tokens),
        SqlLimits.from_settings(settings),
        ConcurrencyLimiter(settings.max_concurrent_per_token),
        audit=AuditLog(settings.audit_log_path, settings.audit_log_max_bytes, settings.audit_log_files),
    )

    parent = os.getppid()

    async def serve() -> None:
        stopped = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        loop.add_signal_handler(signal.SIGINT, stopped.set)
        await endpoint.start(settings.host, settings.sql_port, sock=sock)
        # A server killed outright (SIGKILL) cannot stop us: leave when it is gone.
        while not stopped.is_set() and os.getppid() == parent:
            try:
                await asyncio.wait_for(stopped.wait(), 1.0)
            except TimeoutError:
                pass
        await endpoint.close()

    try:
        asyncio.run(serve())
    finally:
        engines.close()
