"""API tokens, scopes, row-level policies and the audit log, over HTTP against the real service.

The secured server serves the session's sample warehouse from its own data directory, where
tokens are created with the real `northstar tokens` command; expected rows come from the
hand-written oracle over the landing files.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from conftest import Server, northstar  # noqa: E402
from oracle import Oracle, hand_conversion  # noqa: E402


def create_token(data_dir: Path, name: str, *options: str) -> str:
    proc = northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("secured")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    oracle = Oracle(built_warehouse.landing_dir)
    region = oracle.sql("select region, count(*) from src_events where region is not null "
                        "group by 1 order by 2 desc limit 1")[0][0]
    tokens = {
        "reader": create_token(data_dir, "reader", "--scope", "metrics:read"),
        "experimenter": create_token(data_dir, "experimenter", "--scope", "experiments:read"),
        "admin": create_token(data_dir, "admin", "--scope", "admin"),
        "regional": create_token(data_dir, "regional", "--scope", "metrics:read", "--scope", "experiments:read",
                                 "--row-filter", f"region={region}"),
        "doomed": create_token(data_dir, "doomed", "--scope", "metrics:read"),
    }
    server = Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)})
    try:
        server.wait_ready()
        yield {"url": server.base_url, "tokens": tokens, "data_dir": data_dir, "region": region, "oracle": oracle}
    finally:
        server.stop()


def call(secured, token: str | None, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, secured["url"] + path, headers=headers, timeout=60, **kwargs)


QUERY = {"metrics": ["active_users"], "group_by": ["region"]}


def test_tokens_are_stored_hashed_and_private(secured):
    store = secured["data_dir"] / "tokens.json"
    text = store.read_text()
    assert all(token not in text for token in secured["tokens"].values())
    assert all(token.split("_")[2] not in text for token in secured["tokens"].values())
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    listing = northstar("tokens", "list", "--data-dir", str(secured["data_dir"])).stdout
    assert "reader" in listing and "sha256" not in listing


def test_no_token_or_a_wrong_one_is_refused(secured):
    missing = call(secured, None, "POST", "/v1/query", json=QUERY)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    forged = secured["tokens"]["reader"][:-4] + "AAAA"
    assert call(secured, forged, "POST", "/v1/query", json=QUERY).status_code == 401
    assert call(secured, "not-a-token", "GET", "/v1/metrics").status_code == 401
    # Probes stay open.
    assert call(secured, None, "GET", "/healthz").status_code == 200


def test_scopes(secured):
    tokens = secured["tokens"]
    assert call(secured, tokens["reader"], "POST", "/v1/query", json=QUERY).status_code == 200
    denied = call(secured, tokens["reader"], "GET", "/v1/experiments")
    assert denied.status_code == 403 and "experiments:read" in denied.json()["error"]["message"]
    assert call(secured, tokens["experimenter"], "GET", "/v1/experiments").status_code == 200
    assert call(secured, tokens["experimenter"], "GET", "/v1/metrics").status_code == 403
    for path in ("/v1/metrics", "/v1/experiments"):
        assert call(secured, tokens["admin"], "GET", path).status_code == 200


def test_a_revoked_token_stops_working_on_the_running_server(secured):
    token = secured["tokens"]["doomed"]
    assert call(secured, token, "GET", "/v1/metrics").status_code == 200
    northstar("tokens", "revoke", "doomed", "--data-dir", str(secured["data_dir"]))
    assert call(secured, token, "GET", "/v1/metrics").status_code == 401


def _active_users_by_country(secured, token: str, where: list[dict] | None = None) -> dict:
    body = {"metrics": ["active_users"], "group_by": ["country"], "where": where or []}
    response = call(secured, token, "POST", "/v1/query", json=body)
    assert response.status_code == 200, response.text
    return {row[0]: row[1] for row in response.json()["rows"]}


def test_row_policy_restricts_every_answer(secured):
    region, oracle = secured["region"], secured["oracle"]
    expected = {row[0]: row[1] for row in oracle.query(
        ["active_users"], ["country"], where=[{"field": "region", "op": "=", "value": region}])}
    everyone = _active_users_by_country(secured, secured["tokens"]["reader"])
    restricted = _active_users_by_country(secured, secured["tokens"]["regional"])
    assert restricted == expected and restricted != everyone

    by_region = call(secured, secured["tokens"]["regional"], "POST", "/v1/query", json=QUERY).json()["rows"]
    assert {row[0] for row in by_region} == {region}


def test_no_request_can_widen_a_row_policy(secured):
    region, token = secured["region"], secured["tokens"]["regional"]
    others = [r for (r,) in secured["oracle"].sql("select distinct region from accounts") if r != region]
    assert _active_users_by_country(secured, token, [{"field": "region", "op": "in", "values": others}]) == {}
    widened = _active_users_by_country(secured, token, [{"field": "region", "op": "in", "values": [region, *others]}])
    assert widened == _active_users_by_country(secured, token)
    # A filter string that tries to OR its way out is ANDed with the policy all the same.
    response = call(secured, token, "GET", "/v1/query", params={
        "metrics": "active_users", "group_by": "region",
        "where": f"{{{{ Dimension('user__account__region') }}}} = '{others[0]}' or 1 = 1"})
    assert response.status_code == 200, response.text
    assert {row[0] for row in response.json()["rows"]} <= {region}


def test_row_policy_refuses_what_it_cannot_restrict(secured):
    token = secured["tokens"]["regional"]
    # Incidents have no region: answering would ignore the policy.
    incidents = call(secured, token, "POST", "/v1/query", json={"metrics": ["incidents"]})
    assert incidents.status_code == 403
    assert incidents.json()["error"]["code"] == "forbidden_by_policy"
    assert "region" in incidents.json()["error"]["message"]
    # The compiled SQL carries the policy as a bound value.
    compiled = call(secured, token, "POST", "/v1/compile", json=QUERY).json()
    assert secured["region"] in compiled["parameters"].values()
    assert f"'{secured['region']}'" not in compiled["parameterized_sql"]


def test_a_restricted_readout_counts_only_the_users_the_policy_allows(secured):
    region, oracle = secured["region"], secured["oracle"]
    token, admin = secured["tokens"]["regional"], secured["tokens"]["admin"]
    everyone = {e["experiment_id"]: e for e in call(secured, admin, "GET", "/v1/experiments").json()["experiments"]}
    listed = call(secured, token, "GET", "/v1/experiments")
    assert listed.status_code == 200, listed.text
    for experiment in listed.json()["experiments"]:
        experiment_id = experiment["experiment_id"]
        expected = hand_conversion(oracle, experiment_id, region)
        assert {v["variant"]: v["users"] for v in experiment["variants"]} == {k: n for k, (n, _) in expected.items()}
        assert experiment["users"] < everyone[experiment_id]["users"]
        # CUPED off takes the direct statement, on (default) the build's per-user table: both restricted.
        for cuped in ("false", "true"):
            readout = call(secured, token, "GET", f"/v1/experiments/{experiment_id}/readout",
                           params={"metrics": "conversion", "cuped": cuped})
            assert readout.status_code == 200, readout.text
            row = readout.json()["results"][0]
            control, = (v for v in expected if v == readout.json()["control_variant"])
            assert row["control_users"] == expected[control][0]
            assert row["control_mean"] == pytest.approx(expected[control][1], rel=1e-12)
            assert row["variant_mean"] == pytest.approx(expected[row["variant"]][1], rel=1e-12)
    # A slice by the policy's own field shows nothing beyond it.
    sliced = call(secured, token, "GET", f"/v1/experiments/{experiment_id}/readout",
                  params={"metrics": "conversion", "group_by": "region"})
    assert sliced.status_code == 200, sliced.text
    assert {r["slice"]["region"] for r in sliced.json()["results"]} == {region}


def test_routes_a_row_policy_cannot_restrict_refuse_the_restricted_token(secured):
    """Every data route either answers through the policy or refuses: the scorecards and alerts
    read marts that have no row-level filter, so a restricted token gets 403 there."""
    token, admin = secured["tokens"]["regional"], secured["tokens"]["admin"]
    launch = call(secured, admin, "GET", "/v1/launches").json()["launches"][0]["launch_id"]
    for path in ("/v1/quality?period=week", "/v1/releases", "/v1/releases/android/5.3.0",
                 f"/v1/launches/{launch}/scorecard", "/v1/alerts", "/v1/launches"):
        assert call(secured, admin, "GET", path).status_code == 200, path
        response = call(secured, token, "GET", path)
        assert response.status_code == 403, (path, response.status_code, response.text[:300])
        assert response.json()["error"]["code"] == "forbidden_by_policy"


def test_audit_log_says_who_asked_what(secured):
    token = secured["tokens"]["reader"]
    call(secured, token, "POST", "/v1/query", json={"metrics": ["events"], "group_by": ["platform"]})
    call(secured, None, "GET", "/v1/metrics")
    lines = [json.loads(line) for line in (secured["data_dir"] / "audit.jsonl").read_text().splitlines()]
    query = [e for e in lines if e["path"] == "/v1/query" and e["caller"] == "reader"
             and e["body"] and e["body"]["metrics"] == ["events"]][-1]
    assert query["status"] == 200 and int(query["rows"]) > 0 and query["ms"] > 0
    assert query["token_id"] and token not in json.dumps(lines)
    assert any(e["status"] == 401 and e["path"] == "/v1/metrics" and e["caller"] is None for e in lines)


def test_open_mode_refuses_a_public_interface(built_warehouse, tmp_path):
    proc = northstar("serve", "--warehouse", str(built_warehouse.warehouse), "--host", "0.0.0.0",
                     "--port", "1", "--sql-port", "0", env={"NORTHSTAR_DATA_DIR": str(tmp_path)}, check=False,
                     timeout=60)
    assert proc.returncode == 1
    assert "no API token" in proc.stderr and "--allow-open" in proc.stderr
