"""The real dbt Semantic Layer clients against a running `northstar serve`: the official SDK
(`dbt-sl-sdk`, GraphQL and ADBC, sync and asyncio), the ADBC Flight SQL DB-API driver and a raw
`pyarrow.flight` client. Every answer is compared with `POST /v1/query` for the same query."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, free_port, northstar

FLIGHT_PORT = free_port()
# The SDK reads its endpoints from these when it is imported.
os.environ["DBT_SL_GRAPHQL_URL_FORMAT"] = "http://{server_host}/api/graphql"
os.environ["DBT_SL_ADBC_URL_FORMAT"] = f"grpc://127.0.0.1:{FLIGHT_PORT}"

import adbc_driver_flightsql.dbapi as flightsql  # noqa: E402
import adbc_driver_manager  # noqa: E402
import dbtsl.env  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.flight as flight  # noqa: E402
from dbtsl import OrderByGroupBy, OrderByMetric, SyncSemanticLayerClient  # noqa: E402
from dbtsl.api.graphql.client.sync import SyncGraphQLClient  # noqa: E402
from dbtsl.api.shared.query_params import GroupByParam, GroupByType  # noqa: E402
from dbtsl.asyncio import AsyncSemanticLayerClient  # noqa: E402
from dbtsl.error import AuthError, QueryFailedError  # noqa: E402

from api.flight import messages  # noqa: E402


def create_token(data_dir: Path, name: str, *options: str) -> str:
    return (
        northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
        .stdout.strip()
        .splitlines()[-1]
    )


@pytest.fixture(scope="module")
def served(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("dbt_sl")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    tokens = {
        "reader": create_token(data_dir, "reader", "--scope", "metrics:read"),
        "experimenter": create_token(data_dir, "experimenter", "--scope", "experiments:read"),
        "regional": create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", "country=DE"),
    }
    server = Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)}, flight_port=FLIGHT_PORT)
    try:
        server.wait_ready()
        yield {"server": server, "host": f"127.0.0.1:{server.port}", "tokens": tokens, "data_dir": data_dir}
    finally:
        server.stop()


def sdk(served, token: str = "reader") -> SyncSemanticLayerClient:
    return SyncSemanticLayerClient(environment_id=1, auth_token=served["tokens"].get(token, token), host=served["host"])


def gql(served, token: str = "reader") -> SyncGraphQLClient:
    return SyncGraphQLClient(
        served["host"], 1, served["tokens"].get(token, token), url_format=dbtsl.env.GRAPHQL_URL_FORMAT, lazy=False
    )


def v1(served, body: dict, token: str = "reader") -> tuple[list[str], list[list]]:
    response = httpx.post(
        f"http://{served['host']}/v1/query",
        json=body,
        timeout=60,
        headers={"Authorization": f"Bearer {served['tokens'][token]}"},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    return [c["name"] for c in data["columns"]], data["rows"]


def plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def rows_of(table) -> tuple[list[str], list[list]]:
    return table.column_names, [[plain(v) for v in row.values()] for row in table.to_pylist()]


def assert_same(got, expected, ordered: bool) -> None:
    (got_names, got_rows), (names, rows) = got, expected
    assert got_names == names
    if not ordered:
        got_rows, rows = sorted(got_rows, key=repr), sorted(rows, key=repr)
    assert len(got_rows) == len(rows)
    for a, b in zip(got_rows, rows):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert x == (pytest.approx(y, rel=1e-9, abs=1e-9) if isinstance(y, float) else y), (a, b)


def test_every_metric_by_month_is_the_same_through_graphql_and_flight(served):
    names = [
        m["name"]
        for m in httpx.get(
            f"http://{served['host']}/v1/metrics",
            timeout=60,
            headers={"Authorization": f"Bearer {served['tokens']['reader']}"},
        ).json()["metrics"]
    ]
    client, graphql = sdk(served), gql(served)
    with client.session(), graphql.session():
        assert sorted(m.name for m in client.metrics()) == sorted(names)
        for name in names:
            expected = v1(served, {"metrics": [name], "group_by": ["metric_time__month"]})
            assert_same(rows_of(client.query(metrics=[name], group_by=["metric_time__month"])), expected, False)
            assert_same(rows_of(graphql.query(metrics=[name], group_by=["metric_time__month"])), expected, False)


CASES = [
    # (SDK parameters, the same query for /v1/query, ordered)
    (
        {"metrics": ["active_users", "revenue"], "group_by": ["metric_time__week", "user__country"]},
        {"metrics": ["active_users", "revenue"], "group_by": ["metric_time__week", "user__country"]},
        False,
    ),
    (
        {
            "metrics": ["revenue"],
            "group_by": [GroupByParam("metric_time", GroupByType.TIME_DIMENSION, "QUARTER")],
            "order_by": [OrderByGroupBy("metric_time", "QUARTER", True)],
        },
        {"metrics": ["revenue"], "group_by": ["metric_time__quarter"], "order_by": ["-metric_time__quarter"]},
        True,
    ),
    (
        {
            "metrics": ["crash_free_user_rate"],
            "group_by": ["metric_time__day", "user__platform"],
            "where": [
                "{{ Dimension('user__country') }} = 'DE'",
                "{{ TimeDimension('metric_time', 'DAY') }} >= '2026-02-01'",
            ],
            "order_by": [
                OrderByMetric("crash_free_user_rate", True),
                OrderByGroupBy("metric_time__day", None),
                OrderByGroupBy("user__platform", None),
            ],
            "limit": 7,
        },
        {
            "metrics": ["crash_free_user_rate"],
            "group_by": ["metric_time__day", "user__platform"],
            "where": [
                "{{ Dimension('user__country') }} = 'DE'",
                "{{ TimeDimension('metric_time', 'DAY') }} >= '2026-02-01'",
            ],
            "order_by": ["-crash_free_user_rate", "metric_time__day", "user__platform"],
            "limit": 7,
        },
        True,
    ),
    (
        {"metrics": ["arpu", "paying_users"], "group_by": ["user__plan"], "order_by": ["-arpu"], "limit": 3},
        {"metrics": ["arpu", "paying_users"], "group_by": ["user__plan"], "order_by": ["-arpu"], "limit": 3},
        True,
    ),
    (
        {"saved_query": "weekly_quality_us", "limit": 4, "order_by": [OrderByGroupBy("metric_time", "WEEK")]},
        {"saved_query": "weekly_quality_us", "limit": 4, "order_by": ["metric_time__week"]},
        True,
    ),
]


@pytest.mark.parametrize("params,body,ordered", CASES)
def test_slices_filters_ordering_and_limits_match_v1_query(served, params, body, ordered):
    expected = v1(served, body)
    client, graphql = sdk(served), gql(served)
    with client.session(), graphql.session():
        assert_same(rows_of(client.query(**params)), expected, ordered)
        assert_same(rows_of(graphql.query(**params)), expected, ordered)


def test_graphql_pages_a_large_answer_and_the_sdk_joins_the_pages(served):
    body = {"metrics": ["active_users"], "group_by": ["metric_time__day", "user__country"]}
    expected = v1(served, body)
    assert len(expected[1]) > 1024  # more than one page
    graphql = gql(served)
    with graphql.session():
        query_id = graphql.create_query(metrics=body["metrics"], group_by=body["group_by"])
        first = graphql._poll_until_complete(graphql.PROTOCOL.get_query_result, {"query_id": query_id, "page_num": 1})
        assert first.total_pages == -(-len(expected[1]) // 1024) and first.result_table.num_rows == 1024
        assert_same(rows_of(graphql.query(**body)), expected, False)


def test_async_clients_answer_the_same(served):
    async def run():
        client = AsyncSemanticLayerClient(environment_id=1, auth_token=served["tokens"]["reader"], host=served["host"])
        async with client.session():
            metrics = await client.metrics()
            table = await client.query(metrics=["sessions"], group_by=["metric_time__month"])
            return metrics, table

    metrics, table = asyncio.run(run())
    assert "sessions" in {m.name for m in metrics}
    assert_same(rows_of(table), v1(served, {"metrics": ["sessions"], "group_by": ["metric_time__month"]}), False)


def test_definitions_through_the_sdk(served):
    client = sdk(served)
    with client.session():
        dimensions = {d.name: d for d in client.dimensions(metrics=["active_users"])}
        assert dimensions["user__country"].type.value == "CATEGORICAL"
        assert dimensions["metric_time"].type.value == "TIME"
        assert "MONTH" in dimensions["metric_time"].queryable_time_granularities
        assert {e.name for e in client.entities(metrics=["active_users"])} >= {"user", "event"}
        assert [(m.name, m.agg.value) for m in client.measures(metrics=["active_users"])] == [
            ("active_users", "COUNT_DISTINCT")
        ]
        saved = {q.name: q for q in client.saved_queries()}
        assert (
            saved["weekly_quality_us"].query_params.where.where_sql_template
            == "{{ Dimension('user__country') }} = 'US'"
        )
        values = client.dimension_values(metrics=["active_users"], group_by="user__country").column(0).to_pylist()
        expected = sorted(
            {row[0] for row in v1(served, {"metrics": ["active_users"], "group_by": ["user__country"]})[1]},
            key=lambda v: (v is None, v),
        )
        assert values == expected
        sql = client.compile_sql(
            metrics=["active_users"], group_by=["metric_time__month"], where=["{{ Dimension('user__country') }} = 'DE'"]
        )
        assert "'DE'" in sql and "fct_events" in sql


def test_errors_map_to_the_sdk_errors(served):
    client, graphql = sdk(served), gql(served)
    with client.session(), graphql.session():
        for api in (client, graphql):
            with pytest.raises(QueryFailedError, match="unknown metric 'activ_users'.*'active_users'"):
                api.query(metrics=["activ_users"])
        with pytest.raises(QueryFailedError, match="user__countr.*user__country"):
            client.query(metrics=["active_users"], group_by=["user__countr"])
    for token in ("not-a-token", "experimenter"):
        client, graphql = sdk(served, token), gql(served, token)
        with graphql.session():
            with pytest.raises(AuthError):
                graphql.metrics()
        with client.session():
            with pytest.raises(AuthError):
                client.query(metrics=["active_users"])


def test_a_row_policy_applies_to_both_apis(served):
    body = {"metrics": ["active_users"], "group_by": ["metric_time__month"]}
    expected = v1(served, body, token="regional")
    assert expected != v1(served, body)
    client, graphql = sdk(served, "regional"), gql(served, "regional")
    with client.session(), graphql.session():
        assert_same(rows_of(client.query(**body)), expected, False)
        assert_same(rows_of(graphql.query(**body)), expected, False)


def connect(served, token: str = "reader"):
    return flightsql.connect(
        f"grpc://127.0.0.1:{FLIGHT_PORT}",
        db_kwargs={"adbc.flight.sql.authorization_header": f"Bearer {served['tokens'][token]}"},
    )


def test_jdbc_style_outer_sql_and_metadata_through_adbc(served):
    with connect(served) as conn, conn.cursor() as cur:
        cur.execute("select name, type from {{ semantic_layer.metrics() }} where name like 'active%' order by 1")
        assert cur.fetchall() == [("active_users", "SIMPLE"), ("active_users_7d", "CUMULATIVE")]
        cur.execute(
            "select * from {{ semantic_layer.query(metrics=['revenue'], group_by=[TimeDimension('metric_time', "
            "'MONTH')]) }} order by 1"
        )
        expected = v1(
            served, {"metrics": ["revenue"], "group_by": ["metric_time__month"], "order_by": ["metric_time__month"]}
        )
        assert_same(rows_of(cur.fetch_arrow_table()), expected, True)
        # explain gives the SQL that answers: revenue by month is re-aggregated from the sample's
        # daily rollup; a cumulative metric is never read from a rollup.
        cur.execute("{{ semantic_layer.query(metrics=['revenue'], group_by=['metric_time__month'], explain=True) }}")
        assert "daily_core_by_platform" in cur.fetchone()[0]
        cur.execute(
            "{{ semantic_layer.query(metrics=['active_users_7d'], group_by=['metric_time__month'], explain=True) }}"
        )
        assert "fct_events" in cur.fetchone()[0]
    with connect(served) as conn:
        assert conn.adbc_get_table_types() == ["TABLE"]
        objects = conn.adbc_get_objects().read_all().to_pylist()
        assert objects[0]["catalog_name"] == "northstar"
        assert {t["table_name"] for t in objects[0]["catalog_db_schemas"][0]["db_schema_tables"]} == {
            "metrics",
            "saved_queries",
        }
        assert conn.adbc_get_info()["vendor_name"] == "northstar"


def test_outer_sql_may_read_nothing_but_the_answer(served):
    with connect(served) as conn, conn.cursor() as cur:
        with pytest.raises(Exception, match="may read only the call's answer"):
            cur.execute("select * from read_csv('/etc/passwd'), {{ semantic_layer.metrics() }}")


def test_raw_pyarrow_flight_client(served):
    client = flight.FlightClient(f"grpc://127.0.0.1:{FLIGHT_PORT}")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {served['tokens']['reader']}".encode())])
    command = messages.pack(
        messages.CommandStatementQuery(
            query="{{ semantic_layer.query(metrics=['sessions'], group_by=['metric_time__month']) }}"
        )
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(command), options)
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert_same(rows_of(table), v1(served, {"metrics": ["sessions"], "group_by": ["metric_time__month"]}), False)
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(flight.FlightDescriptor.for_command(command))


def test_a_taken_flight_port_is_one_line_and_exit_status_2(built_warehouse, served):
    proc = northstar(
        "serve",
        "--warehouse",
        str(built_warehouse.warehouse),
        "--port",
        str(free_port()),
        "--sql-port",
        "0",
        "--flight-port",
        str(FLIGHT_PORT),
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    output = proc.stdout + proc.stderr
    assert f"port {FLIGHT_PORT}" in output and "Flight SQL" in output and len(output.strip().splitlines()) == 1


def audit_lines(served) -> list[dict]:
    return [json.loads(line) for line in (served["data_dir"] / "audit.jsonl").read_text().splitlines()]


def clean(text: str) -> bool:
    """No traceback, no source file in what a client is told."""
    return "Traceback" not in text and ".py" not in text and "site-packages" not in text


def test_flight_errors_are_the_v1_query_message_only(served):
    response = httpx.post(
        f"http://{served['host']}/v1/query",
        json={"metrics": ["activ_users"]},
        timeout=60,
        headers={"Authorization": f"Bearer {served['tokens']['reader']}"},
    )
    message = response.json()["error"]["message"]
    assert response.status_code == 422 and "'active_users'" in message
    text = "{{ semantic_layer.query(metrics=['activ_users'], group_by=['metric_time__month']) }}"
    raw = flight.FlightClient(f"grpc://127.0.0.1:{FLIGHT_PORT}")
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {served['tokens']['reader']}".encode())])
    command = flight.FlightDescriptor.for_command(messages.pack(messages.CommandStatementQuery(query=text)))
    with pytest.raises(pa.ArrowInvalid) as caught:  # INVALID_ARGUMENT
        raw.get_flight_info(command, options)
    assert message in str(caught.value) and clean(str(caught.value))
    for token, refusal in (
        ("not-a-token", flight.FlightUnauthenticatedError),
        ("experimenter", flight.FlightUnauthorizedError),
    ):
        headers = [(b"authorization", f"Bearer {served['tokens'].get(token, token)}".encode())]
        with pytest.raises(refusal) as caught:
            raw.get_flight_info(command, flight.FlightCallOptions(headers=headers))
        assert clean(str(caught.value))
    with connect(served) as conn, conn.cursor() as cur:
        for statement in (text, "{{ semantic_layer.query(metrics=['revenue'], group_by=[Foo('x')]) }}"):
            with pytest.raises(adbc_driver_manager.ProgrammingError) as caught:
                cur.execute(statement)
            assert caught.value.status_code == adbc_driver_manager.AdbcStatusCode.INVALID_ARGUMENT
            assert clean(str(caught.value)) and all(clean(repr(d)) for d in caught.value.details or [])
            assert message in str(caught.value) if statement == text else "Foo" in str(caught.value)
    client = sdk(served)
    with client.session():
        with pytest.raises(QueryFailedError) as failed:
            client.query(metrics=["activ_users"], group_by=["metric_time__month"])
    assert message in str(failed.value) and clean(str(failed.value))


def test_cancel_stops_the_warehouse_statement_and_frees_the_worker(served):
    # Two cumulative metrics per day, event, country and platform: seconds of warehouse work for
    # five rows (about 4 s on an idle 2-core machine with the sample). Each run filters on a
    # value of its own, so no answer comes from the cache.
    slow = (
        "{{ semantic_layer.query(metrics=['active_users_7d', 'revenue_mtd'], "
        "group_by=['metric_time__day', 'event', 'user__country', 'platform'], limit=5, "
        "where=[\"{{ Dimension('user__country') }} <> 'cancel-%s'\"]) }}"
    )
    with connect(served) as conn, conn.cursor() as cur:
        # Cancel from another thread, as a client's stop button does; again every 0.2 s in case
        # the first cancel arrives before the statement reaches the server (a busy machine).
        done = threading.Event()

        def cancel_until_done() -> None:
            done.wait(1.0)
            while not done.is_set():
                cur.adbc_cancel()
                done.wait(0.2)

        canceller = threading.Thread(target=cancel_until_done)
        canceller.start()
        started = time.monotonic()
        try:
            with pytest.raises(adbc_driver_manager.OperationalError) as caught:
                cur.execute(slow % "adbc")
        finally:
            done.set()
            canceller.join()
        # Bounds for a loaded 2-core machine: the status and the audit's `query_cancelled` below
        # are what show the statement was interrupted rather than run to its end.
        assert time.monotonic() - started < 10.0
        assert caught.value.status_code == adbc_driver_manager.AdbcStatusCode.CANCELLED
        started = time.monotonic()
        cur.execute("{{ semantic_layer.query(metrics=['revenue'], group_by=['metric_time__year']) }}")
        assert cur.fetchall() and time.monotonic() - started < 10.0
    raw = flight.FlightClient(f"grpc://127.0.0.1:{FLIGHT_PORT}")
    headers = [(b"authorization", f"Bearer {served['tokens']['reader']}".encode())]
    command = messages.pack(messages.CommandStatementQuery(query=slow % "deadline"))
    with pytest.raises(flight.FlightTimedOutError):  # the client gives up after 1 s: its call is cancelled
        raw.get_flight_info(
            flight.FlightDescriptor.for_command(command), flight.FlightCallOptions(headers=headers, timeout=1.0)
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stopped = [
            line
            for line in audit_lines(served)
            if line.get("interface") == "flight" and "cancel-" in json.dumps(line.get("body"))
        ]
        if len(stopped) == 2:
            break
        time.sleep(0.1)
    # The warehouse statements were interrupted (not run to their end), within a second or two.
    assert [(line["outcome"], line["code"]) for line in stopped] == [("error", "query_cancelled")] * 2
    assert all(line["ms"] < 10_000 for line in stopped)


def test_metadata_calls_are_audited(served):
    with connect(served) as conn:
        conn.adbc_get_objects().read_all()
        conn.adbc_get_info()
        with conn.cursor() as cur:
            cur.execute("{{ semantic_layer.dimensions(metrics=['revenue']) }}")
            cur.fetchall()
    graphql = gql(served)
    with graphql.session():
        graphql.metrics()
        graphql.dimensions(metrics=["revenue"])
    lines = [line for line in audit_lines(served) if line.get("caller") == "reader"]
    reader_id = next(line["token_id"] for line in lines if line["token_id"])
    flight_metadata = [line for line in lines if line["interface"] == "flight" and line["kind"] == "metadata"]
    assert {line["body"].get("command") for line in flight_metadata} >= {
        "CommandGetCatalogs",
        "CommandGetDbSchemas",
        "CommandGetTables",
        "CommandGetSqlInfo",
    }
    assert {"call": "dimensions", "metrics": ["revenue"]} in [line["body"] for line in flight_metadata]
    graphql_fields = [line["body"]["fields"] for line in lines if line.get("path") == "/api/graphql"]
    assert ["metrics"] in graphql_fields and ["dimensions"] in graphql_fields
    for line in flight_metadata + [line for line in lines if line.get("path") == "/api/graphql"]:
        assert line["token_id"] == reader_id and isinstance(line["ms"], float)
        assert line.get("outcome") == "ok" or line.get("status") == 200


def test_metric_time_without_a_grain_is_metric_time__day(served):
    expected = v1(served, {"metrics": ["revenue", "active_users"], "group_by": ["metric_time__day"]})
    client, graphql = sdk(served), gql(served)
    with client.session(), graphql.session():
        assert_same(
            rows_of(client.query(metrics=["revenue", "active_users"], group_by=["metric_time"])), expected, False
        )
        assert_same(
            rows_of(graphql.query(metrics=["revenue", "active_users"], group_by=["metric_time"])), expected, False
        )
        ordered = graphql.query(metrics=["revenue"], group_by=["metric_time"], order_by=["-metric_time"], limit=2)
    assert ordered.column_names == ["metric_time__day", "revenue"]
    days = v1(
        served,
        {"metrics": ["revenue"], "group_by": ["metric_time__day"], "order_by": ["-metric_time__day"], "limit": 2},
    )
    assert_same(rows_of(ordered), days, True)
