"""Shared fixtures: a warehouse built by the real `northstar build` (real dbt, real DuckDB
file) from the committed sample, and the real service serving it over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.browser import browser  # noqa: F401  (a fixture: the page tests' shared Chromium)

REPO = Path(__file__).resolve().parent.parent
# Run inside Superset's own venv by test_superset.py, not importable here (doctest collection).
collect_ignore = ["api/sql_endpoint/superset_client.py"]
# Tests run on the committed sample unless NORTHSTAR_TEST_LANDING names other landing data.
SAMPLE = Path(os.environ.get("NORTHSTAR_TEST_LANDING") or REPO / "seeds" / "sample")


@dataclass(frozen=True)
class BuiltWarehouse:
    landing_dir: Path
    data_dir: Path
    warehouse: Path


@dataclass(frozen=True)
class Api:
    client: httpx.Client
    base_url: str
    landing_dir: Path
    warehouse: Path


def northstar(
    *args: str, env: dict[str, str] | None = None, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run the installed `northstar` command as a user would."""
    command = [sys.executable, "-m", "northstar", *args]
    proc = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"northstar {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> BuiltWarehouse:
    data_dir = tmp_path_factory.mktemp("data")
    warehouse = data_dir / "northstar.duckdb"
    northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse))
    return BuiltWarehouse(SAMPLE, data_dir, warehouse)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """`northstar serve` in a subprocess, stopped at teardown."""

    def __init__(
        self,
        warehouse: Path,
        env: dict[str, str] | None = None,
        sql_port: int = 0,
        flight_port: int = 0,
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = free_port()
        self.sql_port = sql_port  # 0: no SQL endpoint, so parallel servers do not compete for 5433
        self.flight_port = flight_port  # 0: no Flight SQL endpoint (8815), likewise
        self.base_url = f"http://127.0.0.1:{self.port}"
        # The log goes to a file: an unread pipe would fill up and block the server.
        self.log = tempfile.NamedTemporaryFile("w+", prefix="northstar-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "northstar",
                "serve",
                "--warehouse",
                str(warehouse),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--sql-port",
                str(sql_port),
                "--flight-port",
                str(flight_port),
                *args,
            ],
            # Tokens and the audit log live in the data directory: the warehouse's, not the repo's.
            cwd=REPO,
            env={**os.environ, "NORTHSTAR_DATA_DIR": str(Path(warehouse).parent), **(env or {})},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def output(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output()}")
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("server did not start in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The PostgreSQL server of the PostgreSQL tests (`.ci/run` starts one with
    scripts/postgres_test_server.sh and exports its DSN)."""
    dsn = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")
    if not dsn:
        pytest.skip(
            "NORTHSTAR_TEST_POSTGRES_DSN is not set; start a server with "
            "`export NORTHSTAR_TEST_POSTGRES_DSN=$(scripts/postgres_test_server.sh start)`"
        )
    return dsn


@pytest.fixture(scope="session")
def postgres_api(tmp_path_factory: pytest.TempPathFactory, postgres_dsn: str):
    """The service over the same landing data built into PostgreSQL by `northstar build
    --warehouse-type postgres`."""
    data_dir = tmp_path_factory.mktemp("pgdata")
    warehouse = data_dir / "northstar.postgres"
    env = {"NORTHSTAR_WAREHOUSE_TYPE": "postgres", "NORTHSTAR_POSTGRES_DSN": postgres_dsn}
    northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse), env=env)
    server = Server(warehouse, env=env)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            yield Api(client, server.base_url, SAMPLE, warehouse)
    finally:
        server.stop()


def spark_missing() -> str | None:
    """Why the Spark tests cannot run here (pyspark, dbt-spark or Java missing), or None."""
    import importlib.util
    import shutil

    for module, extra in (("pyspark", "pyspark"), ("dbt.adapters.spark", "dbt-spark[session]")):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed (pip install -e '.[spark]' installs {extra})"
    java_home = os.environ.get("JAVA_HOME")
    if not shutil.which("java") and not (java_home and (Path(java_home) / "bin" / "java").exists()):
        return "no Java runtime (Spark needs Java 17: apt-get install default-jdk-headless)"
    return None


@pytest.fixture(scope="session")
def spark_api(tmp_path_factory: pytest.TempPathFactory):
    """The service over the same landing data built into Spark (a local session) by `northstar
    build --warehouse-type spark`."""
    missing = spark_missing()
    if missing:
        pytest.skip(missing)
    data_dir = tmp_path_factory.mktemp("sparkdata")
    warehouse = data_dir / "northstar.spark"
    # answers, not latency, are under test: a shared machine may take minutes for a readout
    env = {
        "NORTHSTAR_WAREHOUSE_TYPE": "spark",
        "NORTHSTAR_SPARK_MASTER": "local[2]",
        "NORTHSTAR_QUERY_TIMEOUT_S": "600",
    }
    northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse), env=env)
    server = Server(warehouse, env=env)
    try:
        server.wait_ready(timeout=300)  # the server starts a JVM and registers the build's tables
        with httpx.Client(base_url=server.base_url, timeout=300) as client:
            yield Api(client, server.base_url, SAMPLE, warehouse)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def api(built_warehouse: BuiltWarehouse):
    server = Server(built_warehouse.warehouse)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            yield Api(client, server.base_url, built_warehouse.landing_dir, built_warehouse.warehouse)
    finally:
        server.stop()
