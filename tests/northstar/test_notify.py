"""Notifications end to end: the real `northstar build` of landing data with a planted anomaly
(a day of support tickets far above its band) and a planted SLO breach (a week with too many
incidents) posts to a local HTTP sink standing in for the webhook and Slack endpoints (loopback
only): exactly one message for each, correctly signed; a second build with no change posts
nothing; a failing endpoint is retried and reported; a destination bound to a restricted token
receives only its rows. Expected numbers come from the landing files and the hand-written oracle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx
import pytest

from tests.api.test_auth import create_token
from tests.conftest import SAMPLE, Server, northstar
from tests.oracle import Oracle

SECRET = "test-signing-secret"
SPIKE_DAY = dt.date(2026, 4, 3)
SPIKE_TICKETS = 80
BREACH_WEEK = dt.date(2026, 3, 23)
PLANTED_INCIDENTS = 5
MAX_ATTEMPTS = 3


class Sink:
    """A loopback HTTP server recording every POST; `/fail` always answers 500."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
                self.send_response(500 if self.path == "/fail" else 200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def at(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def plant(landing: Path) -> None:
    """A day of support tickets far above its band, and a week with too many incidents."""
    tickets, incidents = landing / "support_tickets.parquet", landing / "incidents.parquet"
    con = duckdb.connect()
    con.execute(f"""copy (select * from read_parquet('{tickets}') union all
        select 'tkt_planted_' || lpad(cast(i as varchar), 3, '0'), account_id, user_id,
               timestamp '{SPIKE_DAY} 12:00:00' + i * interval 1 minute,
               timestamp '{SPIKE_DAY} 18:00:00', category, priority, feature_key
        from (select *, row_number() over (order by ticket_id) as i from read_parquet('{tickets}')
              where user_id is not null) where i <= {SPIKE_TICKETS}) to '{tickets}.new' (format parquet)""")
    con.execute(f"""copy (select * from read_parquet('{incidents}') union all
        select 'inc_planted_' || cast(i as varchar), 'sev4', timestamp '{BREACH_WEEK}' + i * interval 1 day,
               timestamp '{BREACH_WEEK}' + i * interval 1 day + interval 3 hour, null, null
        from range(1, {PLANTED_INCIDENTS + 1}) as r(i)) to '{incidents}.new' (format parquet)""")
    os.replace(f"{tickets}.new", tickets)
    os.replace(f"{incidents}.new", incidents)


@pytest.fixture(scope="module")
def notified(tmp_path_factory):
    root = tmp_path_factory.mktemp("notify")
    landing, data_dir = root / "landing", root / "data"
    shutil.copytree(SAMPLE, landing)
    plant(landing)
    data_dir.mkdir()
    oracle = Oracle(landing)
    region = oracle.sql("select region, count(*) from src_events where region is not null "
                        "group by 1 order by 2 desc limit 1")[0][0]
    regional = create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", f"region={region}")
    admin = create_token(data_dir, "admin", "--scope", "admin")
    sink = Sink()
    config = root / "northstar.yml"
    config.write_text(f"""
notify:
  destinations:
    ops: {{type: webhook, url: "{sink.url}/hook", secret_env: NS_TEST_NOTIFY_SECRET}}
    chat: {{type: slack, url_env: NS_TEST_SLACK_URL}}
    broken: {{type: webhook, url: "{sink.url}/fail"}}
    emea: {{type: webhook, url: "{sink.url}/emea", token: regional}}
  subscriptions:
    - {{name: tickets, event: anomaly_alerts, metrics: [tickets], to: [ops, chat]}}
    - {{name: incidents-slo, on: slo_status, metrics: [incidents], statuses: [breach], to: [ops, chat]}}
    - {{name: broken, event: slo_status, metrics: [incidents], to: [broken]}}
    - {{name: weekly, event: digest, metrics: [active_users], to: [emea]}}
""")
    env = {"NORTHSTAR_DATA_DIR": str(data_dir), "NORTHSTAR_NOTIFY_CONFIG": str(config),
           "NS_TEST_NOTIFY_SECRET": SECRET, "NS_TEST_SLACK_URL": f"{sink.url}/slack",
           "NORTHSTAR_NOTIFY_MAX_ATTEMPTS": str(MAX_ATTEMPTS), "NORTHSTAR_NOTIFY_BACKOFF_S": "0.05"}
    warehouse = data_dir / "northstar.duckdb"
    try:
        first = northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs", env=env)
        after_first = list(sink.requests)
        second = northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs", env=env)
        yield {"sink": sink, "first": after_first, "logs": (first.stderr, second.stderr), "landing": landing,
               "data_dir": data_dir, "warehouse": warehouse, "oracle": oracle, "region": region,
               "tokens": {"regional": regional, "admin": admin}, "env": env}
    finally:
        sink.close()


def webhook_bodies(requests: list[dict]) -> list[dict]:
    return [json.loads(r["body"]) for r in requests]


def test_the_planted_anomaly_and_breach_send_one_signed_message_each(notified):
    hook = [r for r in notified["first"] if r["path"] == "/hook"]
    bodies = webhook_bodies(hook)
    assert sorted(b["subject"] for b in bodies) == ["anomaly_alerts:tickets", "slo_status:incidents"]
    for request, body in zip(hook, bodies):
        headers = request["headers"]
        expected = hmac.new(SECRET.encode(), headers["x-northstar-timestamp"].encode() + b"." + request["body"],
                            hashlib.sha256).hexdigest()
        assert headers["x-northstar-signature"] == "v1=" + expected
        assert headers["x-northstar-id"] == body["id"] and body["schema"] == "northstar.notification/v1"
        assert body["link"].startswith("http") and body["restricted_to"] is None
    oracle = notified["oracle"]
    tickets = {str(d)[:10]: v for d, v in oracle.query(["tickets"], ["metric_time__day"])}[SPIKE_DAY.isoformat()]
    incidents = {str(w)[:10]: v for w, v in oracle.query(["incidents"], ["metric_time__week"])}[BREACH_WEEK.isoformat()]
    with duckdb.connect() as con:  # the planted rows are in the landing files the build read
        planted = con.execute(f"select count(*) from read_parquet('{notified['landing']}/support_tickets.parquet') "
                              "where ticket_id like 'tkt_planted_%'").fetchone()[0]
    assert planted == SPIKE_TICKETS
    anomaly = next(b for b in bodies if b["kind"] == "anomaly_alerts")
    newest = anomaly["figures"][0]
    assert newest["period"] == SPIKE_DAY.isoformat() and newest["value"] == tickets >= SPIKE_TICKETS
    assert newest["status"] == "above" and newest["value"] > newest["upper_bound"]
    breach = next(b for b in bodies if b["kind"] == "slo_status")
    figure = breach["figures"][0]
    assert figure["period"] == BREACH_WEEK.isoformat() and figure["value"] == incidents >= PLANTED_INCIDENTS
    assert figure["status"] == "breach" and "BREACH" in breach["title"]


def test_slack_gets_the_same_news_in_its_format(notified):
    slack = [r for r in notified["first"] if r["path"] == "/slack"]
    assert len(slack) == 2
    for request in slack:
        message = json.loads(request["body"])
        assert set(message) == {"text", "blocks"} and message["blocks"][0]["type"] == "header"
        assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message["blocks"])
        assert "x-northstar-signature" not in request["headers"]  # no secret configured for it
    texts = " ".join(json.loads(r["body"])["text"] for r in slack)
    assert "Support tickets" in texts or "tickets" in texts.lower()


def test_a_second_build_with_no_change_sends_nothing(notified):
    sink = notified["sink"]
    for path in ("/hook", "/slack", "/emea"):
        assert len(sink.at(path)) == len([r for r in notified["first"] if r["path"] == path]), path


def test_a_failing_endpoint_is_retried_then_reported(notified):
    failing = notified["sink"].at("/fail")
    # every build's run tries MAX_ATTEMPTS times with the same idempotency key
    assert len(failing) == 2 * MAX_ATTEMPTS
    assert len({r["headers"]["x-northstar-id"] for r in failing}) == 1
    assert "failed" in notified["logs"][0]
    server = Server(notified["warehouse"], env={"NORTHSTAR_DATA_DIR": str(notified["data_dir"])})
    try:
        server.wait_ready()
        headers = {"Authorization": f"Bearer {notified['tokens']['admin']}"}
        listed = httpx.get(server.base_url + "/v1/notifications", headers=headers, timeout=30).json()["notifications"]
        by_destination = {}
        for n in listed:
            by_destination.setdefault(n["destination"], []).append(n)
        assert [n["status"] for n in by_destination["broken"]] == ["failed"]
        assert by_destination["broken"][0]["attempts"] == 2 * MAX_ATTEMPTS
        assert by_destination["broken"][0]["http_status"] == 500
        assert all(n["status"] == "sent" and n["attempts"] == 1 for d in ("ops", "chat", "emea")
                   for n in by_destination[d])
        assert len(by_destination["ops"]) == 2
        regional = {"Authorization": f"Bearer {notified['tokens']['regional']}"}
        assert httpx.get(server.base_url + "/v1/notifications", headers=regional, timeout=30).status_code == 403
    finally:
        server.stop()


def test_a_restricted_destination_receives_only_its_rows(notified):
    emea = webhook_bodies(notified["sink"].at("/emea"))
    assert len(emea) == 1 and emea[0]["kind"] == "digest"
    body = emea[0]
    assert body["restricted_to"] == f"region = {notified['region']!r}" or notified["region"] in body["restricted_to"]
    figure = body["figures"][0]
    week = dt.date.fromisoformat(figure["period"])
    region_filter = [{"field": "region", "op": "=", "value": notified["region"]}]
    oracle = notified["oracle"]
    restricted = {str(w)[:10]: v for w, v in oracle.query(["active_users"], ["metric_time__week"], where=region_filter)}
    everyone = {str(w)[:10]: v for w, v in oracle.query(["active_users"], ["metric_time__week"])}
    assert figure["value"] == restricted[week.isoformat()] != everyone[week.isoformat()]
    assert figure["comparison"] == restricted[(week - dt.timedelta(days=7)).isoformat()]
    # the week is the newest complete one: the data runs past its end
    newest = oracle.sql("select cast(max(metric_time) as date) from src_events")[0][0]
    assert week + dt.timedelta(days=7) <= newest + dt.timedelta(days=1) < week + dt.timedelta(days=14)


def test_dry_run_prints_what_would_be_sent_and_sends_nothing(notified):
    before = len(notified["sink"].requests)
    proc = northstar("notify", "run", "--warehouse", str(notified["warehouse"]), "--dry-run",
                     env=notified["env"], check=False)
    assert proc.returncode == 0, proc.stderr
    planned = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # only the failed delivery is still due
    assert [(p["destination"], p["status"]) for p in planned] == [("broken", "would_send")]
    assert len(notified["sink"].requests) == before
