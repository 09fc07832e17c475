"""`northstar rollups suggest` on a crafted audit log: queries grouped by shape, the grain that
makes each group's buckets and range bounds, rows estimated from the warehouse's distinct
values (counted here with plain SQL over the marts), time saved as the sum of the logged
milliseconds, ranked, and what is left out with why."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import yaml

from tests.conftest import northstar


def _http(body, ms: float, status: int = 200, path: str = "/v1/query") -> dict:
    return {
        "at": "2026-03-01T10:00:00Z",
        "interface": "http",
        "caller": "anonymous",
        "method": "POST",
        "path": path,
        "query": None,
        "body": body,
        "status": status,
        "ms": ms,
        "rows": 1,
    }


LOG = [
    # active users per ISO week, twice: a distinct count, so a weekly rollup (500 ms)
    _http({"metrics": ["active_users"], "group_by": ["metric_time__week"]}, 300.0),
    _http({"metrics": ["active_users"], "group_by": ["metric_time__week"], "start": "2026-01-05"}, 200.0),
    # the same in Sunday weeks: a distinct count no stored grain makes
    _http({"metrics": ["active_users"], "group_by": ["metric_time__week"], "week_start": "sunday"}, 900.0),
    # already answered by the sample's weekly_active_users_by_platform
    _http({"metrics": ["active_users"], "group_by": ["metric_time__week", "event__platform"]}, 999.0),
    # active users by week for one country: the country becomes a column (no rollup has it)
    _http(
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week"],
            "where": [{"field": "user__country", "op": "=", "value": "US"}],
        },
        60.0,
    ),
    # ... but not for a range of countries: a distinct count re-aggregated over them
    _http(
        {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week"],
            "where": [{"field": "user__country", "op": "in", "values": ["US", "DE"]}],
        },
        60.0,
    ),
    # events and revenue by month, per country or for one (a filter field is a column): 120 ms
    _http({"metrics": ["revenue", "events"], "group_by": ["metric_time__month", "user__country"]}, 70.0),
    _http(
        {
            "metrics": ["events", "revenue"],
            "group_by": ["metric_time__month"],
            "where": [{"field": "user__country", "op": "=", "value": "US"}],
        },
        50.0,
    ),
    # incidents by week from a Wednesday, and by month: only days make both (80 ms)
    _http({"metrics": ["incidents"], "group_by": ["metric_time__week"], "start": "2026-01-14"}, 30.0),
    _http({"metrics": ["incidents"], "group_by": ["metric_time__month"]}, 50.0),
    # in a time zone: no rollup stores local buckets
    _http({"metrics": ["incidents"], "group_by": ["metric_time__day"], "timezone": "Europe/Berlin"}, 5000.0),
    # not answered, or not a metric query: not counted
    _http({"metrics": ["events"]}, 4000.0, status=500),
    _http(None, 3000.0, path="/healthz"),
]


def test_suggest_ranks_rollups_by_the_time_they_would_save(built_warehouse, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text("\n".join(json.dumps(e) for e in LOG) + "\n" + '{"cut short\n')
    out = northstar(
        "rollups", "suggest", "--warehouse", str(built_warehouse.warehouse), "--audit-log", str(audit), "--top", "3"
    ).stdout
    everything = northstar(
        "rollups", "suggest", "--warehouse", str(built_warehouse.warehouse), "--audit-log", str(audit)
    ).stdout
    with duckdb.connect(str(built_warehouse.warehouse), read_only=True) as con:

        def count(sql: str) -> int:
            return con.execute(f"select count(*) from ({sql})").fetchone()[0]

        weeks = count("select distinct date_trunc('week', event_ts) from marts.fct_events")
        months = count("select distinct date_trunc('month', event_ts) from marts.fct_events")
        countries = count(
            "select distinct u.country from marts.fct_events e left join marts.dim_users u using (user_id)"
        )
        incident_days = count("select distinct cast(opened_at as date) from marts.fct_incidents")
    suggested = yaml.safe_load(out)["saved_queries"]
    assert [s["name"] for s in suggested] == [
        "active_users_weekly",
        "events_revenue_by_country_monthly",
        "incidents_daily",
    ]
    assert [s["query_params"] for s in suggested] == [
        {"metrics": ["active_users"], "group_by": ["TimeDimension('metric_time', 'week')"]},
        {
            "metrics": ["events", "revenue"],
            "group_by": ["TimeDimension('metric_time', 'month')", "Dimension('user__country')"],
        },
        {"metrics": ["incidents"], "group_by": ["TimeDimension('metric_time', 'day')"]},
    ]
    assert suggested[0]["exports"] == [
        {
            "name": "active_users_weekly",
            "config": {"export_as": "table", "schema": "rollups", "alias": "active_users_weekly"},
        }
    ]
    assert f"# 1. answers 2 queries that took 500 ms; about {weeks} rows" in out
    assert f"# 2. answers 2 queries that took 120 ms; about {months * countries} rows" in out
    assert f"# 3. answers 2 queries that took 80 ms; about {incident_days} rows" in out
    assert "# 11 logged metric queries" in out
    fourth = yaml.safe_load(everything)["saved_queries"][3]
    assert fourth["name"] == "active_users_by_country_weekly"
    assert fourth["query_params"]["group_by"] == ["TimeDimension('metric_time', 'week')", "Dimension('user__country')"]
    assert f"# 4. answers 1 queries that took 60 ms; about {weeks * countries} rows" in everything
    for left_out in (
        "1 already answered by a rollup",
        "1 a distinct count at mixed or Sunday-week grains",
        "1 asked in a time zone",
        "1 a distinct count filtered on a dimension it is not grouped by, other than by =",
        "1 entries this build cannot read as a query",
    ):
        assert f"#   left out: {left_out}" in out, out
