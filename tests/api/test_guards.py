"""Guardrails of a shared service, over HTTP against the real server with small limits:
paging, the result-size cap, the request body cap, the query timeout, per-token concurrency."""

from __future__ import annotations

import threading

import httpx
import pytest

from api.auth import Caller, ConcurrencyLimiter, TooManyRequests  # noqa: E402
from core.tokens import Token  # noqa: E402
from tests.conftest import Server
from tests.oracle import Oracle


@pytest.fixture(scope="module")
def limited(built_warehouse):
    server = Server(
        built_warehouse.warehouse,
        env={
            "NORTHSTAR_MAX_ROWS_PER_RESPONSE": "50",
            "NORTHSTAR_MAX_RESULT_ROWS": "500",
            "NORTHSTAR_MAX_BODY_BYTES": "10000",
        },
    )
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            yield client
    finally:
        server.stop()


def test_large_answers_come_in_pages(limited, built_warehouse):
    expected = Oracle(built_warehouse.landing_dir).query(["events"], ["metric_time__day"])
    assert len(expected) > 50
    rows, offset, pages = [], 0, 0
    while offset is not None:
        response = limited.post(
            "/v1/query", json={"metrics": ["events"], "group_by": ["metric_time__day"], "offset": offset}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["rows"]) <= 50 and body["meta"]["rows_total"] == len(expected)
        assert response.headers["x-northstar-rows"] == str(len(body["rows"]))
        rows += body["rows"]
        offset, pages = body["meta"]["next_offset"], pages + 1
    assert pages == -(-len(expected) // 50)
    assert [tuple(r) for r in rows] == [tuple(r) for r in expected]


def test_a_result_over_the_cap_is_refused_with_advice(limited):
    query = {"metrics": ["active_users"], "group_by": ["metric_time__day", "country", "platform"]}
    response = limited.post("/v1/query", json=query)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "result_too_large" and error["max_rows"] == 500 and "filters" in error["message"]
    assert limited.post("/v1/query", json={**query, "limit": 100}).status_code == 200


def test_a_body_over_the_cap_is_refused(limited):
    huge = {"metrics": ["events"], "where": [{"field": "country", "op": "in", "values": ["x" * 100] * 200}]}
    response = limited.post("/v1/query", json=huge)
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"
    assert limited.post("/v1/query", json={"metrics": ["events"]}).status_code == 200


def test_a_slow_query_is_stopped_and_frees_the_server(built_warehouse):
    # Every warehouse query gets 2 ms: a per-user daily series cannot finish, `select 1` can.
    server = Server(built_warehouse.warehouse, env={"NORTHSTAR_QUERY_TIMEOUT_S": "0.002"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            response = client.post(
                "/v1/query",
                json={
                    "metrics": ["active_users", "sessions", "events"],
                    "group_by": ["metric_time__day", "user", "platform"],
                },
            )
            assert response.status_code == 504, response.text
            assert response.json()["error"]["code"] == "query_timeout"
            assert client.get("/healthz").status_code == 200
    finally:
        server.stop()


def _token(limit: int) -> Token:
    return Token("t1", "dashboards", ("metrics:read",), (), "2026-01-01", "x", max_concurrent=limit)


def test_concurrent_queries_per_token_are_bounded():
    limiter = ConcurrencyLimiter(default_limit=8)
    caller = Caller(_token(2))
    held = [limiter.acquire(caller), limiter.acquire(caller)]
    with pytest.raises(TooManyRequests) as refused:
        limiter.acquire(caller)
    assert refused.value.details["retry_after"] == 1
    limiter.release(held.pop())
    held.append(limiter.acquire(caller))  # a slot freed is a slot usable
    # Open mode (no token) is not counted; other tokens have their own budget.
    assert limiter.acquire(Caller(None)) is None
    other = Caller(Token("t2", "other", ("metrics:read",), (), "2026-01-01", "y"))
    for _ in range(8):
        limiter.acquire(other)
    with pytest.raises(TooManyRequests):
        limiter.acquire(other)


def test_limiter_counts_correctly_under_threads():
    limiter = ConcurrencyLimiter(default_limit=1000)
    caller = Caller(_token(1000))

    def churn():
        for _ in range(500):
            limiter.release(limiter.acquire(caller))

    threads = [threading.Thread(target=churn) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter._running["t1"] == 0
