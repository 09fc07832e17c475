"""Apache Superset's own code (6.1, installed in a venv of its own: superset_venv.py) against
`northstar serve --sql-port`: PostgresEngineSpec's inspector calls, SQL Lab's `select_star`,
its time-grain expressions and SqlaTable.get_sqla_query's series-limit chart, run by
superset_client.py inside that venv; every governed value held against `POST /v1/query`.

The venv is built once per machine (about 2 minutes cold, nothing warm). A failed install
fails the test; NORTHSTAR_TEST_SKIP_SUPERSET=1 skips it on machines without a package index.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: F401
from tests.api.sql_endpoint.superset_venv import ensure_superset_venv
from tests.api.sql_endpoint.test_clients import http_rows

CLIENT = Path(__file__).with_name("superset_client.py")
RANGE = {"start": "2026-01-05", "end": "2026-03-02"}  # the chart's time range, end excluded
SUNDAY_WEEK, MONDAY_WEEK = "1969-12-28T00:00:00Z/P1W", "1969-12-29T00:00:00Z/P1W"


@pytest.fixture(scope="module")
def superset(sql_server):  # noqa: F811
    """What Superset's code listed, generated and read (superset_client.py's JSON)."""
    if os.environ.get("NORTHSTAR_TEST_SKIP_SUPERSET") == "1":
        pytest.skip("NORTHSTAR_TEST_SKIP_SUPERSET=1: apache-superset is not installed on this machine")
    python = ensure_superset_venv()
    proc = subprocess.run(
        [str(python), str(CLIENT), sql_server.host, str(sql_server.port)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=CLIENT.parent,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    # Superset prints a line of its own ("Loaded your LOCAL configuration") before ours.
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dated(rows: list[list]) -> list[tuple]:
    return [
        tuple(dt.date.fromisoformat(v) if isinstance(v, str) and len(v) == 10 and v[4] == "-" else v for v in row)
        for row in rows
    ]


def test_engine_spec_lists_and_describes_the_semantic_layer(superset):
    assert superset["engine"] == "PostgresEngineSpec"
    assert {"semantic", "marts"} <= set(superset["schemas"])
    assert "metrics" in superset["tables"]
    columns = superset["columns"]
    assert columns["active_users"] == "BIGINT" and columns["metric_time__day"] == "DATE"
    assert columns["platform"] == "TEXT"
    assert superset["table_comment"]


def test_sql_lab_preview(superset):
    preview = superset["select_star"]
    assert preview["sql"] == "SELECT\n  *\nFROM semantic.metrics\nLIMIT 5"
    # `SELECT *` previews every column but the `<metric>__complete` flags (listed, selectable).
    previewed = [c for c in superset["columns"] if not c.endswith("__complete")]
    assert len(previewed) < len(superset["columns"])
    assert len(preview["rows"]) == 5 and {len(r) for r in preview["rows"]} == {len(previewed)}


@pytest.mark.parametrize(
    "grain, group_by, extra",
    [
        ("P1D", "metric_time__day", {}),
        ("P1W", "metric_time__week", {}),
        ("P1M", "metric_time__month", {}),
        (MONDAY_WEEK, "metric_time__week", {}),
        (SUNDAY_WEEK, "metric_time__week", {"week_start": "sunday"}),
    ],
)
def test_time_grains_answer_governed_values(superset, api, grain, group_by, extra):
    got = dated(superset["grains"][grain]["rows"])
    want = http_rows(
        api, {"metrics": ["active_users"], "group_by": [group_by], "order_by": [group_by], **RANGE, **extra}
    )
    assert want and got == want


@pytest.mark.parametrize("chart, series, limit", [("one", ["platform"], 2), ("two", ["platform", "country"], 3)])
def test_series_limit_chart_from_get_sqla_query(superset, api, chart, series, limit):
    answer = superset["charts"][chart]
    assert ") AS series_limit ON " in answer["sql"] and "ORDER BY SUM(sessions) DESC" in answer["sql"]
    top = http_rows(
        api, {"metrics": ["sessions"], "group_by": series, "order_by": ["-sessions", *series], "limit": limit, **RANGE}
    )
    keys = {tuple(r[: len(series)]) for r in top}
    everything = http_rows(api, {"metrics": ["active_users"], "group_by": ["metric_time__week", *series], **RANGE})
    want = sorted(r for r in everything if tuple(r[1 : 1 + len(series)]) in keys)
    assert len(keys) == limit and want
    assert sorted(dated(answer["rows"])) == want


@pytest.mark.parametrize("chart, series, limit", [("one", ["platform"], 2), ("two", ["platform", "country"], 3)])
def test_group_others_chart_answers_the_top_n_and_the_rest(superset, api, chart, series, limit):
    """ "Group remaining as Others": the top-N slices as in the plain chart, then one 'Others'
    row per week with the governed metric over every other slice (not a sum of their values)."""
    answer = superset["group_others"][chart]
    assert "LEFT OUTER JOIN" in answer["sql"] and "ELSE 'Others'" in answer["sql"], answer["sql"]
    assert "error" not in answer, answer.get("error")
    rows = dated(answer["rows"])
    top_rows = [r for r in rows if "Others" not in r[1 : 1 + len(series)]]
    assert sorted(top_rows) == sorted(dated(superset["charts"][chart]["rows"]))
    others = sorted(r for r in rows if "Others" in r[1 : 1 + len(series)])
    assert all(r[1 : 1 + len(series)] == ("Others",) * len(series) for r in others)
    top = http_rows(
        api, {"metrics": ["sessions"], "group_by": series, "order_by": ["-sessions", *series], "limit": limit, **RANGE}
    )
    if len(series) == 1:
        # No slice is NULL in the range, so "not among the top-N" is the API's not_in.
        slices = http_rows(api, {"metrics": ["sessions"], "group_by": series, **RANGE})
        assert all(r[0] is not None for r in slices)
        want = http_rows(
            api,
            {
                "metrics": ["active_users"],
                "group_by": ["metric_time__week"],
                **RANGE,
                "where": [{"field": series[0], "op": "not_in", "values": [r[0] for r in top]}],
            },
        )
        assert want and others == sorted((r[0], "Others", r[1]) for r in want)
    else:
        # Every week has an 'Others' row, and a distinct count over the rest is at most the
        # sum of the rest's own values.
        weeks = {r[0] for r in top_rows}
        assert {r[0] for r in others} == weeks
        keys = {tuple(r[: len(series)]) for r in top}
        rest = http_rows(api, {"metrics": ["active_users"], "group_by": ["metric_time__week", *series], **RANGE})
        for week, *_, value in others:
            assert 0 < value <= sum(r[-1] for r in rest if r[0] == week and tuple(r[1:-1]) not in keys)
