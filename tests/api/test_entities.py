"""Entities as group-by items and filters on every interface: the HTTP API, the CLI and the
SQL endpoint, over the marketplace corpus project (tests/metrics/corpus/marketplace), where a
booking's listing has a host (`listing__host`, one join) and the host a company
(`listing__host__company`, two joins). Expected values come from hand-written SQL over the
built DuckDB file."""

from __future__ import annotations

import tempfile

import duckdb
import httpx
import psycopg
import pytest

from tests.conftest import Server, free_port, northstar
from tests.metrics.corpus.builds import corpus_warehouse

BY_HOST = """select l.host_id, count(*) from bookings b join listings l using (listing_id)
              group by 1 order by 1"""
BY_COMPANY_FILTERED = """select h.company_id, sum(b.price_usd) from bookings b join listings l using (listing_id)
                         join hosts h using (host_id) where l.host_id in (1, 2, 3, 4, 5) group by 1 order by 1"""


@pytest.fixture(scope="module")
def marketplace():
    warehouse = corpus_warehouse("marketplace")
    con = duckdb.connect(str(warehouse), read_only=True)
    expected = {"host": con.execute(BY_HOST).fetchall(), "company": con.execute(BY_COMPANY_FILTERED).fetchall()}
    con.close()
    server = Server(
        warehouse, env={"NORTHSTAR_DATA_DIR": tempfile.mkdtemp(prefix="northstar-entities-")}, sql_port=free_port()
    )
    try:
        server.wait_ready()
        yield warehouse, server, expected
    finally:
        server.stop()


def test_http(marketplace):
    _, server, expected = marketplace
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        by_host = client.post("/v1/query", json={"metrics": ["bookings"], "group_by": ["listing__host"]})
        assert by_host.status_code == 200, by_host.text
        assert [tuple(r) for r in by_host.json()["rows"]] == expected["host"]
        filtered = client.post(
            "/v1/query",
            json={
                "metrics": ["booking_value"],
                "group_by": ["listing__host__company"],
                "where": ["{{ Entity('listing__host') }} in (1, 2, 3, 4, 5)"],
            },
        )
        assert filtered.status_code == 200, filtered.text
        assert [(k, pytest.approx(float(v))) for k, v in filtered.json()["rows"]] == [
            (k, float(v)) for k, v in expected["company"]
        ]
        date_part = client.post("/v1/query", json={"metrics": ["bookings"], "group_by": ["metric_time__extract_year"]})
        assert date_part.status_code == 422, date_part.text
        assert date_part.json()["error"]["code"] == "unsupported_feature"
        assert "date parts" in date_part.json()["error"]["message"]
        catalog = client.get("/v1/metrics/bookings").json()
        assert {"listing__host", "listing__host__company"} <= set(catalog["qualified_dimensions"])


def test_cli(marketplace):
    warehouse, _, expected = marketplace
    out = northstar(
        "query",
        "--metrics",
        "bookings",
        "--group-by",
        "listing__host",
        "--warehouse",
        str(warehouse),
        env={"COLUMNS": "200"},
    ).stdout
    rows = [line.replace("│", " ").split() for line in out.splitlines()]
    got = [(int(r[0]), int(r[1])) for r in rows if len(r) == 2 and r[0].isdigit()]
    assert got == expected["host"]


def test_sql_endpoint(marketplace):
    _, server, expected = marketplace
    dsn = f"host=127.0.0.1 port={server.sql_port} dbname=northstar user=analyst connect_timeout=10"
    with psycopg.connect(dsn, autocommit=True) as con:
        rows = con.execute(
            "SELECT listing__host, bookings FROM semantic.metrics GROUP BY listing__host ORDER BY listing__host"
        ).fetchall()
        assert [(int(k), int(v)) for k, v in rows] == expected["host"]
        rows = con.execute(
            "SELECT listing__host__company, booking_value FROM semantic.metrics "
            "WHERE listing__host IN (1, 2, 3, 4, 5) GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [(int(k), float(v)) for k, v in rows] == [(k, float(v)) for k, v in expected["company"]]
