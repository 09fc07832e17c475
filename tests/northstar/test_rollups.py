"""Rollups declared the dbt way (a saved query's table export, or `config.meta.rollup: true`)
are materialized by `northstar build` with the engine's own SQL: each table holds exactly the
saved query's answer over HTTP, with non-null time keys, and build.json lists them."""

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


@pytest.mark.parametrize("saved_query,table,exported", [
    ("weekly_active_users_by_platform", "rollups.weekly_active_users_by_platform", True),
    ("weekly_quality_us", "rollups.weekly_quality_us", False),
])
def test_rollup_table_is_the_saved_query_answer(api, saved_query: str, table: str, exported: bool) -> None:
    build = Path(api.warehouse).resolve().parent
    info = json.loads((build / "build.json").read_text())["rollups"][saved_query]
    assert info["table"] == table and info["exported"] is exported
    response = api.client.post("/v1/query", json={"saved_query": saved_query})
    assert response.status_code == 200, response.text
    answered = [[_plain(v) if i == 0 else v for i, v in enumerate(row)] for row in response.json()["rows"]]
    with duckdb.connect(str(api.warehouse), read_only=True) as con:
        stored = con.execute(f"select * from {table}").fetchall()
        null_keys = con.execute(f"select count(*) from {table} where metric_time__week is null").fetchone()[0]
    assert info["rows"] == len(stored) == len(answered) > 0
    assert null_keys == 0
    stored = [[_plain(v) for v in row] for row in stored]
    for got, want in zip(sorted(map(tuple, stored), key=_key), sorted(map(tuple, answered), key=_key), strict=True):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g == (pytest.approx(w, rel=1e-12) if isinstance(w, float) else w), (got, want)


def test_declarations() -> None:
    semantic = {"saved_queries": [
        {"name": "a", "exports": [{"name": "a_export", "config": {"export_as": "table", "schema_name": None,
                                                                    "alias": None}},
                                  {"name": "a_view", "config": {"export_as": "view"}}]},
        {"name": "b", "exports": []}, {"name": "c", "exports": []}]}
    manifest = {"saved_queries": {"saved_query.p.b": {"name": "b", "config": {"meta": {"rollup": True}}},
                                  "saved_query.p.c": {"name": "c", "config": {"meta": {}}}}}
    assert declared_rollups(semantic, manifest) == [Rollup("a", "rollups", "a_export", True),
                                                    Rollup("b", "rollups", "b", False)]
    twice = {"saved_queries": [{"name": n, "exports": [{"name": "t", "config": {"export_as": "table"}}]}
                               for n in ("a", "b")]}
    with pytest.raises(ValueError, match="two rollups write rollups.t"):
        declared_rollups(twice)
