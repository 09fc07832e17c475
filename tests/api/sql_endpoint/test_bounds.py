"""The SQL endpoint is bounded and fair, against a running `northstar serve --sql-port` with
restricted tokens: cancel stops warehouse work, per-token concurrency, statement size, login
timeout, row cap, catalog timeout/memory/rows, and HTTP stays responsive under SQL load.

Timing bounds are generous (two shared cores) but each is far below what the unbounded
server took (25.6 s for a trivial query after cancels, 98.7 s for a catalog sort, seconds of
frozen /healthz)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlglot import parse_one

psycopg = pytest.importorskip("psycopg")

from api.sql_endpoint import semantic_sql  # noqa: E402
from metrics.engine import MetricsEngine  # noqa: E402
from metrics.errors import QueryCancelled  # noqa: E402
from metrics.execution.cancel import Cancellation, cancellable  # noqa: E402
from tests.api.sql_endpoint.sql_servers import SqlServer  # noqa: E402
from tests.conftest import Server, free_port, northstar  # noqa: E402

MAX_ROWS = 1_100_000
HEAVY = "SELECT count(*) FROM marts.fct_events a, marts.fct_events b WHERE a.user_id < b.user_id"
MILLION = (
    "SELECT a.user_id, a.country, b.account_id FROM marts.dim_users a CROSS JOIN marts.dim_accounts b LIMIT 1000000"
)


@pytest.fixture(scope="module")
def bounded(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("sql-bounds")
    (data_dir / "northstar.duckdb").symlink_to(Path(built_warehouse.warehouse).resolve())

    def create(name: str, *options: str) -> str:
        return (
            northstar(
                "tokens", "create", "--name", name, "--scope", "metrics:read", "--data-dir", str(data_dir), *options
            )
            .stdout.strip()
            .splitlines()[-1]
        )

    tokens = {"bulk": create("bulk", "--max-concurrent", "32"), "single": create("single", "--max-concurrent", "1")}
    server = Server(
        data_dir / "northstar.duckdb",
        sql_port=free_port(),
        env={
            "NORTHSTAR_DATA_DIR": str(data_dir),
            "NORTHSTAR_MAX_RESULT_ROWS": str(MAX_ROWS),
            "NORTHSTAR_QUERY_TIMEOUT_S": "15",
            "NORTHSTAR_SQL_LOGIN_TIMEOUT_S": "2",
        },
    )
    try:
        server.wait_ready()
        yield SqlServer("127.0.0.1", server.sql_port, server.base_url), tokens
    finally:
        server.stop()


def connect(bounded, token: str = "bulk"):
    server, tokens = bounded
    return psycopg.connect(server.dsn(user="client", password=tokens[token]), autocommit=True)


def cancelled_after(bounded, sql: str, delay: float = 1.0) -> tuple[str | None, float]:
    """Runs `sql`, cancels it after `delay`; (SQLSTATE, seconds from cancel to answer)."""
    with connect(bounded) as conn:
        timer = threading.Timer(delay, conn.cancel_safe)
        timer.start()
        started = time.monotonic()
        try:
            conn.execute(sql).fetchall()
            return None, time.monotonic() - started
        except psycopg.Error as exc:
            return exc.sqlstate, time.monotonic() - started - delay
        finally:
            timer.cancel()


def test_cancel_stops_a_marts_read_and_frees_its_worker(bounded):
    state, seconds = cancelled_after(bounded, HEAVY)
    assert state == "57014"
    assert seconds < 5  # the heavy read runs for minutes uncancelled


def test_after_eight_cancelled_heavy_reads_a_trivial_query_answers_promptly(bounded):
    outcomes: list = []
    threads = [threading.Thread(target=lambda: outcomes.append(cancelled_after(bounded, HEAVY))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [state for state, _ in outcomes] == ["57014"] * 8
    with connect(bounded) as conn:
        started = time.monotonic()
        assert conn.execute("SELECT count(*) FROM marts.dim_launches").fetchone()[0] > 0
        assert time.monotonic() - started < 1.0


def test_a_semantic_query_stops_when_its_caller_cancels(built_warehouse):
    # The engine path of a semantic query honours the cancellation token the SQL endpoint
    # passes down: a cancelled statement reads nothing more from the warehouse.
    engine = MetricsEngine.open(built_warehouse.warehouse)
    try:
        token = Cancellation()
        token.cancel()
        with cancellable(token), pytest.raises(semantic_sql.SqlError) as caught:
            semantic_sql.answer(
                parse_one("SELECT metric_time__day, active_users FROM semantic.metrics", read="postgres"), engine
            )
        assert caught.value.sqlstate == "57014"
        assert isinstance(caught.value.__cause__, QueryCancelled)
    finally:
        engine.close()


def test_per_token_concurrency_is_refused_with_53400(bounded):
    with connect(bounded, "single") as busy, connect(bounded, "single") as other:
        outcome: list = []

        def run() -> None:
            try:
                busy.execute(HEAVY).fetchall()
            except psycopg.Error as exc:
                outcome.append(exc.sqlstate)

        thread = threading.Thread(target=run)
        thread.start()
        time.sleep(1.0)
        with pytest.raises(psycopg.Error) as refused:
            other.execute("SELECT count(*) FROM marts.dim_launches")
        assert refused.value.sqlstate == "53400"
        assert "single" in str(refused.value) and "limit is 1" in str(refused.value)
        busy.cancel_safe()
        thread.join(30)
        assert outcome == ["57014"]
        # The slot is free again once the cancelled statement stopped.
        assert other.execute("SELECT count(*) FROM marts.dim_launches").fetchone()[0] > 0


def test_an_oversized_statement_is_refused_and_the_connection_goes_on(bounded):
    with connect(bounded) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT '" + "x" * 1_100_000 + "' AS big")
        assert refused.value.sqlstate == "54000" and "1,048,576" in str(refused.value)
        with pytest.raises(psycopg.Error) as refused:  # extended protocol (Parse) too
            conn.execute("SELECT %s::text || '" + "x" * 1_100_000 + "'", ["a"], prepare=True)
        assert refused.value.sqlstate == "54000"
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_login_timeout_closes_an_idle_unauthenticated_connection(bounded):
    server, _ = bounded
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        waited = time.monotonic() - started
    assert 1.5 < waited < 6
    assert received[:1] == b"E" and b"canceling authentication due to timeout" in received
    # A client that starts but never answers the password request is closed the same way.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        params = b"user\x00client\x00database\x00northstar\x00\x00"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        started = time.monotonic()
        received = b""
        while chunk := sock.recv(4096):
            received += chunk
        assert time.monotonic() - started < 6 and b"canceling authentication due to timeout" in received


def test_row_cap_applies_to_marts_reads(bounded):
    with connect(bounded) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT a.user_id, b.account_id FROM marts.dim_users a CROSS JOIN marts.dim_accounts b")
        assert refused.value.sqlstate == "54000"
        assert f"{MAX_ROWS:,}" in str(refused.value) and "LIMIT" in str(refused.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)


# -- the catalog path ---------------------------------------------------------------------

CATALOG_FOREVER = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r"


def test_catalog_query_stops_at_the_statement_timeout_without_delaying_others(bounded):
    outcome: list = []

    def forever() -> None:
        with connect(bounded) as conn:
            started = time.monotonic()
            try:
                conn.execute(CATALOG_FOREVER).fetchall()
            except psycopg.Error as exc:
                outcome.append((exc.sqlstate, str(exc), time.monotonic() - started))

    thread = threading.Thread(target=forever)
    thread.start()
    time.sleep(1.0)
    with connect(bounded) as conn:  # meanwhile another client is answered at once
        for sql in ("SELECT count(*) FROM pg_catalog.pg_class", "SELECT count(*) FROM marts.dim_launches"):
            started = time.monotonic()
            conn.execute(sql).fetchall()
            assert time.monotonic() - started < 1.0
    thread.join(60)
    ((state, message, seconds),) = outcome
    assert state == "57014" and "statement timeout" in message
    assert 14 < seconds < 30


def test_catalog_query_memory_is_bounded(bounded):
    with connect(bounded) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(
                "SELECT length(string_agg(repeat(a.attname, 100000), '')) "
                "FROM pg_catalog.pg_attribute a, pg_catalog.pg_attribute b"
            )
        assert refused.value.sqlstate == "53200" and "256MB" in str(refused.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_catalog_query_rows_are_capped(bounded):
    with connect(bounded) as conn:
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(
                "SELECT a.attname FROM pg_catalog.pg_attribute a, pg_catalog.pg_attribute b, pg_catalog.pg_attribute c"
            )
        assert refused.value.sqlstate == "54000" and f"{MAX_ROWS:,}" in str(refused.value)


# -- HTTP under SQL load ------------------------------------------------------------------


def test_http_stays_responsive_while_sql_serves_a_million_rows_and_cancelled_reads(bounded):
    server, _ = bounded
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                started = time.perf_counter()
                assert client.get(server.http_url + "/healthz").status_code == 200
                latencies.append(time.perf_counter() - started)
                time.sleep(0.02)

    answers: dict = {}

    def million() -> None:
        with connect(bounded) as conn:
            answers["rows"] = len(conn.execute(MILLION).fetchall())

    prober = threading.Thread(target=probe)
    prober.start()
    load = [threading.Thread(target=million)] + [
        threading.Thread(target=lambda: answers.setdefault("cancelled", []).append(cancelled_after(bounded, HEAVY)[0]))
        for _ in range(8)
    ]
    try:
        for thread in load:
            thread.start()
        for thread in load:
            thread.join(120)
    finally:
        stop.set()
        prober.join(60)
    assert answers["rows"] == 1_000_000 and answers["cancelled"] == ["57014"] * 8
    latencies.sort()
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    print(f"/healthz p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms over {len(latencies)} probes")
    # The endpoint in its own process: p99 38-55 ms measured on two cores at load 7 (0.2-0.4 s
    # when it shared the HTTP process; 0.6 s before it had its own loop). The bound leaves room.
    assert len(latencies) > 50 and p99 < 0.15, f"/healthz p99 {p99 * 1000:.0f} ms"
