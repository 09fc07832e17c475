"""Acceptance tests: every governed metric over HTTP equals an independent hand-written query.

Each test sends a metric query to the running service (``POST /v1/query`` unless stated) and
compares the answer with ``tests/oracle.py``, which computes the same query with plain DuckDB SQL
straight over the landing files the served warehouse was built from. Expected numbers come only
from the oracle (or, for the edge cases, from a raw count written out in the test).

Rows are matched by their group-by values (order-independent unless the query orders them);
numbers are compared with a relative tolerance of 1e-9, and null must be answered with null.

The ``api`` fixture comes from ``tests/conftest.py``: ``api.client`` is an ``httpx.Client`` bound
to the service's base URL and ``api.landing_dir`` is the landing directory behind it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.oracle import GRAINS, METRICS, Oracle

REL_TOL = 1e-9
ABS_TOL = 1e-12

Key = tuple[Any, ...]
Rows = dict[Key, tuple[Any, ...]]

# ---------------------------------------------------------------------------------------------
# Fixtures and helpers
# ---------------------------------------------------------------------------------------------

_ORACLES: dict[Path, Oracle] = {}


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def api(request: pytest.FixtureRequest, api: Any) -> Any:
    """Every test here runs against the DuckDB service (conftest's `api`) and again against
    the service built into and answering from PostgreSQL (skipped unless
    NORTHSTAR_TEST_POSTGRES_DSN names a server), held to the same independent oracle."""
    return api if request.param == "duckdb" else request.getfixturevalue("postgres_api")


@pytest.fixture
def oracle(api: Any) -> Oracle:
    """The oracle over the landing data the service was built from (one per directory)."""
    path = Path(api.landing_dir).resolve()
    if path not in _ORACLES:
        _ORACLES[path] = Oracle(path)
    return _ORACLES[path]


def query_body(
    metrics: Sequence[str],
    group_by: Sequence[str],
    where: Sequence[Mapping[str, Any]] = (),
    start: str | None = None,
    end: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The JSON body of a metric query, leaving out what is not set."""
    body: dict[str, Any] = {"metrics": list(metrics), "group_by": list(group_by)}
    if where:
        body["where"] = [dict(f) for f in where]
    if start is not None:
        body["start"] = start
    if end is not None:
        body["end"] = end
    body.update(extra)
    return body


def parse_json_result(
    data: Mapping[str, Any], group_by: Sequence[str], metrics: Sequence[str]
) -> list[tuple[Key, tuple[Any, ...]]]:
    """``[(group-by values, metric values), ...]`` in response order, columns found by name."""
    assert isinstance(data.get("columns"), list), data
    assert isinstance(data.get("rows"), list), data
    names = [c["name"] for c in data["columns"]]
    for column in data["columns"]:
        assert {"name", "type"} <= set(column), column
    missing = [n for n in [*group_by, *metrics] if n not in names]
    assert not missing, f"columns {missing} missing from response columns {names}"
    index = {name: i for i, name in enumerate(names)}
    out = []
    for row in data["rows"]:
        assert len(row) == len(names), (row, names)
        out.append((tuple(row[index[g]] for g in group_by), tuple(row[index[m]] for m in metrics)))
    return out


def to_rows(pairs: Sequence[tuple[Key, tuple[Any, ...]]]) -> Rows:
    """Key the result rows by their group-by values, refusing duplicate keys."""
    rows: Rows = {}
    for key, values in pairs:
        assert key not in rows, f"group-by key {key} appears twice in the response"
        rows[key] = values
    return rows


def post_query(api: Any, body: Mapping[str, Any]) -> list[tuple[Key, tuple[Any, ...]]]:
    """POST the query; assert success; rows in response order."""
    response = api.client.post("/v1/query", json=body)
    assert response.status_code == 200, f"{response.status_code}: {response.text[:2000]}"
    return parse_json_result(response.json(), body["group_by"], body["metrics"])


def oracle_rows(oracle: Oracle, body: Mapping[str, Any]) -> Rows:
    """The oracle's answer to the same query, keyed like ``to_rows``."""
    n = len(body["group_by"])
    result = oracle.query(
        body["metrics"],
        body["group_by"],
        where=body.get("where", ()),
        start=body.get("start"),
        end=body.get("end"),
    )
    return {row[:n]: row[n:] for row in result}


def same_value(expected: Any, got: Any) -> bool:
    """Null matches only null; numbers match within the tolerance."""
    if expected is None or got is None:
        return expected is None and got is None
    if isinstance(got, bool) or not isinstance(got, (int, float, Decimal)):
        return False
    return math.isclose(float(got), float(expected), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def assert_rows_equal(expected: Rows, got: Rows, metrics: Sequence[str], context: str = "") -> None:
    """Same keys, and per key the same metric values; a readable diff when not."""
    missing = sorted(set(expected) - set(got), key=_key_order)
    extra = sorted(set(got) - set(expected), key=_key_order)
    wrong = []
    for key in sorted(set(expected) & set(got), key=_key_order):
        for name, e, g in zip(metrics, expected[key], got[key], strict=True):
            if not same_value(e, g):
                wrong.append(f"  {key} {name}: expected {e!r}, got {g!r}")
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} expected rows missing, e.g. " + ", ".join(f"{k} -> {expected[k]}" for k in missing[:5])
        )
    if extra:
        problems.append(f"{len(extra)} unexpected rows, e.g. " + ", ".join(f"{k} -> {got[k]}" for k in extra[:5]))
    if wrong:
        problems.append(f"{len(wrong)} wrong values:\n" + "\n".join(wrong[:10]))
    assert not problems, f"{context}\n" + "\n".join(problems)


def _key_order(key: Key) -> tuple[Any, ...]:
    return tuple((v is not None, str(v)) for v in key)


def check(api: Any, oracle: Oracle, *, allow_empty: bool = False, **query: Any) -> tuple[Rows, Rows]:
    """Run one query through HTTP and the oracle, assert they agree, return both. An empty
    answer on both sides agrees vacuously, so it is refused unless the case asks for one."""
    body = query_body(**query)
    expected = oracle_rows(oracle, body)
    assert expected or allow_empty, f"query {body}: the oracle answers no rows, so the case checks nothing"
    got = to_rows(post_query(api, body))
    assert_rows_equal(expected, got, body["metrics"], context=f"query {body}")
    return expected, got


def scalar_list(oracle: Oracle, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """First column of an ad-hoc query over the landing views."""
    return [row[0] for row in oracle.sql(sql, params)]


def event_weeks(oracle: Oracle) -> list[str]:
    """The ISO weeks (Mondays) that hold events, in order."""
    return scalar_list(
        oracle,
        "select distinct strftime(date_trunc('week', metric_time), '%Y-%m-%d') as w from src_events order by w",
    )


def most_common(oracle: Oracle, source: str, column: str, n: int = 1) -> list[Any]:
    """The ``n`` most frequent non-null values of a source column."""
    return scalar_list(
        oracle,
        f"select {column} from {source} where {column} is not null"
        f" group by {column} order by count(*) desc, {column} limit {n}",
    )


def assert_error_response(response: Any) -> dict[str, Any]:
    """A bad request: 4xx with ``{"error": {"code": str, "message": str}}``."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), body
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], body
    assert isinstance(error.get("message"), str) and error["message"], body
    return error


# ---------------------------------------------------------------------------------------------
# Every metric at every grain, and by each of its slices
# ---------------------------------------------------------------------------------------------

METRIC_NAMES = list(METRICS)
METRIC_SLICES = [(m, s) for m in METRICS for s in METRICS[m].slices]


def test_pack_is_complete() -> None:
    """The oracle covers the 19 metrics of the pack, and can group each by its slices."""
    assert len(METRICS) == 19
    for metric in METRICS.values():
        assert set(metric.slices) <= set(metric.dimensions), metric.name


SAMPLE_DIR = Path(__file__).resolve().parents[2] / "seeds" / "sample"


def test_oracle_agrees_with_plain_python() -> None:
    """The reference checked a second way: a few metrics recomputed row by row in Python.

    Runs on the committed sample without the service; the rows come from the oracle's typed
    landing views, the arithmetic from here.
    """
    if not SAMPLE_DIR.is_dir():
        pytest.skip("no committed sample at seeds/sample")
    oracle = _ORACLES.setdefault(SAMPLE_DIR, Oracle(SAMPLE_DIR))

    def table(name: str) -> list[dict[str, Any]]:
        cursor = oracle.con.execute(f"select * from {name}")
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    accounts = {a["account_id"]: a for a in table("accounts")}
    users = {u["user_id"]: u for u in table("users")}
    internal = {uid for uid, u in users.items() if u["is_internal"]}
    events = list({e["event_id"]: e for e in table("events")}.values())
    events = [e for e in events if e["user_id"] not in internal]

    def month(ts: dt.datetime) -> str:
        return ts.strftime("%Y-%m-01")

    def plan(user_id: str) -> Any:
        user = users.get(user_id)
        return accounts[user["account_id"]]["plan"] if user else None

    # events, active_users, revenue, arpu by month and plan
    groups: dict[Key, list[dict[str, Any]]] = {}
    for e in events:
        groups.setdefault((month(e["event_ts"]), plan(e["user_id"])), []).append(e)
    expected: Rows = {}
    for key, rows in groups.items():
        active = len({e["user_id"] for e in rows})
        revenue = sum(e["revenue_usd"] or 0 for e in rows)
        expected[key] = (len(rows), active, revenue, revenue / active)
    metrics = ["events", "active_users", "revenue", "arpu"]
    got = oracle_rows(oracle, query_body(metrics, ["metric_time__month", "plan"]))
    assert_rows_equal(expected, got, metrics, context="oracle vs Python, event metrics")

    # crash_free_user_rate by week and platform (events side and errors side)
    def week(ts: dt.datetime) -> str:
        return (ts.date() - dt.timedelta(days=ts.weekday())).isoformat()

    active_users: dict[Key, set[str]] = {}
    crashed: dict[Key, set[str]] = {}
    for e in events:
        active_users.setdefault((week(e["event_ts"]), e["platform"]), set()).add(e["user_id"])
    for r in table("errors"):
        if r["user_id"] in internal:
            continue
        crashed.setdefault((week(r["occurred_at"]), r["platform"]), set())
        if r["severity"] == "crash" and r["user_id"] is not None:
            crashed[(week(r["occurred_at"]), r["platform"])].add(r["user_id"])
    expected = {}
    for key in set(active_users) | set(crashed):
        if key in active_users:
            expected[key] = (1 - len(crashed.get(key, ())) / len(active_users[key]),)
        else:
            expected[key] = (None,)
    by_week = query_body(["crash_free_user_rate"], ["metric_time__week", "platform"])
    got = oracle_rows(oracle, by_week)
    assert_rows_equal(expected, got, ["crash_free_user_rate"], context="oracle vs Python, crash")

    # d7_retention by signup month
    first_day_events: dict[str, set[int]] = {}
    for e in events:
        signup = users[e["user_id"]]["signup_at"].date()
        first_day_events.setdefault(e["user_id"], set()).add((e["event_ts"].date() - signup).days)
    cohorts: dict[Key, list[bool]] = {}
    for uid, u in users.items():
        if uid not in internal:
            days = first_day_events.get(uid, set())
            cohorts.setdefault((month(u["signup_at"]),), []).append(any(1 <= d <= 7 for d in days))
    # A cohort month is known only when every signup day of it (from the first to the last
    # signup day) has its day 1..7 between the first and the last day with events.
    event_days = [e["event_ts"].date() for e in events]
    signup_days = [u["signup_at"].date() for uid, u in users.items() if uid not in internal]

    def known(key: Key) -> bool:
        first = max(dt.date.fromisoformat(key[0]), min(signup_days))
        following = dt.date.fromisoformat(key[0]).replace(day=28) + dt.timedelta(days=4)
        last = min(following.replace(day=1) - dt.timedelta(days=1), max(signup_days))
        return first + dt.timedelta(days=1) >= min(event_days) and last + dt.timedelta(days=7) <= max(event_days)

    expected = {key: (sum(flags) / len(flags) if known(key) else None,) for key, flags in cohorts.items()}
    assert any(v[0] is not None for v in expected.values()) and any(v[0] is None for v in expected.values())
    got = oracle_rows(oracle, query_body(["d7_retention"], ["metric_time__month"]))
    assert_rows_equal(expected, got, ["d7_retention"], context="oracle vs Python, d7 retention")


@pytest.mark.parametrize("grain", GRAINS)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_metric_by_grain(api: Any, oracle: Oracle, metric: str, grain: str) -> None:
    expected, _ = check(api, oracle, metrics=[metric], group_by=[f"metric_time__{grain}"])
    assert expected, f"no {metric} rows at all in the landing data"


@pytest.mark.parametrize(("metric", "slice_"), METRIC_SLICES, ids=[f"{m}-{s}" for m, s in METRIC_SLICES])
def test_metric_by_slice(api: Any, oracle: Oracle, metric: str, slice_: str) -> None:
    expected, _ = check(api, oracle, metrics=[metric], group_by=["metric_time__week", slice_])
    assert expected, f"no {metric} rows at all in the landing data"


# ---------------------------------------------------------------------------------------------
# Several metrics in one query
# ---------------------------------------------------------------------------------------------

MULTI_METRIC_QUERIES = {
    "active_users+crash_free_user_rate/week+platform": (
        ["active_users", "crash_free_user_rate"],
        ["metric_time__week", "platform"],
    ),
    "event_metrics/month+country": (
        ["events", "active_users", "sessions", "revenue", "paying_users", "arpu"],
        ["metric_time__month", "country"],
    ),
    "feature_adoption/week+plan": (
        ["feature_users", "active_users", "feature_adoption_rate"],
        ["metric_time__week", "plan"],
    ),
    "stability/week+platform+app_version": (
        ["crashes", "crashed_users", "crash_free_user_rate", "errors_per_1k_events", "events"],
        ["metric_time__week", "platform", "app_version"],
    ),
    "events+crashes/day": (["events", "crashes"], ["metric_time__day"]),
    "incidents+mttr/month+severity": (
        ["incidents", "mttr_hours"],
        ["metric_time__month", "severity"],
    ),
    "nps+csat/month+channel+plan": (["nps", "csat"], ["metric_time__month", "channel", "plan"]),
    "new_users+d7/week+country": (["new_users", "d7_retention"], ["metric_time__week", "country"]),
    "tickets+new_users/quarter+plan+region": (
        ["tickets", "new_users"],
        ["metric_time__quarter", "plan", "region"],
    ),
    "whole_pack/month": (METRIC_NAMES, ["metric_time__month"]),
}


@pytest.mark.parametrize(("metrics", "group_by"), list(MULTI_METRIC_QUERIES.values()), ids=list(MULTI_METRIC_QUERIES))
def test_multi_metric_query(api: Any, oracle: Oracle, metrics: list[str], group_by: list[str]) -> None:
    expected, _ = check(api, oracle, metrics=metrics, group_by=group_by)
    assert expected


def test_spec_example_query(api: Any, oracle: Oracle) -> None:
    """The query of spec/http-api.md, with the two most common countries of the data."""
    countries = most_common(oracle, "src_events", "country", n=2)
    weeks = event_weeks(oracle)
    check(
        api,
        oracle,
        metrics=["active_users", "crash_free_user_rate"],
        group_by=["metric_time__week", "platform"],
        where=[{"field": "country", "op": "in", "values": countries}],
        start=weeks[0],
        end=weeks[min(len(weeks) - 1, 13)],
    )


# ---------------------------------------------------------------------------------------------
# Structured filters, one test per operator
# ---------------------------------------------------------------------------------------------

FILTER_OPS = ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null"]


def filter_case(oracle: Oracle, op: str) -> dict[str, Any]:
    """A query exercising ``op``, with values taken from the landing data."""
    weeks = event_weeks(oracle)
    mid_week = weeks[len(weeks) // 2]
    platforms = most_common(oracle, "src_events", "platform", n=3)
    if op == "=":
        return dict(
            metrics=["events", "active_users"],
            group_by=["metric_time__week", "app_version"],
            where=[{"field": "platform", "op": "=", "value": platforms[0]}],
        )
    if op == "!=":
        return dict(
            metrics=["active_users", "sessions"],
            group_by=["metric_time__week", "platform"],
            where=[{"field": "platform", "op": "!=", "value": platforms[0]}],
        )
    if op == "<":
        return dict(
            metrics=["events", "crashes", "crash_free_user_rate"],
            group_by=["metric_time__day"],
            where=[{"field": "metric_time__week", "op": "<", "value": mid_week}],
        )
    if op == "<=":
        versions = scalar_list(
            oracle,
            "select distinct app_version from src_events where app_version is not null order by 1",
        )
        return dict(
            metrics=["events", "errors_per_1k_events"],
            group_by=["metric_time__week", "platform", "app_version"],
            where=[{"field": "app_version", "op": "<=", "value": versions[len(versions) // 2]}],
        )
    if op == ">":
        countries = scalar_list(oracle, "select distinct country from src_events where country is not null order by 1")
        return dict(
            metrics=["revenue", "arpu", "paying_users"],
            group_by=["metric_time__month", "country"],
            where=[{"field": "country", "op": ">", "value": countries[len(countries) // 2]}],
        )
    if op == ">=":
        return dict(
            metrics=["crash_free_user_rate"],
            group_by=["metric_time__week", "platform"],
            where=[{"field": "metric_time__week", "op": ">=", "value": mid_week}],
        )
    if op == "in":
        return dict(
            metrics=["active_users", "crash_free_user_rate"],
            group_by=["metric_time__week", "platform"],
            where=[{"field": "platform", "op": "in", "values": platforms[:2]}],
        )
    if op == "not_in":
        plans = most_common(oracle, "src_tickets", "plan", n=1)
        return dict(
            metrics=["tickets"],
            group_by=["metric_time__week", "priority"],
            where=[{"field": "plan", "op": "not_in", "values": plans}],
        )
    if op == "is_null":
        return dict(
            metrics=["events", "active_users"],
            group_by=["metric_time__week", "platform"],
            where=[{"field": "app_version", "op": "is_null"}],
        )
    if op == "is_not_null":
        # (A slice formed only by rows no measure reads, such as feature_users by a null
        # feature_key, is no group anyway, so the filter must drop rows that count.)
        return dict(
            metrics=["events", "active_users"],
            group_by=["metric_time__week", "platform"],
            where=[{"field": "app_version", "op": "is_not_null"}],
        )
    raise AssertionError(op)


@pytest.mark.parametrize("op", FILTER_OPS)
def test_filter_op(api: Any, oracle: Oracle, op: str) -> None:
    case = filter_case(oracle, op)
    expected, _ = check(api, oracle, **case)
    assert expected, f"filter case for {op!r} selects nothing; pick other values"
    unfiltered = oracle_rows(oracle, query_body(case["metrics"], case["group_by"]))
    assert expected != unfiltered, f"filter {op!r} should change the result"


def test_filters_combine_with_and(api: Any, oracle: Oracle) -> None:
    weeks = event_weeks(oracle)
    platforms = most_common(oracle, "src_events", "platform", n=2)
    check(
        api,
        oracle,
        metrics=["events", "active_users", "revenue"],
        group_by=["metric_time__day", "platform"],
        where=[
            {"field": "platform", "op": "in", "values": platforms},
            {"field": "app_version", "op": "is_not_null"},
            {"field": "metric_time__week", "op": ">=", "value": weeks[1]},
            {"field": "metric_time__week", "op": "<", "value": weeks[3]},
        ],
    )


def test_filter_on_retention_cohort_platform(api: Any, oracle: Oracle) -> None:
    """d7_retention's platform is that of the user's first event."""
    platform = most_common(oracle, "src_cohort", "platform")[0]
    check(
        api,
        oracle,
        metrics=["d7_retention"],
        group_by=["metric_time__month", "country"],
        where=[{"field": "platform", "op": "=", "value": platform}],
    )


# ---------------------------------------------------------------------------------------------
# Half-open time ranges
# ---------------------------------------------------------------------------------------------


def _iso(ts: dt.datetime) -> str:
    return ts.isoformat(timespec="microseconds" if ts.microsecond else "seconds")


def test_range_on_bucket_boundaries(api: Any, oracle: Oracle) -> None:
    """start and end on Mondays select exactly the weeks in between."""
    weeks = event_weeks(oracle)
    assert len(weeks) >= 4, "the landing data should span at least four weeks"
    expected, got = check(
        api,
        oracle,
        metrics=["events", "active_users", "crash_free_user_rate"],
        group_by=["metric_time__week"],
        start=weeks[1],
        end=weeks[3],
    )
    assert {k[0] for k in got} == {weeks[1], weeks[2]}
    full = oracle_rows(oracle, query_body(["events"], ["metric_time__week"]))
    assert [expected[(w,)][0] for w in weeks[1:3]] == [full[(w,)][0] for w in weeks[1:3]]


def test_range_on_day_boundaries(api: Any, oracle: Oracle) -> None:
    weeks = event_weeks(oracle)
    start = dt.date.fromisoformat(weeks[1]) + dt.timedelta(days=2)
    end = start + dt.timedelta(days=3)
    _, got = check(
        api,
        oracle,
        metrics=["events", "new_users"],
        group_by=["metric_time__day"],
        start=start.isoformat(),
        end=end.isoformat(),
    )
    assert {k[0] for k in got} <= {(start + dt.timedelta(days=i)).isoformat() for i in range(3)}


ROW_TIMESTAMPS = {
    # metric: the rows it counts, as a query over the oracle's source views
    "events": "select metric_time from src_events",
    "crashes": "select metric_time from src_errors where severity = 'crash'",
    "new_users": "select metric_time from src_users",
}


@pytest.mark.parametrize("metric", list(ROW_TIMESTAMPS))
def test_range_at_a_row_timestamp(api: Any, oracle: Oracle, metric: str) -> None:
    """A row exactly at ``start`` is in; a row exactly at ``end`` is out."""
    stamps = scalar_list(
        oracle,
        f"select metric_time from ({ROW_TIMESTAMPS[metric]})"
        " where metric_time <> date_trunc('day', metric_time) order by metric_time",
    )
    assert stamps, f"no {metric} row off midnight"
    t: dt.datetime = stamps[len(stamps) // 2]
    day = t.date().isoformat()
    next_day = (t.date() + dt.timedelta(days=1)).isoformat()
    g = ["metric_time__day"]
    after, _ = check(api, oracle, metrics=[metric], group_by=g, start=_iso(t), end=next_day)
    before, _ = check(api, oracle, metrics=[metric], group_by=g, start=day, end=_iso(t))
    whole = oracle_rows(oracle, query_body([metric], g, start=day, end=next_day))
    after_n = after[(day,)][0]
    before_n = before.get((day,), (0,))[0]
    assert after_n >= 1, "the row at start must be counted"
    assert before_n + after_n == whole[(day,)][0], "start/end must split the day exactly"


def test_range_is_applied_before_bucketing(api: Any, oracle: Oracle) -> None:
    """A range cutting through a month gives a partial month bucket, named by its first day."""
    weeks = event_weeks(oracle)
    start = dt.date.fromisoformat(weeks[len(weeks) // 2]) + dt.timedelta(days=3)
    expected, got = check(
        api,
        oracle,
        metrics=["events", "active_users", "arpu"],
        group_by=["metric_time__month"],
        start=start.isoformat(),
    )
    first_month = start.replace(day=1).isoformat()
    assert (first_month,) in got
    full = oracle_rows(oracle, query_body(["events"], ["metric_time__month"]))
    assert expected[(first_month,)][0] < full[(first_month,)][0]


# ---------------------------------------------------------------------------------------------
# order_by, limit, GET and CSV forms
# ---------------------------------------------------------------------------------------------


def test_order_by_and_limit(api: Any, oracle: Oracle) -> None:
    group_by = ["metric_time__week", "platform"]
    metrics = ["active_users", "events"]
    body = query_body(
        metrics,
        group_by,
        order_by=["metric_time__week", "-active_users", "platform"],
        limit=7,
    )
    got = post_query(api, body)
    expected = sorted(
        oracle_rows(oracle, query_body(metrics, group_by)).items(),
        key=lambda kv: (kv[0][0], -kv[1][0], kv[0][1]),
    )[:7]
    assert [k for k, _ in got] == [k for k, _ in expected]
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert all(same_value(x, y) for x, y in zip(e, g, strict=True)), (e, g)


def test_order_by_metric_descending(api: Any, oracle: Oracle) -> None:
    body = query_body(["events"], ["metric_time__day"], order_by=["-events", "metric_time__day"], limit=5)
    got = post_query(api, body)
    expected = sorted(
        oracle_rows(oracle, query_body(["events"], ["metric_time__day"])).items(),
        key=lambda kv: (-kv[1][0], kv[0][0]),
    )[:5]
    assert [(k, v[0]) for k, v in got] == [(k, v[0]) for k, v in expected]


def test_get_equals_post(api: Any, oracle: Oracle) -> None:
    weeks = event_weeks(oracle)
    metrics = ["active_users", "crash_free_user_rate", "revenue"]
    group_by = ["metric_time__week", "platform"]
    body = query_body(metrics, group_by, start=weeks[0], end=weeks[-1])
    response = api.client.get(
        "/v1/query",
        params={
            "metrics": ",".join(metrics),
            "group_by": ",".join(group_by),
            "start": weeks[0],
            "end": weeks[-1],
        },
    )
    assert response.status_code == 200, response.text[:2000]
    got_get = to_rows(parse_json_result(response.json(), group_by, metrics))
    got_post = to_rows(post_query(api, body))
    assert_rows_equal(got_post, got_get, metrics, context="GET versus POST")
    assert_rows_equal(oracle_rows(oracle, body), got_get, metrics, context="GET /v1/query")


def parse_csv_result(text: str, group_by: Sequence[str], metrics: Sequence[str]) -> Rows:
    """CSV rows keyed like ``to_rows``; an empty cell is null, metric cells are numbers."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    index = {name: i for i, name in enumerate(header)}
    missing = [n for n in [*group_by, *metrics] if n not in index]
    assert not missing, f"CSV header {header} lacks {missing}"
    out: Rows = {}
    for row in reader:
        if not row:
            continue
        key = tuple(row[index[g]] or None for g in group_by)
        values = tuple(None if row[index[m]] in ("", "null", "NULL") else float(row[index[m]]) for m in metrics)
        assert key not in out, f"duplicate CSV row {key}"
        out[key] = values
    return out


@pytest.mark.parametrize("form", ["get_format_param", "post_accept_header"])
def test_csv_format_matches_json(api: Any, oracle: Oracle, form: str) -> None:
    metrics = ["events", "active_users", "arpu", "crash_free_user_rate"]
    group_by = ["metric_time__month", "platform"]
    body = query_body(metrics, group_by)
    if form == "get_format_param":
        response = api.client.get(
            "/v1/query",
            params={"metrics": ",".join(metrics), "group_by": ",".join(group_by), "format": "csv"},
        )
    else:
        response = api.client.post("/v1/query", json=body, headers={"Accept": "text/csv"})
    assert response.status_code == 200, response.text[:2000]
    assert "csv" in response.headers.get("content-type", ""), response.headers
    got = parse_csv_result(response.text, group_by, metrics)
    assert_rows_equal(oracle_rows(oracle, body), got, metrics, context="CSV")
    assert set(got) == set(to_rows(post_query(api, body)))


# ---------------------------------------------------------------------------------------------
# Edge cases the pack spells out
# ---------------------------------------------------------------------------------------------


def total_by_year(api: Any, metric: str, where: Sequence[Mapping[str, Any]] = ()) -> float:
    """A count metric over all the data (summed over years: each row falls in one year)."""
    got = to_rows(post_query(api, query_body([metric], ["metric_time__year"], where=where)))
    return sum(v[0] for v in got.values())


def test_duplicate_events_counted_once(api: Any, oracle: Oracle) -> None:
    raw_rows, distinct_ids = oracle.sql(
        "select count(*), count(distinct e.event_id) from events as e"
        " left join users as u on u.user_id = e.user_id where u.is_internal is not true"
    )[0]
    assert raw_rows > distinct_ids, "the sample should land some events twice"
    assert total_by_year(api, "events") == distinct_ids


def test_internal_users_count_nowhere(api: Any, oracle: Oracle) -> None:
    """Totals equal raw counts without internal users, and differ from raw counts with them."""
    assert scalar_list(oracle, "select user_id from users where is_internal"), "the sample should have internal users"
    internal = "select user_id from users where is_internal"
    all_events, external_events = oracle.sql(
        "select count(distinct event_id),"
        f" count(distinct event_id) filter (where user_id is null or user_id not in ({internal}))"
        " from events"
    )[0]
    assert total_by_year(api, "events") == external_events < all_events

    all_signups, external_signups = oracle.sql(
        "select count(*), count(*) filter (where is_internal is not true) from users"
    )[0]
    assert total_by_year(api, "new_users") == external_signups < all_signups

    yearly = oracle.sql(
        "select strftime(date_trunc('year', event_ts), '%Y-%m-%d'), count(distinct user_id),"
        f" count(distinct user_id) filter (where user_id not in ({internal}))"
        " from events group by 1"
    )
    got = to_rows(post_query(api, query_body(["active_users"], ["metric_time__year"])))
    assert {(y,): (ext,) for y, _, ext in yearly} == got
    assert any(ext < everyone for _, everyone, ext in yearly)


def test_filters_cannot_reach_internal_users(api: Any, oracle: Oracle) -> None:
    """Filtering on the slice values of internal users still leaves them out."""
    rows = oracle.sql(
        "select u.country, count(distinct e.event_id) from events as e"
        " join users as u on u.user_id = e.user_id"
        " where u.is_internal and u.country is not null group by 1 order by 2 desc limit 1"
    )
    assert rows, "the sample should have events of internal users with a country"
    country, _ = rows[0]
    where = [{"field": "country", "op": "=", "value": country}]
    (with_internal,) = oracle.sql(
        "select count(distinct e.event_id) from events as e"
        " join users as u on u.user_id = e.user_id where u.country = ?",
        [country],
    )[0]
    got = total_by_year(api, "events", where)
    expected = oracle.query(["events"], [], where=where)[0][0]
    assert got == expected < with_internal
    check(
        api,
        oracle,
        metrics=["active_users", "sessions"],
        group_by=["metric_time__week"],
        where=where,
    )


@pytest.mark.parametrize(
    ("grain", "is_bucket_start"),
    [
        ("day", lambda d: True),
        ("week", lambda d: d.isoweekday() == 1),
        ("month", lambda d: d.day == 1),
        ("quarter", lambda d: d.day == 1 and d.month in (1, 4, 7, 10)),
        ("year", lambda d: (d.month, d.day) == (1, 1)),
    ],
)
def test_buckets_are_named_by_their_first_day(api: Any, grain: str, is_bucket_start: Any) -> None:
    got = to_rows(post_query(api, query_body(["events", "crashes"], [f"metric_time__{grain}"])))
    assert got
    for (bucket,) in got:
        day = dt.date.fromisoformat(bucket)
        assert bucket == day.isoformat() and is_bucket_start(day), bucket


def test_sunday_belongs_to_the_iso_week_of_the_monday_before(api: Any, oracle: Oracle) -> None:
    sundays = scalar_list(
        oracle,
        "select distinct cast(metric_time as date) from src_events where isodow(metric_time) = 7 order by 1",
    )
    assert sundays, "the sample should have events on a Sunday"
    sunday: dt.date = sundays[0]
    monday_after = sunday + dt.timedelta(days=1)
    _, got = check(
        api,
        oracle,
        metrics=["events", "active_users"],
        group_by=["metric_time__week"],
        start=sunday.isoformat(),
        end=monday_after.isoformat(),
    )
    assert list(got) == [((sunday - dt.timedelta(days=6)).isoformat(),)]


NULL_RATIO_QUERIES = {
    "mttr_hours/unresolved-only": (["mttr_hours", "incidents"], ["metric_time__day", "severity"]),
    "nps/no-nps-answers": (["nps", "csat"], ["metric_time__day", "channel"]),
    "csat/no-csat-answers": (["csat", "nps"], ["metric_time__day", "channel", "plan"]),
    "crash_free_user_rate/errors-without-events": (
        ["crash_free_user_rate", "crashed_users"],
        ["metric_time__day", "platform", "app_version"],
    ),
    "errors_per_1k_events/errors-without-events": (
        ["errors_per_1k_events", "crashes"],
        ["metric_time__day", "platform", "app_version"],
    ),
}


@pytest.mark.parametrize(("metrics", "group_by"), list(NULL_RATIO_QUERIES.values()), ids=list(NULL_RATIO_QUERIES))
def test_ratio_with_zero_denominator_is_null(api: Any, oracle: Oracle, metrics: list[str], group_by: list[str]) -> None:
    """Rows whose denominator is 0 or absent come back with a null ratio, not 0 or an error."""
    body = query_body(metrics, group_by)
    expected = oracle_rows(oracle, body)
    null_keys = [k for k, v in expected.items() if v[0] is None]
    if not null_keys:
        pytest.skip(f"the landing data has no row where {metrics[0]} has a zero denominator")
    got = to_rows(post_query(api, body))
    assert [got.get(k, ("<missing row>",))[0] for k in null_keys] == [None] * len(null_keys)
    assert_rows_equal(expected, got, metrics, context=f"query {body}")


def test_ratio_over_an_empty_side_is_null(api: Any, oracle: Oracle) -> None:
    """Filters that match errors but no events leave the two-source ratios without denominator.

    The day, platform and app_version are those of an errors-only row found by the oracle; the
    query pins all three with filters and a one-day range, so the answer is that single row.
    """
    by_day = query_body(["events", "crashes"], ["metric_time__day", "platform", "app_version"])
    candidates = [key for key, (events, _) in oracle_rows(oracle, by_day).items() if events is None]
    if not candidates:
        pytest.skip("every day, platform and app_version with errors also has events")
    day, platform, version = candidates[len(candidates) // 2]
    version_filter = (
        {"field": "app_version", "op": "is_null"}
        if version is None
        else {"field": "app_version", "op": "=", "value": version}
    )
    expected, got = check(
        api,
        oracle,
        metrics=["crash_free_user_rate", "errors_per_1k_events"],
        group_by=["metric_time__day"],
        where=[{"field": "platform", "op": "=", "value": platform}, version_filter],
        start=day,
        end=(dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat(),
    )
    assert got == expected == {(day,): (None, None)}


def test_ratios_are_not_averages_of_finer_rows(api: Any, oracle: Oracle) -> None:
    """A monthly ratio is its monthly numerator over its monthly denominator."""
    metrics = ["arpu", "revenue", "active_users", "feature_adoption_rate", "feature_users"]
    _, got = check(api, oracle, metrics=metrics, group_by=["metric_time__month"])
    for arpu, revenue, users, adoption, feature_users in got.values():
        assert math.isclose(arpu, revenue / users, rel_tol=REL_TOL)
        assert math.isclose(adoption, feature_users / users, rel_tol=REL_TOL)


def test_no_row_from_a_group_without_data(api: Any, oracle: Oracle) -> None:
    """Anonymous crashes have no plan and no user to count: by plan they form no
    `crashed_users` group, so no month answers `[month, null, null, null, 0]` (a group exists
    for a metric only where a row counts towards it; the oracle states the same rule in its own
    SQL)."""
    anonymous = scalar_list(oracle, "select count(*) from src_errors where user_id is null and severity = 'crash'")
    assert anonymous[0] > 0, "the sample should hold anonymous crashes"
    metrics = ["crash_free_user_rate", "active_users", "crashed_users"]
    expected, got = check(api, oracle, metrics=metrics, group_by=["metric_time__month", "plan"])
    assert got and all(any(v not in (None, 0) for v in values) for values in got.values()), [
        (key, values) for key, values in got.items() if not any(v not in (None, 0) for v in values)
    ]
    # A day without purchases is no paying_users row of its own; beside active_users it is 0.
    alone, _ = check(api, oracle, metrics=["paying_users"], group_by=["metric_time__day", "platform"])
    assert all(values[0] > 0 for values in alone.values())


# ---------------------------------------------------------------------------------------------
# Bad requests
# ---------------------------------------------------------------------------------------------


def test_unknown_metric_names_the_nearest(api: Any) -> None:
    response = api.client.post("/v1/query", json=query_body(["active_user"], ["metric_time__week"]))
    error = assert_error_response(response)
    assert "active_users" in error["message"] or "active_users" in str(error), error


def test_unknown_metric_on_get(api: Any) -> None:
    response = api.client.get("/v1/query", params={"metrics": "crash_free_rate", "group_by": "metric_time__day"})
    assert_error_response(response)


def test_unknown_group_by(api: Any) -> None:
    response = api.client.post("/v1/query", json=query_body(["events"], ["metric_time__week", "favourite_colour"]))
    assert_error_response(response)


def test_unknown_grain(api: Any) -> None:
    response = api.client.post("/v1/query", json=query_body(["events"], ["metric_time__fortnight"]))
    assert_error_response(response)


def test_unknown_filter_op(api: Any) -> None:
    body = query_body(
        ["events"],
        ["metric_time__week"],
        where=[{"field": "platform", "op": "like", "value": "i%"}],
    )
    assert_error_response(api.client.post("/v1/query", json=body))


def test_filter_op_missing_its_value(api: Any) -> None:
    body = query_body(["events"], ["metric_time__week"], where=[{"field": "platform", "op": "in"}])
    assert_error_response(api.client.post("/v1/query", json=body))
