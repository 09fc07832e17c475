"""API tokens, scopes, row-level policies and the audit log, over HTTP against the real service.

The secured server serves the session's sample warehouse from its own data directory, where
tokens are created with the real `northstar tokens` command; expected rows come from the
hand-written oracle over the landing files.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import httpx
import pytest

from api.auth import AuditLog
from tests.conftest import Server, free_port, northstar
from tests.oracle import Oracle, hand_conversion


def create_token(data_dir: Path, name: str, *options: str) -> str:
    proc = northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("secured")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    oracle = Oracle(built_warehouse.landing_dir)
    region = oracle.sql(
        "select region, count(*) from src_events where region is not null group by 1 order by 2 desc limit 1"
    )[0][0]
    tokens = {
        "reader": create_token(data_dir, "reader", "--scope", "metrics:read"),
        "experimenter": create_token(data_dir, "experimenter", "--scope", "experiments:read"),
        "admin": create_token(data_dir, "admin", "--scope", "admin"),
        "regional": create_token(
            data_dir,
            "regional",
            "--scope",
            "metrics:read",
            "--scope",
            "experiments:read",
            "--row-filter",
            f"region={region}",
        ),
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
    # the secret part (url-safe base64: it may itself hold underscores)
    assert all(token.split("_", 2)[2] not in text for token in secured["tokens"].values())
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


def test_a_revoked_token_is_refused_on_a_kept_alive_connection(secured):
    token = create_token(secured["data_dir"], "kept", "--scope", "metrics:read")
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    with httpx.Client(
        base_url=secured["url"], headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=60
    ) as client:
        before = client.get("/v1/metrics")
        assert before.status_code == 200
        northstar("tokens", "revoke", "kept", "--data-dir", str(secured["data_dir"]))
        after = client.get("/v1/metrics")
        assert after.status_code == 401
        # the same TCP connection carried both requests
        address = lambda r: r.extensions["network_stream"].get_extra_info("client_addr")  # noqa: E731
        assert address(before) == address(after)


def test_an_answer_asked_again_is_given_only_to_callers_the_route_admits(secured):
    """A request sent again byte for byte is answered from its stored bytes before routing
    (api/answer_cache.py): the caller is still checked every time, so a row policy, a token
    without the scope, no token and a revoked token get what the route gives them."""
    tokens, data_dir = secured["tokens"], secured["data_dir"]
    token = create_token(data_dir, "repeater", "--scope", "metrics:read")
    body = {"metrics": ["active_users"], "group_by": ["region"], "start": "2024-01-06"}  # asked by no other test
    first = call(secured, token, "POST", "/v1/query", json=body)
    again = call(secured, token, "POST", "/v1/query", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["meta"]["cached"] is False and again.json()["meta"]["cached"] is True
    assert len({row[0] for row in again.json()["rows"]}) > 1
    regional = call(secured, tokens["regional"], "POST", "/v1/query", json=body)
    assert regional.status_code == 200 and {row[0] for row in regional.json()["rows"]} == {secured["region"]}
    # A row policy allowed one query at a time is not counted twice on its way to the route.
    single = create_token(
        data_dir,
        "single",
        "--scope",
        "metrics:read",
        "--row-filter",
        f"region={secured['region']}",
        "--max-concurrent",
        "1",
    )
    for _ in range(2):
        assert call(secured, single, "POST", "/v1/query", json=body).status_code == 200
    assert call(secured, tokens["experimenter"], "POST", "/v1/query", json=body).status_code == 403
    assert call(secured, None, "POST", "/v1/query", json=body).status_code == 401
    # Each request asked again is in the audit log under its caller, with its body and rows.
    lines = [json.loads(line) for line in (data_dir / "audit.jsonl").read_text().splitlines()]
    mine = [e for e in lines if e["caller"] == "repeater" and e["path"] == "/v1/query"]
    assert [e["status"] for e in mine] == [200, 200]
    assert mine[1]["body"] == body and mine[1]["rows"] == str(len(again.json()["rows"]))
    northstar("tokens", "revoke", "repeater", "--data-dir", str(data_dir))
    assert call(secured, token, "POST", "/v1/query", json=body).status_code == 401


def _active_users_by_country(secured, token: str, where: list[dict] | None = None) -> dict:
    body = {"metrics": ["active_users"], "group_by": ["country"], "where": where or []}
    response = call(secured, token, "POST", "/v1/query", json=body)
    assert response.status_code == 200, response.text
    return {row[0]: row[1] for row in response.json()["rows"]}


def test_row_policy_restricts_every_answer(secured):
    region, oracle = secured["region"], secured["oracle"]
    expected = {
        row[0]: row[1]
        for row in oracle.query(["active_users"], ["country"], where=[{"field": "region", "op": "=", "value": region}])
    }
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
    response = call(
        secured,
        token,
        "GET",
        "/v1/query",
        params={
            "metrics": "active_users",
            "group_by": "region",
            "where": f"{{{{ Dimension('user__account__region') }}}} = '{others[0]}' or 1 = 1",
        },
    )
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
            readout = call(
                secured,
                token,
                "GET",
                f"/v1/experiments/{experiment_id}/readout",
                params={"metrics": "conversion", "cuped": cuped},
            )
            assert readout.status_code == 200, readout.text
            row = readout.json()["results"][0]
            (control,) = (v for v in expected if v == readout.json()["control_variant"])
            assert row["control_users"] == expected[control][0]
            assert row["control_mean"] == pytest.approx(expected[control][1], rel=1e-12)
            assert row["variant_mean"] == pytest.approx(expected[row["variant"]][1], rel=1e-12)
    # A slice by the policy's own field shows nothing beyond it.
    sliced = call(
        secured,
        token,
        "GET",
        f"/v1/experiments/{experiment_id}/readout",
        params={"metrics": "conversion", "group_by": "region"},
    )
    assert sliced.status_code == 200, sliced.text
    assert {r["slice"]["region"] for r in sliced.json()["results"]} == {region}


def test_scorecards_answer_a_restricted_token_through_its_policy(secured):
    """Quality, releases and launches answer from the policy's rows (checked against the
    oracle with the policy as a filter); what the policy cannot restrict (incidents have no
    region) is withheld and named, never answered from every region."""
    token, admin, region, oracle = (
        secured["tokens"]["regional"],
        secured["tokens"]["admin"],
        secured["region"],
        secured["oracle"],
    )
    in_region = [{"field": "region", "op": "=", "value": region}]

    card = call(secured, token, "GET", "/v1/quality", params={"period": "week"})
    assert card.status_code == 200, card.text
    card = card.json()
    assert {w["metric"] for w in card["withheld"]} == {"incidents", "mttr_hours"}
    assert all("region" in w["reason"] for w in card["withheld"])
    kpis = {k["metric"]: k for k in card["kpis"] if k["severity"] is None}
    assert not {"incidents", "mttr_hours"} & set(kpis)
    metrics = ["crash_free_user_rate", "errors_per_1k_events"]
    expected = {row[0]: row[1:] for row in oracle.query(metrics, ["metric_time__week"], where=in_region)}
    for i, metric in enumerate(metrics):
        for period in kpis[metric]["periods"]:
            value = expected.get(period["period_start"], (None,) * len(metrics))[i]
            assert period["value"] == (pytest.approx(value, rel=1e-9) if value is not None else None), (metric, period)
    everyone = call(secured, admin, "GET", "/v1/quality", params={"period": "week"}).json()
    assert everyone["withheld"] == [] and everyone["kpis"] != card["kpis"]

    release = call(secured, token, "GET", "/v1/releases/android/5.3.0")
    assert release.status_code == 200, release.text
    release = release.json()
    window = [
        {"field": "platform", "op": "=", "value": "android"},
        {"field": "app_version", "op": "=", "value": "5.3.0"},
        *in_region,
    ]
    ((users, crashed),) = oracle.query(
        ["active_users", "crashed_users"], where=window, start=release["window_start"], end=release["window_end"]
    )
    assert (release["current"]["active_users"], release["current"]["crashed_users"]) == (users, crashed or 0)
    assert users < call(secured, admin, "GET", "/v1/releases/android/5.3.0").json()["current"]["active_users"]

    launches = call(secured, token, "GET", "/v1/launches")
    assert launches.status_code == 200  # the launch catalog describes the product: read whole
    assert launches.json() == call(secured, admin, "GET", "/v1/launches").json()
    launch = launches.json()["launches"][0]
    scorecard = call(secured, token, "GET", f"/v1/launches/{launch['launch_id']}/scorecard")
    assert scorecard.status_code == 200, scorecard.text
    scorecard = scorecard.json()
    assert scorecard["incidents_caused_by_launch"] is None and scorecard["feature_incidents"] == []
    assert {w["metric"] for w in scorecard["withheld"]} == {"incidents"}
    feature = [
        {"field": "feature_key", "op": "=", "value": launch["feature_key"]},
        {"field": "platform", "op": "in", "values": scorecard["platforms"]},
        *in_region,
    ]
    daily = dict(oracle.query(["feature_users"], ["metric_time__day"], where=feature))
    assert scorecard["adoption"] and all(
        day["feature_users"] == daily.get(day["date"], 0) for day in scorecard["adoption"]
    )
    assert (
        scorecard["adopters"]
        < call(secured, admin, "GET", f"/v1/launches/{launch['launch_id']}/scorecard").json()["adopters"]
    )

    # Alerts are checks of every region's totals: nothing in them can be narrowed to one region.
    alerts = call(secured, token, "GET", "/v1/alerts")
    assert alerts.status_code == 403 and alerts.json()["error"]["code"] == "forbidden_by_policy"


def test_audit_log_says_who_asked_what(secured):
    token = secured["tokens"]["reader"]
    call(secured, token, "POST", "/v1/query", json={"metrics": ["events"], "group_by": ["platform"]})
    call(secured, None, "GET", "/v1/metrics")
    lines = [json.loads(line) for line in (secured["data_dir"] / "audit.jsonl").read_text().splitlines()]
    query = [
        e
        for e in lines
        if e["path"] == "/v1/query" and e["caller"] == "reader" and e["body"] and e["body"]["metrics"] == ["events"]
    ][-1]
    assert query["status"] == 200 and int(query["rows"]) > 0 and query["ms"] > 0
    assert query["token_id"] and token not in json.dumps(lines)
    assert any(e["status"] == 401 and e["path"] == "/v1/metrics" and e["caller"] is None for e in lines)


def test_audit_log_is_private_and_keeps_no_secret(secured):
    token = secured["tokens"]["reader"]
    call(secured, token, "GET", f"/v1/query?metrics=events&group_by=platform&access_token={token}&password=hunter2")
    call(
        secured,
        token,
        "POST",
        "/v1/query",
        json={
            "metrics": ["events"],
            "group_by": ["country"],
            "where": [{"field": "country", "op": "=", "value": token}],
        },
    )
    path = secured["data_dir"] / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert all(t.split("_", 2)[2] not in text for t in secured["tokens"].values()) and "hunter2" not in text
    lines = [json.loads(line) for line in text.splitlines()]
    logged = [e for e in lines if e["query"] and "access_token" in e["query"]][-1]
    assert "metrics=events" in logged["query"] and "access_token=[redacted]" in logged["query"]
    assert "password=[redacted]" in logged["query"]


def test_audit_log_rotates_by_size(tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)  # a log from before: narrowed on open
    log = AuditLog(path, max_bytes=1000, files=2)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for n in range(100):
        log.write(n=n, pad="x" * 40)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == ["audit.jsonl", "audit.jsonl.1", "audit.jsonl.2"]
    assert all(p.stat().st_size <= 1000 and stat.S_IMODE(p.stat().st_mode) == 0o600 for p in tmp_path.iterdir())
    numbers = [
        json.loads(line)["n"]
        for name in ("audit.jsonl.2", "audit.jsonl.1", "audit.jsonl")
        for line in (tmp_path / name).read_text().splitlines()
    ]
    assert numbers == list(range(100 - len(numbers), 100))  # the newest lines, in order, none lost in between


def _until(check, seconds: float = 1.5):
    """`check()` once it is true, polling for at most `seconds` (the server rereads the store
    when it changes); the last answer otherwise."""
    deadline = time.monotonic() + seconds
    while True:
        answer = check()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


def test_a_broken_or_emptied_token_store_fails_closed(built_warehouse, tmp_path):
    psycopg = pytest.importorskip("psycopg")
    (tmp_path / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    keeper = create_token(tmp_path, "keeper", "--scope", "metrics:read")
    store = tmp_path / "tokens.json"
    server = Server(tmp_path / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(tmp_path)}, sql_port=free_port())
    secured = {"url": server.base_url}
    dsn = f"host=127.0.0.1 port={server.sql_port} dbname=northstar user=keeper connect_timeout=10"

    def status(token: str | None = keeper) -> tuple[int, dict]:
        response = call(secured, token, "GET", "/v1/metrics")
        return response.status_code, response.json()

    try:
        server.wait_ready()
        assert status()[0] == 200
        for content, cause in [
            ('{"tokens": [', "not valid JSON"),
            ("", "empty"),
            ('{"tokens": [{"id": "x"}]}', "record 1"),
            (None, "missing"),
        ]:
            if content is None:
                store.unlink()
            else:
                store.write_text(content)
            code, body = _until(lambda: (s := status())[0] == 503 and s) or status()
            assert code == 503, (content, body)
            assert body["error"]["code"] == "token_store_unavailable" and cause in body["error"]["message"]
            assert status(None)[0] == 503
            assert call(secured, None, "GET", "/healthz").status_code == 200
            with pytest.raises(psycopg.OperationalError, match="cannot check API tokens"):
                psycopg.connect(dsn + f" password={keeper}")
        # No token at all (a hand-written empty list, or every token revoked): closed, 401.
        store.write_text('{"tokens": []}')
        assert _until(lambda: status()[0] == 401) and status(None)[0] == 401
        fresh = create_token(tmp_path, "fresh", "--scope", "metrics:read")
        assert _until(lambda: status(fresh)[0] == 200)
        northstar("tokens", "revoke", "fresh", "--data-dir", str(tmp_path))
        assert status(fresh)[0] == 401 and status(None)[0] == 401
    finally:
        server.stop()

    # A server starting on a broken store says so and answers 503.
    store.write_text("garbage")
    server = Server(tmp_path / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(tmp_path)})
    secured["url"] = server.base_url
    try:
        server.wait_ready()
        assert status(None)[0] == 503 and "not valid JSON" in status(None)[1]["error"]["message"]
        assert "token store unusable" in server.output()
    finally:
        server.stop()

    # --open is the only open mode, and says so at start.
    server = Server(tmp_path / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(tmp_path), "NORTHSTAR_OPEN": "1"})
    secured["url"] = server.base_url
    try:
        server.wait_ready()
        assert status(None)[0] == 200
        assert (
            "open mode (--open)" in server.output() and "tokens of this data directory are ignored" in server.output()
        )
    finally:
        server.stop()


def test_open_mode_refuses_a_public_interface(built_warehouse, tmp_path):
    proc = northstar(
        "serve",
        "--warehouse",
        str(built_warehouse.warehouse),
        "--host",
        "0.0.0.0",
        "--port",
        "1",
        "--sql-port",
        "0",
        env={"NORTHSTAR_DATA_DIR": str(tmp_path)},
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no API token" in proc.stderr and "--allow-open" in proc.stderr
    explicit = northstar(
        "serve",
        "--warehouse",
        str(built_warehouse.warehouse),
        "--host",
        "0.0.0.0",
        "--open",
        "--port",
        "1",
        "--sql-port",
        "0",
        env={"NORTHSTAR_DATA_DIR": str(tmp_path)},
        check=False,
        timeout=60,
    )
    assert explicit.returncode == 1 and "--open would be open" in explicit.stderr and "--allow-open" in explicit.stderr
