"""A repeated /v1/query is served as the bytes encoded the first time: the same rows, JSON
saying it came from the cache, each encoding kept apart, paging and headers intact."""

from __future__ import annotations

from typing import Any

BODY = {
    "metrics": ["active_users", "revenue"],
    "group_by": ["metric_time__week", "platform"],
    "where": [{"field": "country", "op": "in", "values": ["US", "DE"]}],
    "start": "2024-01-01",
}


def test_repeated_json_answer_is_the_first_marked_cached(api: Any) -> None:
    body = {**BODY, "start": "2024-01-02"}  # a request no other test makes
    first = api.client.post("/v1/query", json=body)
    second = api.client.post("/v1/query", json=body)
    assert first.status_code == second.status_code == 200
    one, two = first.json(), second.json()
    assert one["meta"]["cached"] is False and two["meta"]["cached"] is True
    assert two["meta"]["elapsed_ms"] == 0.0
    assert one["rows"] == two["rows"] and one["columns"] == two["columns"] and one["rows"]
    assert {k: v for k, v in one["meta"].items() if k not in ("cached", "elapsed_ms")} == {
        k: v for k, v in two["meta"].items() if k not in ("cached", "elapsed_ms")
    }
    for header in ("x-northstar-rows", "x-northstar-rows-total", "content-type", "x-request-id"):
        assert header in second.headers, header
    assert first.headers["x-request-id"] != second.headers["x-request-id"]  # ids stay per request


def test_each_encoding_and_page_is_kept_apart(api: Any) -> None:
    body = {**BODY, "start": "2024-01-03"}
    json_rows = api.client.post("/v1/query", json=body).json()["rows"]
    csv_once = api.client.post("/v1/query", json=body, params={"format": "csv"})
    csv_twice = api.client.post("/v1/query", json=body, params={"format": "csv"})
    assert csv_once.text == csv_twice.text and csv_twice.headers["content-type"].startswith("text/csv")
    assert csv_twice.headers["content-disposition"] == csv_once.headers["content-disposition"]
    assert len(csv_twice.text.strip().splitlines()) == len(json_rows) + 1
    page = {**body, "offset": 1}
    paged = [api.client.post("/v1/query", json=page).json() for _ in range(2)]
    assert paged[0]["rows"] == paged[1]["rows"] == json_rows[1:] and paged[1]["meta"]["cached"] is True
    # The GET form of the same query is the same answer.
    got = api.client.get(
        "/v1/query",
        params={
            "metrics": "active_users,revenue",
            "group_by": "metric_time__week,platform",
            "where": "{{ Dimension('user__country') }} in ('US', 'DE')",
            "start": "2024-01-03",
        },
    ).json()
    assert got["rows"] == json_rows
