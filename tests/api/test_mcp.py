"""The MCP server through the official SDK's own client, over streamable HTTP (`/mcp` on the real
service) and over stdio (`northstar mcp` as a subprocess): the tools and their schemas, answers
equal to /v1/query's, tool errors that name the nearest names, and the HTTP API's tokens, scopes,
row policies and audit log applied to every call.
"""

from __future__ import annotations

import json
import os
import sys

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.api.test_auth import create_token
from tests.conftest import REPO, Server, northstar
from tests.oracle import Oracle

DBT_MCP_TOOLS = {
    "list_metrics",
    "list_saved_queries",
    "get_dimensions",
    "get_entities",
    "get_dimension_values",
    "query_metrics",
    "get_metrics_compiled_sql",
}
OWN_TOOLS = {"get_experiment_readout", "get_quality_scorecard", "list_alerts", "explain_query"}


@pytest.fixture(scope="module")
def service(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("mcp")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    oracle = Oracle(built_warehouse.landing_dir)
    region = oracle.sql(
        "select region, count(*) from src_events where region is not null group by 1 order by 2 desc limit 1"
    )[0][0]
    tokens = {
        "reader": create_token(data_dir, "reader", "--scope", "metrics:read"),
        "experimenter": create_token(data_dir, "experimenter", "--scope", "experiments:read"),
        "regional": create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", f"region={region}"),
    }
    server = Server(
        data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir), "NORTHSTAR_MCP_MAX_ROWS": "50"}
    )
    try:
        server.wait_ready()
        yield {
            "url": server.base_url,
            "tokens": tokens,
            "data_dir": data_dir,
            "region": region,
            "oracle": oracle,
            "warehouse": data_dir / "northstar.duckdb",
        }
    finally:
        server.stop()


def over_http(service, token: str | None, calls):
    """Run `calls(client)` with an MCP client on the service's /mcp, as `token`."""

    async def main():
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(streamable_http_client(service["url"] + "/mcp", http_client=http)) as client:
                return await calls(client)

    return anyio.run(main)


def over_stdio(service, token: str | None, calls):
    """Run `calls(client)` with an MCP client on a `northstar mcp` subprocess, as `token`."""
    env = {"NORTHSTAR_DATA_DIR": str(service["data_dir"]), "NORTHSTAR_MCP_MAX_ROWS": "50", "PYTHONPATH": str(REPO)}
    if token:
        env["NORTHSTAR_TOKEN"] = token
    params = StdioServerParameters(
        command=sys.executable,
        cwd=str(REPO),
        env=env,
        args=["-m", "northstar", "mcp", "--warehouse", str(service["warehouse"])],
    )

    async def main():
        async with Client(params) as client:
            return await calls(client)

    return anyio.run(main)


def call(tool: str, arguments: dict):
    async def calls(client):
        return await client.call_tool(tool, arguments)

    return calls


def rest_query(service, token: str, body: dict) -> dict:
    response = httpx.post(
        service["url"] + "/v1/query", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


TRANSPORTS = [pytest.param(over_http, id="http"), pytest.param(over_stdio, id="stdio")]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_tools_are_listed_with_their_schemas(service, transport):
    async def calls(client):
        return (await client.list_tools()).tools

    listed = {t.name: t for t in transport(service, service["tokens"]["reader"], calls)}
    assert set(listed) == DBT_MCP_TOOLS | OWN_TOOLS
    query = listed["query_metrics"].input_schema
    assert set(query["properties"]) >= {"metrics", "group_by", "order_by", "where", "limit"}
    assert query["required"] == ["metrics"]
    assert "{{ Dimension(" in listed["query_metrics"].description and "50 rows" in listed["query_metrics"].description
    assert set(listed["list_metrics"].input_schema["properties"]) == {"search"}
    assert set(listed["get_dimension_values"].input_schema["properties"]) == {"dimension", "metrics", "limit"}
    assert all(t.annotations.read_only_hint for t in listed.values())


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_query_metrics_answers_what_v1_query_answers(service, transport):
    token = service["tokens"]["reader"]
    arguments = {
        "metrics": ["active_users", "sessions"],
        "group_by": [
            {"name": "metric_time", "type": "time_dimension", "grain": "week"},
            {"name": "platform", "type": "dimension"},
        ],
        "where": "{{ Dimension('platform') }} != 'web'",
        "order_by": [{"name": "metric_time", "descending": True}, {"name": "platform"}],
        "limit": 12,
    }
    result = transport(service, token, call("query_metrics", arguments))
    assert not result.is_error, result.content
    rest = rest_query(
        service,
        token,
        {
            "metrics": ["active_users", "sessions"],
            "group_by": ["metric_time__week", "platform"],
            "where": ["{{ Dimension('platform') }} != 'web'"],
            "order_by": ["-metric_time__week", "platform"],
            "limit": 12,
        },
    )
    body = result.structured_content
    assert body["columns"] == rest["columns"] and body["rows"] == rest["rows"] and len(body["rows"]) == 12
    assert body["meta"]["build_id"] == rest["meta"]["build_id"] and body["truncated"] is False
    # the text a model reads is the same answer
    assert json.loads(result.content[0].text)["rows"] == rest["rows"]


def test_large_answers_are_capped_with_a_note(service):
    token = service["tokens"]["reader"]
    result = over_http(
        service, token, call("query_metrics", {"metrics": ["active_users"], "group_by": ["metric_time__day"]})
    )
    body = result.structured_content
    days = len(rest_query(service, token, {"metrics": ["active_users"], "group_by": ["metric_time__day"]})["rows"])
    assert days > 50 and body["row_count"] == days and len(body["rows"]) == 50 and body["truncated"]
    assert "narrow the query" in body["note"].lower()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_bad_metric_name_is_a_tool_error_naming_the_nearest(service, transport):
    result = transport(service, service["tokens"]["reader"], call("query_metrics", {"metrics": ["activ_users"]}))
    assert result.is_error
    assert "unknown metric 'activ_users'" in result.content[0].text and "'active_users'" in result.content[0].text
    dims = transport(service, service["tokens"]["reader"], call("get_dimensions", {"metrics": ["sesions"]}))
    assert dims.is_error and "'sessions'" in dims.content[0].text


def _by_country(result) -> dict:
    assert not result.is_error, result.content
    return {row[0]: row[1] for row in result.structured_content["rows"]}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_restricted_token_sees_only_its_rows(service, transport):
    region, oracle = service["region"], service["oracle"]
    expected = {
        row[0]: row[1]
        for row in oracle.query(["active_users"], ["country"], where=[{"field": "region", "op": "=", "value": region}])
    }
    arguments = {"metrics": ["active_users"], "group_by": ["country"]}
    restricted = _by_country(transport(service, service["tokens"]["regional"], call("query_metrics", arguments)))
    everyone = _by_country(transport(service, service["tokens"]["reader"], call("query_metrics", arguments)))
    assert restricted == expected and restricted != everyone
    # a filter that tries to OR its way out is ANDed with the policy all the same
    widened = transport(
        service,
        service["tokens"]["regional"],
        call(
            "query_metrics",
            {
                "metrics": ["active_users"],
                "group_by": ["region"],
                "where": "{{ Dimension('region') }} is not null or 1 = 1",
            },
        ),
    )
    assert {row[0] for row in widened.structured_content["rows"]} == {region}
    values = transport(service, service["tokens"]["regional"], call("get_dimension_values", {"dimension": "region"}))
    assert values.structured_content["values"] == [region]
    # a metric the policy cannot restrict is refused, not answered whole
    refused = transport(service, service["tokens"]["regional"], call("query_metrics", {"metrics": ["incidents"]}))
    assert refused.is_error and "forbidden_by_policy" in refused.content[0].text


def test_tokens_and_scopes_guard_the_http_endpoint(service):
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    missing = httpx.post(service["url"] + "/mcp", json=initialize, headers=headers, timeout=30)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    forged = httpx.post(
        service["url"] + "/mcp",
        json=initialize,
        timeout=30,
        headers={**headers, "Authorization": "Bearer nst_0000_forged"},
    )
    assert forged.status_code == 401
    # a token without metrics:read does not get in; one without experiments:read gets no readout
    no_metrics = httpx.post(
        service["url"] + "/mcp",
        json=initialize,
        timeout=30,
        headers={**headers, "Authorization": f"Bearer {service['tokens']['experimenter']}"},
    )
    assert no_metrics.status_code == 403 and "metrics:read" in no_metrics.json()["error"]["message"]
    readout = over_http(
        service, service["tokens"]["reader"], call("get_experiment_readout", {"experiment_id": "exp_checkout_redesign"})
    )
    assert readout.is_error and "experiments:read" in readout.content[0].text


def test_stdio_refuses_a_missing_or_revoked_token(service, tmp_path):
    proc = northstar(
        "mcp",
        "--warehouse",
        str(service["warehouse"]),
        check=False,
        env={"NORTHSTAR_DATA_DIR": str(service["data_dir"]), "NORTHSTAR_TOKEN": ""},
    )
    assert proc.returncode == 1 and "API token" in proc.stderr and proc.stdout == ""
    doomed = create_token(service["data_dir"], "doomed-mcp", "--scope", "metrics:read")

    async def revoked_midway(client):
        first = await client.call_tool("list_metrics", {"search": "active"})
        northstar("tokens", "revoke", "doomed-mcp", "--data-dir", str(service["data_dir"]))
        second = await client.call_tool("list_metrics", {"search": "active"})
        return first, second

    first, second = over_stdio(service, doomed, revoked_midway)
    assert not first.is_error and {m["name"] for m in first.structured_content["metrics"]} >= {"active_users"}
    assert second.is_error and "not valid" in second.content[0].text


def test_every_tool_call_is_audited_without_secrets(service):
    token = service["tokens"]["regional"]
    over_http(service, token, call("query_metrics", {"metrics": ["active_users"], "group_by": ["country"]}))
    over_stdio(service, token, call("query_metrics", {"metrics": ["actve_users"]}))
    lines = [json.loads(line) for line in (service["data_dir"] / "audit.jsonl").read_text().splitlines()]
    tool_calls = [e for e in lines if e.get("interface") == "mcp" and e.get("caller") == "regional"]
    http_ok = [
        e for e in tool_calls if e["transport"] == "http" and e["tool"] == "query_metrics" and e["status"] == "ok"
    ]
    stdio_bad = [e for e in tool_calls if e["transport"] == "stdio" and e["status"] == "unknown_metric"]
    assert http_ok and http_ok[-1]["arguments"] == {"metrics": ["active_users"], "group_by": ["country"]}
    assert http_ok[-1]["rows"] > 0 and stdio_bad
    assert token not in (service["data_dir"] / "audit.jsonl").read_text()


def test_the_other_tools_answer_as_their_routes_do(service):
    token = service["tokens"]["reader"]

    def rest(path, **params):
        return httpx.get(
            service["url"] + path, params=params, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ).json()

    async def calls(client):
        return {
            name: await client.call_tool(name, arguments)
            for name, arguments in {
                "get_quality_scorecard": {"period": "month"},
                "list_alerts": {"metric": "crashes", "limit": 3},
                "list_saved_queries": {"search": "weekly"},
                "explain_query": {"metrics": ["active_users"], "group_by": ["country"]},
                "get_metrics_compiled_sql": {"metrics": ["active_users"], "group_by": ["country"]},
            }.items()
        }

    got = over_http(service, token, calls)
    assert got["get_quality_scorecard"].structured_content == rest("/v1/quality", period="month")
    alerts = rest("/v1/alerts", metric="crashes")["alerts"]
    newest = sorted(alerts, key=lambda a: a["date"], reverse=True)[:3]
    assert got["list_alerts"].structured_content["alerts"] == newest
    assert got["list_alerts"].structured_content["total"] == len(alerts)
    assert all("weekly" in q["name"] for q in got["list_saved_queries"].structured_content["saved_queries"])
    compiled = httpx.post(
        service["url"] + "/v1/compile",
        json={"metrics": ["active_users"], "group_by": ["country"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    ).json()
    assert got["get_metrics_compiled_sql"].structured_content["sql"] == compiled["sql"]
    assert got["explain_query"].structured_content["explanation"] == compiled["explanation"]
