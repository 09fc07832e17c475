"""Errors in one place (api/errors.py), through the real application `create_app` builds, with
its middleware: every exception class answers the status of the one table, `STATUS` (by its
nearest listed class); an unknown name in the URL path is 404; an exception nothing maps is
500 `internal_error` with the request id, logged under that id with its traceback."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from api import errors
from api.auth import TooManyRequests
from api.main import create_app
from core.settings import Settings
from metrics import errors as engine_errors
from metrics.sql.marts import UnknownTable

SECRET = "secret internal detail /var/lib/warehouse.duckdb"

# What a route raises -> the class whose entry in `STATUS` answers it.
RAISED: list[tuple[Exception, type[Exception]]] = [
    *[(cls("refused"), cls) for cls in errors.STATUS],
    # classes the table does not list take their nearest listed base's status
    (engine_errors.UnknownMetric("unknown metric 'x'.", metric="x"), engine_errors.UserError),
    (engine_errors.ResultTooLarge("too many rows"), engine_errors.UserError),
    (UnknownTable("no such table"), engine_errors.UserError),
    (engine_errors.QueryCancelled("cancelled"), engine_errors.MetricsError),
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app = create_app(Settings(data_dir=tmp_path_factory.mktemp("data"), sql_port=0, flight_port=0))
    raised: dict[str, Exception] = {}

    @app.get("/v1/raise/{case}")
    def raise_it(case: str):
        raise raised[case]

    @app.get("/v1/things/{name}")
    def thing(name: str, other: str | None = None):
        named = other or name
        raise engine_errors.UnknownMetric(f"unknown metric {named!r}.", metric=named, suggestions=["events"])

    @app.get("/v1/boom")
    def boom():
        raise RuntimeError(SECRET)

    app.state.raised = raised
    return app


@pytest.fixture(scope="module")
def client(app):
    # the open mode answers loopback host names only
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.mark.parametrize(("exc", "listed"), RAISED, ids=[type(e).__name__ for e, _ in RAISED])
def test_each_exception_answers_the_status_of_the_one_table(app, client, exc, listed):
    app.state.raised[type(exc).__name__] = exc
    response = client.get(f"/v1/raise/{type(exc).__name__}")
    assert response.status_code == errors.STATUS[listed] == errors.status_for(exc), response.text
    error = response.json()["error"]
    assert error["code"] == exc.code and error["request_id"] == response.headers["X-Request-Id"]
    if response.status_code == 500:  # the service's fault: its words stay in the log
        assert error["message"] == errors.INTERNAL_MESSAGE
    else:
        assert error["message"] == exc.message
    if isinstance(exc, TooManyRequests):
        assert response.headers["Retry-After"] == "1"


def test_an_unknown_name_is_404_in_the_path_and_422_elsewhere(client):
    in_path = client.get("/v1/things/evnts")
    assert in_path.status_code == 404 and in_path.json()["error"]["code"] == "unknown_metric"
    in_query = client.get("/v1/things/events", params={"other": "evnts"})
    assert in_query.status_code == 422 and in_query.json()["error"]["suggestions"] == ["events"]


def test_an_unexpected_exception_is_500_internal_error_with_the_request_id_and_logged(client, caplog):
    # No `raise_server_exceptions=False`: the fallback answers inside the middleware, so the
    # exception never reaches the server.
    with caplog.at_level(logging.ERROR, "northstar.api"):
        response = client.get("/v1/boom")
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": errors.INTERNAL_MESSAGE,
            "request_id": response.headers["X-Request-Id"],
        }
    }
    assert len(response.headers["X-Request-Id"]) == 32
    assert "secret" not in response.text and "Traceback" not in response.text
    # the answer went through the other middleware like any other
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    logged = [r for r in caplog.records if response.headers["X-Request-Id"] in r.getMessage()]
    assert logged and logged[0].name == "northstar.api" and logged[0].exc_info
    assert SECRET in str(logged[0].exc_info[1])


def test_a_missing_route_stays_404_not_found(client):
    response = client.get("/v1/nope")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
