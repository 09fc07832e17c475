"""A running service keeps answering from the served build while a new one is built, and
switches to the new build once it is published."""

from __future__ import annotations

import threading

import httpx

from tests.conftest import SAMPLE, Server, northstar


def test_service_answers_during_a_rebuild_and_switches_after(tmp_path):
    warehouse = tmp_path / "data" / "northstar.duckdb"
    northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse), "--no-docs")
    server = Server(warehouse)
    try:
        server.wait_ready()
        client = httpx.Client(base_url=server.base_url, timeout=30)
        body = {"metrics": ["events", "active_users"], "group_by": ["metric_time__month"]}
        before = client.post("/v1/query", json=body).json()
        first_build = before["meta"]["build_id"]

        statuses: list[int] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                statuses.append(client.post("/v1/query", json={**body, "limit": len(statuses) % 7}).status_code)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse), "--no-docs")
        finally:
            stop.set()
            poller.join()
        assert statuses and set(statuses) == {200}

        after = client.post("/v1/query", json=body).json()
        assert after["meta"]["build_id"] != first_build
        assert after["meta"]["cached"] is False  # a new build never answers from the old cache
        assert after["rows"] == before["rows"]
        assert client.get("/readyz").json()["build_id"] == after["meta"]["build_id"]
        client.close()
    finally:
        server.stop()
