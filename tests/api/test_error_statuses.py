"""One status and one code per mistake, on every route: the same invalid inputs (a date that
does not exist, an inverted range, a wrong type, an unknown metric in the query string or body)
sent to every route that takes them must answer the same status and error code, name the
field, carry a request id (body and X-Request-Id header) and leak no warehouse or library text;
names that do not exist in a path are 404."""

from __future__ import annotations

import pytest

EXPERIMENT = "/v1/experiments/exp_checkout_redesign/readout"

# (mistake, expected status, expected code, field, [(method, path, params or body)])
CASES = [
    (
        "bad date",
        422,
        "invalid_query",
        {"start", "since"},
        [
            ("GET", "/v1/query", {"metrics": "events", "start": "2026-02-30"}),
            ("POST", "/v1/query", {"metrics": ["events"], "start": "2026-02-30"}),
            ("POST", "/v1/compile", {"metrics": ["events"], "start": "2026-02-30"}),
            ("GET", "/v1/quality", {"start": "2026-02-30"}),
            ("GET", "/v1/alerts", {"since": "2026-02-30"}),
        ],
    ),
    (
        "inverted range",
        422,
        "invalid_query",
        {"start", "since"},
        [
            ("GET", "/v1/query", {"metrics": "events", "start": "2026-03-01", "end": "2026-02-01"}),
            ("POST", "/v1/query", {"metrics": ["events"], "start": "2026-03-01", "end": "2026-02-01"}),
            ("POST", "/v1/compile", {"metrics": ["events"], "start": "2026-03-01", "end": "2026-02-01"}),
            ("GET", "/v1/quality", {"start": "2026-03-01", "end": "2026-02-01"}),
            ("GET", "/v1/alerts", {"since": "2026-03-01", "until": "2026-02-01"}),
        ],
    ),
    (
        "wrong type",
        422,
        "invalid_request",
        {"limit", "window_days", "alpha"},
        [
            ("GET", "/v1/query", {"metrics": "events", "limit": "ten"}),
            ("POST", "/v1/query", {"metrics": ["events"], "limit": "ten"}),
            ("POST", "/v1/compile", {"metrics": ["events"], "limit": "ten"}),
            ("GET", "/v1/releases", {"window_days": "ten"}),
            ("GET", "/v1/launches/any/scorecard", {"window_days": "ten"}),
            ("GET", EXPERIMENT, {"alpha": "ten"}),
        ],
    ),
    (
        "unknown metric",
        422,
        "unknown_metric",
        {"metric", "metrics", None},
        [
            ("GET", "/v1/query", {"metrics": "evnts"}),
            ("POST", "/v1/query", {"metrics": ["evnts"]}),
            ("POST", "/v1/compile", {"metrics": ["evnts"]}),
            ("GET", "/v1/alerts", {"metric": "evnts"}),
            ("GET", EXPERIMENT, {"metrics": "convrsion"}),
        ],
    ),
]

LEAKS = ("duckdb", "sqlglot", "Conversion Error", "Traceback", "<class", "Binder Error", "Parser Error")


def _send(api, method: str, path: str, data: dict):
    if method == "GET":
        return api.client.get(path, params=data)
    return api.client.post(path, json=data)


def _check(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert error["request_id"] and response.headers["X-Request-Id"] == error["request_id"]
    assert not any(leak in error["message"] for leak in LEAKS), error["message"]
    return error


@pytest.mark.parametrize(("mistake", "status", "code", "fields", "calls"), CASES, ids=[c[0] for c in CASES])
def test_the_same_mistake_gets_the_same_answer_on_every_route(api, mistake, status, code, fields, calls):
    for method, path, data in calls:
        error = _check(_send(api, method, path, data), status, code)
        assert error.get("field") in fields, (method, path, error)
        if mistake == "unknown metric":
            assert error["suggestions"], error  # the nearest valid names


def test_unknown_names_in_a_path_are_404(api):
    for path in (
        "/v1/metrics/evnts",
        "/v1/experiments/exp_nope/readout",
        "/v1/releases/android/0.0.1",
        "/v1/launches/nope/scorecard",
    ):
        _check(api.client.get(path), 404, api.client.get(path).json()["error"]["code"])


def test_internal_text_stays_in_the_log(api):
    # A boolean against a text column, written in a filter string: DuckDB's words stay out.
    where = "{{ Dimension('user__country') }} = true"
    error = _check(
        api.client.get("/v1/query", params={"metrics": "active_users", "where": where}), 422, "invalid_filter"
    )
    assert "country" in error["message"] and "BOOL" not in error["message"]
    # An incomplete filter string: sqlglot's words stay out.
    error = _check(
        api.client.get("/v1/query", params={"metrics": "events", "where": "{{ Dimension('user__country') }} = "}),
        422,
        "invalid_filter",
    )
    assert "incomplete or malformed" in error["message"] and "EQ" not in error["message"]


def test_a_saved_query_and_other_metrics_are_refused(api):
    error = _check(
        api.client.post("/v1/query", json={"saved_query": "weekly_active_users_by_platform", "metrics": ["events"]}),
        422,
        "invalid_query",
    )
    assert error["field"] == "metrics" and error["suggestions"] == ["active_users"]
    assert "weekly_active_users_by_platform" in error["message"] and "'events'" in error["message"]
    # The saved query's own metrics beside it are not a conflict.
    same = api.client.post(
        "/v1/query", json={"saved_query": "weekly_active_users_by_platform", "metrics": ["active_users"]}
    )
    assert same.status_code == 200, same.text


def test_every_response_has_a_request_id(api):
    ok = api.client.get("/v1/metrics")
    assert ok.status_code == 200 and len(ok.headers["X-Request-Id"]) == 32
    assert api.client.get("/v1/metrics").headers["X-Request-Id"] != ok.headers["X-Request-Id"]


def test_an_unexpected_exception_is_a_500_with_the_request_id_and_no_traceback(caplog):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from api import errors

    app = FastAPI()
    errors.install(app)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internal detail /var/lib/warehouse.duckdb")

    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level("ERROR", "northstar.api"):
        response = client.get("/boom")
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["code"] == "internal_error" and "secret" not in response.text and "Traceback" not in response.text
    assert response.headers["X-Request-Id"] == error["request_id"]
    # the internal text is in the server log under the same id
    assert any(error["request_id"] in r.getMessage() and r.exc_info for r in caplog.records)
