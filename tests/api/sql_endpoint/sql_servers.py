"""`northstar serve` with its SQL endpoint on a free port, for the wire-protocol tests.

Imported by the test modules rather than kept in a conftest.py, so no second `conftest` module
shadows tests/conftest.py for modules that import from it."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pytest

from api.sql_endpoint.protocol import ScramVerifier
from tests.conftest import BuiltWarehouse, Server, free_port

PASSWORD = "correct-horse-battery-staple"


@dataclass(frozen=True)
class SqlServer:
    host: str
    port: int
    http_url: str

    def dsn(self, **extra: str) -> str:
        params = {
            "host": self.host,
            "port": str(self.port),
            "dbname": "northstar",
            "user": "analyst",
            "connect_timeout": "10",
            **extra,
        }
        return " ".join(f"{k}={v}" for k, v in params.items())


def _serve(warehouse, env: dict[str, str] | None = None):
    # A data directory of its own: API tokens in the checkout's data/ must not change the mode.
    data_dir = tempfile.mkdtemp(prefix="northstar-sql-")
    server = Server(warehouse, env={"NORTHSTAR_DATA_DIR": data_dir, **(env or {})}, sql_port=free_port())
    server.wait_ready()
    return server


@pytest.fixture(scope="session")
def sql_server(built_warehouse: BuiltWarehouse):
    """Open (trust) mode: no password configured."""
    server = _serve(built_warehouse.warehouse)
    try:
        yield SqlServer("127.0.0.1", server.sql_port, server.base_url)
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["scram", "cleartext"])
def password_server(request, built_warehouse: BuiltWarehouse):
    """A password configured, stored as a SCRAM verifier (never as the password itself)."""
    verifier = str(ScramVerifier.from_password(PASSWORD))
    server = _serve(
        built_warehouse.warehouse, env={"NORTHSTAR_SQL_AUTH": request.param, "NORTHSTAR_SQL_PASSWORD": verifier}
    )
    try:
        yield request.param, SqlServer("127.0.0.1", server.sql_port, server.base_url), server
    finally:
        server.stop()
