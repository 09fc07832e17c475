"""HTTP hardening in front of every route, against the real service: security headers and no
server banner, the Host allow-list (DNS-rebinding guard) of an open service, no Host echoed in
redirects, 413 for bodies over the cap however they are sent, and no host paths in the docs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from tests.api.test_auth import create_token
from tests.conftest import REPO, Server

EXPECTED_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def raw_get(base_url: str, path: str, host: str, token: str | None = None) -> httpx.Response:
    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(base_url + path, headers=headers, timeout=30)


@pytest.mark.parametrize(
    "path",
    [
        "/healthz",
        "/readyz",
        "/v1/metrics",
        "/v1/metrics/no_such_metric",
        "/dbt-docs/",
        "/openapi.json",
        "/nothing-here",
    ],
)
def test_every_response_carries_security_headers_and_no_server_banner(api, path):
    response = api.client.get(path)
    for name, value in EXPECTED_HEADERS.items():
        assert response.headers.get(name) == value, (path, name, response.headers)
    assert "server" not in response.headers


def test_refusals_from_the_guards_carry_the_headers_too(api):
    too_large = api.client.post("/v1/query", content=b"x" * 2_000_000, headers={"content-type": "application/json"})
    assert too_large.status_code == 413
    assert too_large.headers.get("x-frame-options") == "DENY" and "server" not in too_large.headers
    assert too_large.json()["error"]["request_id"] == too_large.headers["x-request-id"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST.", "[::1]", "127.0.0.2", "app.localhost"])
def test_an_open_service_answers_loopback_host_names(api, host):
    port = api.base_url.rsplit(":", 1)[1]
    response = raw_get(api.base_url, "/v1/metrics", f"{host}:{port}")
    assert response.status_code == 200, (host, response.text)


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:80", "10.0.0.5", "localhost.evil.example", "127.0.0.1.nip.io"]
)
def test_an_open_service_refuses_other_host_names(api, host):
    """A page of evil.example whose name the attacker re-points at 127.0.0.1 reaches the open
    service from the user's browser with `Host: evil.example`: refused before any route."""
    response = raw_get(api.base_url, "/v1/metrics", host)
    assert response.status_code == 421
    body = response.json()
    assert body["error"]["code"] == "host_not_allowed"
    assert host.split(":")[0] not in response.text  # nothing of the Host is echoed
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    assert response.headers.get("x-frame-options") == "DENY"


def test_no_redirect_echoes_the_host(api):
    """A stray trailing slash used to be a 307 to an absolute URL built from the Host header."""
    for path in ("/v1/metrics/", "/v1/experiments/", "/dbt-docs"):
        response = api.client.get(path, follow_redirects=False)
        location = response.headers.get("location", "")
        assert "://" not in location, (path, response.status_code, location)
    assert api.client.get("/v1/metrics/", follow_redirects=False).status_code == 404


def chunks(total: int, size: int = 65536):
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


def test_a_chunked_body_over_the_cap_is_413(api):
    """Without Content-Length (Transfer-Encoding: chunked) the body is counted as it arrives."""
    response = api.client.post("/v1/query", content=chunks(2_000_000), headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "request_too_large"


def test_a_chunked_body_under_the_cap_is_answered(api):
    body = json.dumps({"metrics": ["active_users"], "group_by": ["metric_time__month"]}).encode()

    def pieces():
        for i in range(0, len(body), 7):
            yield body[i : i + 7]

    response = api.client.post("/v1/query", content=pieces(), headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    plain = api.client.post("/v1/query", content=body, headers={"content-type": "application/json"})
    assert response.json()["rows"] == plain.json()["rows"] and plain.json()["rows"]


@pytest.mark.parametrize(
    "name", ["manifest.json", "run_results.json", "catalog.json", "semantic_manifest.json", "index.html"]
)
def test_docs_files_show_no_host_paths(api, built_warehouse, name):
    response = api.client.get(f"/dbt-docs/{name}")
    assert response.status_code == 200
    text = response.text
    for directory in {REPO, built_warehouse.data_dir, built_warehouse.landing_dir, Path.home()}:
        for form in {str(directory), os.path.realpath(directory)}:
            assert form not in text, (name, form)
    if name.endswith(".json"):
        json.loads(text)  # still valid JSON after the replacement


def test_docs_placeholders_keep_the_files_meaningful(api):
    run_results = api.client.get("/dbt-docs/run_results.json").json()
    assert run_results["args"]["project_dir"] == "<dbt_project>"
    compiled = " ".join(r.get("compiled_code") or "" for r in run_results["results"])
    assert "<landing>/" in compiled


@pytest.fixture(scope="module")
def tokened(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("guarded")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    token = create_token(data_dir, "reader", "--scope", "metrics:read")
    servers = {
        "any": Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)}),
        "listed": Server(
            data_dir / "northstar.duckdb",
            env={"NORTHSTAR_DATA_DIR": str(data_dir), "NORTHSTAR_ALLOWED_HOSTS": "metrics.example.com, 127.0.0.1"},
        ),
    }
    try:
        for server in servers.values():
            server.wait_ready()
        yield {name: server.base_url for name, server in servers.items()}, token
    finally:
        for server in servers.values():
            server.stop()


def test_with_tokens_any_host_is_answered_unless_hosts_are_listed(tokened):
    urls, token = tokened
    assert raw_get(urls["any"], "/v1/metrics", "metrics.internal.example", token).status_code == 200
    assert raw_get(urls["listed"], "/v1/metrics", "metrics.example.com", token).status_code == 200
    assert raw_get(urls["listed"], "/v1/metrics", "127.0.0.1", token).status_code == 200
    refused = raw_get(urls["listed"], "/v1/metrics", "other.example.com", token)
    assert refused.status_code == 421 and refused.json()["error"]["code"] == "host_not_allowed"
