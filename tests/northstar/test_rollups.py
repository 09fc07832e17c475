"""Rollups declared the dbt way (a saved query's table export, or `config.meta.rollup: true`)
are materialized by `northstar build` with the engine's own SQL: each table holds exactly the
saved query's answer over HTTP (then the hidden parts it is re-aggregated from), with
non-null time keys, and build.json lists them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from metrics.rollups import Rollup, declared_rollups


def _key(row) -> tuple:
    return tuple((v is None, str(v)) for v in row)


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()[:10]
    return value


@pytest.mark.parametrize(
    "saved_query,table,exported",
    [
        ("weekly_active_users_by_platform", "rollups.weekly_active_users_by_platform", True),
        ("weekly_quality_us", "rollups.weekly_quality_us", False),
    ],
)
def test_rollup_table_is_the_saved_query_answer(api, saved_query: str, table: str, exported: bool) -> None:
    build = Path(api.warehouse).resolve().parent
    info = json.loads((build / "build.json").read_text())["rollups"][saved_query]
    assert info["table"] == info["name"] == table and info["exported"] is exported
    # A time range before the data keeps every row and makes the service answer from raw.
    response = api.client.post("/v1/query", json={"saved_query": saved_query, "start": "2000-01-03"})
    assert response.status_code == 200, response.text
    answered = [[_plain(v) if i == 0 else v for i, v in enumerate(row)] for row in response.json()["rows"]]
    with duckdb.connect(str(api.warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute(f"describe {table}").fetchall()]
        # The answer's columns, then the hidden parts a coarser query is re-aggregated from.
        answer = [n for n in names if not n.startswith("__")]
        assert names[: len(answer)] == answer and any(n.startswith("__rows__") for n in names)
        stored = con.execute(f"select {', '.join(answer)} from {table}").fetchall()
        null_keys = con.execute(f"select count(*) from {table} where metric_time__week is null").fetchone()[0]
    assert info["rows"] == len(stored) == len(answered) > 0
    assert null_keys == 0
    stored = [[_plain(v) for v in row] for row in stored]
    for got, want in zip(sorted(map(tuple, stored), key=_key), sorted(map(tuple, answered), key=_key), strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g == (pytest.approx(w, rel=1e-12) if isinstance(w, float) else w), (got, want)


def test_declarations() -> None:
    semantic = {
        "saved_queries": [
            {
                "name": "a",
                "exports": [
                    {"name": "a_export", "config": {"export_as": "table", "schema_name": None, "alias": None}},
                    {"name": "a_view", "config": {"export_as": "view"}},
                ],
            },
            {"name": "b", "exports": []},
            {"name": "c", "exports": []},
        ]
    }
    manifest = {
        "saved_queries": {
            "saved_query.p.b": {"name": "b", "config": {"meta": {"rollup": True}}},
            "saved_query.p.c": {"name": "c", "config": {"meta": {}}},
        }
    }
    assert declared_rollups(semantic, manifest) == [
        Rollup("a", "rollups", "a_export", True),
        Rollup("b", "rollups", "b", False),
    ]
    twice = {
        "saved_queries": [{"name": n, "exports": [{"name": "t", "config": {"export_as": "table"}}]} for n in ("a", "b")]
    }
    with pytest.raises(ValueError, match="two rollups write rollups.t"):
        declared_rollups(twice)


def _sorted(rows) -> list[tuple]:
    return sorted((tuple(r) for r in rows), key=_key)


def _queries(engine):
    """Every saved query of the sample, as saved and in the shapes a dashboard sends it."""
    from metrics.query.request import MetricQuery, OrderBy

    for name in engine.manifest.saved_queries:
        saved = engine.saved_query(name)
        base = MetricQuery(metrics=tuple(saved.metrics), group_by=tuple(saved.group_by), where_sql=tuple(saved.where))
        yield name, base
        yield (
            name,
            MetricQuery(
                metrics=tuple(reversed(saved.metrics)),
                group_by=tuple(reversed(saved.group_by)),
                where_sql=tuple(saved.where),
            ),
        )
        yield (
            name,
            MetricQuery(
                metrics=base.metrics,
                group_by=base.group_by,
                where_sql=base.where_sql,
                order_by=(OrderBy(base.group_by[0], True),),
                limit=3,
            ),
        )


def test_every_saved_query_answers_the_same_from_its_rollup_and_from_raw(api) -> None:
    from metrics.engine import MetricsEngine

    engine = MetricsEngine.open(api.warehouse)
    try:
        routed = 0
        for name, query in _queries(engine):
            compiled = engine.compile(query)
            answered_by = compiled.explanation["rollup"]["answered_by"]
            plan = engine.plan(query)
            raw = engine.renderer.render(plan)
            assert "rollups." not in raw.sql
            raw_rows = engine.client.query(raw.sql, raw.params).rows
            rollup_rows = engine.query(query).rows
            assert answered_by is not None, compiled.explanation
            routed += 1
            assert '"rollups".' in compiled.sql
            if query.order_by:
                assert [r[0] for r in rollup_rows] == [r[0] for r in raw_rows]
            assert len(rollup_rows) == len(raw_rows) > 0, name
            for got, want in zip(_sorted(rollup_rows), _sorted(raw_rows), strict=True):
                for g, w in zip(got, want, strict=True):
                    assert g == (pytest.approx(w, rel=1e-12) if isinstance(w, float) else w), (name, got, want)
        assert routed == 3 * len(engine.manifest.saved_queries) == 12
    finally:
        engine.close()


def test_compile_explains_which_rollup_answered_or_why_none_could(api) -> None:
    body = {"metrics": ["active_users"], "group_by": ["event__platform", "metric_time__week"]}
    explained = api.client.post("/v1/compile", json=body).json()["explanation"]["rollup"]
    assert explained["answered_by"] == "rollups.weekly_active_users_by_platform"
    assert explained["read"] == "as stored"
    # A Sunday is inside a stored ISO week: distinct users of part of a week are not stored.
    narrowed = api.client.post("/v1/compile", json={**body, "start": "2026-02-01"}).json()["explanation"]["rollup"]
    assert narrowed["answered_by"] is None
    assert narrowed["why_not"]["rollups.weekly_active_users_by_platform"] == (
        "the time range bound 2026-02-01T00:00:00 is not the start of a stored week"
    )
    assert "count distinct" in narrowed["why_not"]["rollups.daily_core_by_platform"]
    monthly = api.client.post("/v1/compile", json={"metrics": ["revenue"], "group_by": ["metric_time__month"]})
    explained = monthly.json()["explanation"]["rollup"]
    assert explained["answered_by"] == "rollups.daily_core_by_platform"
    assert explained["read"] == "re-aggregated from its parts"
    assert '"rollups"."daily_core_by_platform"' in monthly.json()["sql"]
    other = api.client.post("/v1/compile", json={"metrics": ["revenue_mtd"], "group_by": ["metric_time__day"]})
    why_not = other.json()["explanation"]["rollup"]["why_not"]
    assert "revenue_mtd is cumulative" in why_not["rollups.daily_core_by_platform"]
