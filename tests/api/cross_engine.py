"""Comparing two services over the same landing data (DuckDB and another warehouse): the same
rows, floats equal to 1e-9 relative, volatile fields (build, timings, cache) left out."""

from __future__ import annotations

import math
from typing import Any

REL_TOL = 1e-9
ABS_TOL = 1e-12
# What differs between two services by design: the build, when it ran, how long a query took.
VOLATILE = {
    "build_id",
    "built_at",
    "query_ms",
    "elapsed_ms",
    "cached",
    "generated_at",
    "request_id",
    "newest_data_at_checked",
    "freshness",
}


def answer(api: Any, method: str, url: str, **kwargs: Any) -> Any:
    response = api.client.request(method, url, **kwargs)
    assert response.status_code == 200, f"{api.base_url}{url}: {response.status_code} {response.text}"
    return response.json()


def rows_of(body: dict) -> list:
    """The answer's rows in a canonical order (the engines may order ties differently)."""
    return sorted(body["rows"], key=lambda row: [(v is None, str(v)) for v in row])


class CrossEngine:
    """Assertions that DuckDB's answer (expected) and the `other` warehouse's (got) agree."""

    def __init__(self, other: str) -> None:
        self.other = other

    def same(self, expected: Any, got: Any, path: str = "$") -> None:
        """Recursive equality; floats to REL_TOL relative (ints and floats compare as numbers)."""
        if isinstance(expected, dict) and isinstance(got, dict):
            keys = set(expected) - VOLATILE
            assert keys == set(got) - VOLATILE, f"{path}: keys {sorted(keys ^ (set(got) - VOLATILE))} differ"
            for key in keys:
                self.same(expected[key], got[key], f"{path}.{key}")
        elif isinstance(expected, list) and isinstance(got, list):
            assert len(expected) == len(got), f"{path}: {len(expected)} rows on DuckDB, {len(got)} on {self.other}"
            for i, (e, g) in enumerate(zip(expected, got)):
                self.same(e, g, f"{path}[{i}]")
        elif (
            isinstance(expected, (int, float))
            and isinstance(got, (int, float))
            and not isinstance(expected, bool)
            and not isinstance(got, bool)
        ):
            assert math.isclose(expected, got, rel_tol=REL_TOL, abs_tol=ABS_TOL), f"{path}: {expected} != {got}"
        else:
            assert expected == got, f"{path}: {expected!r} on DuckDB, {got!r} on {self.other}"

    def same_query(self, api: Any, other_api: Any, body: dict) -> None:
        duck = answer(api, "POST", "/v1/query", json=body)
        other = answer(other_api, "POST", "/v1/query", json=body)
        self.same(duck["columns"], other["columns"], "$.columns")
        self.same(rows_of(duck), rows_of(other), "$.rows")
        assert duck["rows"], f"{body}: no rows to compare"


def plain_rows(rows: list) -> list:
    """Table rows as comparable values (days as ISO dates, decimals as floats), in a canonical
    order; a warehouse's own types (date, timestamp, numeric) differ by engine."""
    import datetime as dt
    import decimal

    def plain(value: Any) -> Any:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()[:10]
        if isinstance(value, decimal.Decimal):
            return float(value)
        return value

    return sorted(([plain(v) for v in row] for row in rows), key=lambda row: [(v is None, str(v)) for v in row])


def duckdb_table(warehouse: Any, table: str) -> list:
    """Every row of `schema.table` in a DuckDB build (read-only)."""
    import duckdb

    schema, name = table.split(".", 1)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return plain_rows(con.execute(f'select * from "{schema}"."{name}"').fetchall())


def build_info(warehouse: Any) -> dict:
    """The served build's build.json."""
    import json
    import os
    from pathlib import Path

    return json.loads((Path(os.path.realpath(warehouse)).parent / "build.json").read_text())
