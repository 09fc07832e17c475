"""Completeness over HTTP: meta.incomplete in JSON, opt-in `<metric>__complete` columns in JSON
and CSV, the X-Northstar-Incomplete header (the rule: metrics/query/completeness.py)."""

from __future__ import annotations

import csv
import io


def test_json_lists_incomplete_buckets_with_the_reason(api):
    response = api.client.get(
        "/v1/query", params={"metrics": "d7_retention,new_users", "group_by": "metric_time__month"}
    )
    assert response.status_code == 200
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["metric_time__month", "d7_retention", "new_users"]
    rows = {r[0]: r[1:] for r in body["rows"]}
    incomplete = {(i["bucket"], i["metric"]): i for i in body["meta"]["incomplete"]}
    assert rows["2024-07-01"][0] is None and rows["2024-07-01"][1] > 0  # not 0.0: before the events
    assert incomplete[("2024-07-01", "d7_retention")]["reason"] == "window_not_covered"
    assert incomplete[("2026-04-01", "d7_retention")]["reason"] == "window_not_covered"
    assert incomplete[("2026-04-01", "new_users")]["reason"] == "after_data"
    # every null retention is explained, every value shown is complete
    for month, (retention, _) in rows.items():
        assert (retention is None) == ((month, "d7_retention") in incomplete), month
    assert response.headers["X-Northstar-Incomplete"] == str(len(body["meta"]["incomplete"]))


def test_opt_in_columns_in_json_and_csv(api):
    params = {
        "metrics": "arpu",
        "group_by": "metric_time__week",
        "start": "2026-01-14",
        "end": "2026-02-02",
        "completeness": "columns",
    }
    body = api.client.get("/v1/query", params=params).json()
    assert [c["name"] for c in body["columns"]] == ["metric_time__week", "arpu", "arpu__complete"]
    assert body["columns"][2]["type"] == "boolean"
    flags = {r[0]: r[2] for r in body["rows"]}
    assert flags["2026-01-12"] is False and flags["2026-01-19"] is True
    text = api.client.get("/v1/query", params={**params, "format": "csv"}).text
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["metric_time__week", "arpu", "arpu__complete"]
    assert {r[0]: r[2] for r in table[1:]} == {k: "true" if v else "false" for k, v in flags.items()}
    # without the option the columns stay as the contract has them
    plain = api.client.get("/v1/query", params={k: v for k, v in params.items() if k != "completeness"}).json()
    assert [c["name"] for c in plain["columns"]] == ["metric_time__week", "arpu"]
