"""Notifications end to end: the real `northstar build` of landing data with a planted anomaly
(a day of support tickets far above its band), a planted SLO breach (a week with too many
incidents), planted experiment assignments (one experiment topped up past its planned sample
size, one given a sample ratio mismatch), the sample's regressed release (android 5.3.0) and its
launches posts to a local HTTP sink standing in for the webhook and Slack endpoints and mails a
local SMTP sink (aiosmtpd; loopback only): exactly one message for each, correctly signed; a
second build with no change sends nothing; a failing endpoint is retried and reported; a
destination bound to a restricted token receives only its rows. Expected numbers come from the
landing files and the hand-written oracle.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
import threading
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import httpx
import pytest
from aiosmtpd.controller import Controller
from scipy.stats import chisquare

from metrics.errors import InvalidQuery
from northstar.notify import config as notify_config
from tests.api.test_alerts import expected_alerts
from tests.api.test_auth import create_token
from tests.conftest import SAMPLE, Server, free_port, northstar
from tests.oracle import EXPERIMENT_POPULATION, Oracle

SECRET = "test-signing-secret"
SPIKE_DAY = dt.date(2026, 4, 3)
SPIKE_TICKETS = 80
BREACH_WEEK = dt.date(2026, 3, 23)
PLANTED_INCIDENTS = 5
MAX_ATTEMPTS = 3
TOPPED_UP = "exp_checkout_redesign"  # its settings plan 'conversion' at mde 0.3: some 800 users per arm
TOPPED_UP_USERS = 150  # per arm
SKEWED = "exp_onboarding_tooltip"
SKEWED_USERS = 300  # all in treatment
LAUNCH = "lch_004"  # launched 2026-03-10; the sample's data ends 2026-04-04: day 7 and 14, not 28


class Sink:
    """A loopback HTTP server recording every POST; `/fail` always answers 500."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                )
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


class SmtpSink:
    """A loopback SMTP server (aiosmtpd) keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(
                    (tuple(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
                )
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


def plant(landing: Path) -> None:
    """A day of support tickets far above its band, a week with too many incidents, and
    assignments: TOPPED_UP_USERS more users in each arm of TOPPED_UP, SKEWED_USERS more in the
    treatment arm of SKEWED (users not yet in the experiment, assigned within its dates)."""
    tickets, incidents = landing / "support_tickets.parquet", landing / "incidents.parquet"
    assignments, users = landing / "experiment_assignments.parquet", landing / "users.parquet"
    con = duckdb.connect()
    newcomers = f"""select user_id, row_number() over (order by user_id) as i from read_parquet('{users}')
        where is_internal is not true and user_id not in (select user_id from read_parquet('{assignments}')
                                                        where experiment_id = ?)"""
    con.execute(
        f"""copy (select * from read_parquet('{assignments}')
        union all select ?, user_id, case when i % 2 = 0 then 'control' else 'treatment' end,
                         timestamp '2026-01-20 12:00:00' + i * interval 1 minute
        from ({newcomers}) where i <= {2 * TOPPED_UP_USERS}
        union all select ?, user_id, 'treatment', timestamp '2026-01-14 12:00:00' + i * interval 1 minute
        from ({newcomers}) where i <= {SKEWED_USERS}) to '{assignments}.new' (format parquet)""",
        [TOPPED_UP, TOPPED_UP, SKEWED, SKEWED],
    )
    os.replace(f"{assignments}.new", assignments)
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
    region = oracle.sql(
        "select region, count(*) from src_events where region is not null group by 1 order by 2 desc limit 1"
    )[0][0]
    regional = create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", f"region={region}")
    admin = create_token(data_dir, "admin", "--scope", "admin")
    sink, smtp = Sink(), SmtpSink()
    config = root / "northstar.yml"
    config.write_text(f"""
notify:
  destinations:
    ops: {{type: webhook, url: "{sink.url}/hook", secret_env: NS_TEST_NOTIFY_SECRET}}
    chat: {{type: slack, url_env: NS_TEST_SLACK_URL}}
    broken: {{type: webhook, url: "{sink.url}/fail"}}
    emea: {{type: webhook, url: "{sink.url}/emea", token: regional}}
    events: {{type: webhook, url: "{sink.url}/events", secret_env: NS_TEST_NOTIFY_SECRET}}
    mail: {{type: email, host: 127.0.0.1, port: {smtp.port}, security: none, from: northstar@example.com,
           to: [leads@example.com, ops@example.com]}}
  subscriptions:
    - {{name: tickets, event: anomaly_alerts, metrics: [tickets], to: [ops, chat]}}
    - {{name: incidents-slo, on: slo_status, metrics: [incidents], statuses: [breach], to: [ops, chat]}}
    - {{name: broken, event: slo_status, metrics: [incidents], to: [broken]}}
    - {{name: weekly, event: digest, metrics: [active_users], to: [emea]}}
    - {{name: tickets-emea, event: anomaly_alerts, metrics: [tickets], to: [emea]}}
    - {{name: releases, event: regressed_release, to: [events, mail]}}
    - {{name: launch, event: launch_scorecard, launches: [{LAUNCH}], to: [events, mail]}}
    - {{name: experiments, event: [experiment_sample_reached, experiment_health], to: [events, mail, emea]}}
""")
    env = {
        "NORTHSTAR_DATA_DIR": str(data_dir),
        "NORTHSTAR_NOTIFY_CONFIG": str(config),
        "NS_TEST_NOTIFY_SECRET": SECRET,
        "NS_TEST_SLACK_URL": f"{sink.url}/slack",
        "NORTHSTAR_NOTIFY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "NORTHSTAR_NOTIFY_BACKOFF_S": "0.05",
    }
    warehouse = data_dir / "northstar.duckdb"
    try:
        first = northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs", env=env)
        after_first, mail_first = list(sink.requests), list(smtp.messages)
        second = northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs", env=env)
        yield {
            "sink": sink,
            "first": after_first,
            "smtp": smtp,
            "mail_first": mail_first,
            "logs": (first.stderr, second.stderr),
            "landing": landing,
            "data_dir": data_dir,
            "warehouse": warehouse,
            "oracle": oracle,
            "region": region,
            "tokens": {"regional": regional, "admin": admin},
            "env": env,
        }
    finally:
        sink.close()
        smtp.close()


def webhook_bodies(requests: list[dict]) -> list[dict]:
    return [json.loads(r["body"]) for r in requests]


def test_the_planted_anomaly_and_breach_send_one_signed_message_each(notified):
    hook = [r for r in notified["first"] if r["path"] == "/hook"]
    bodies = webhook_bodies(hook)
    assert sorted(b["subject"] for b in bodies) == ["anomaly_alerts:tickets", "slo_status:incidents"]
    for request, body in zip(hook, bodies):
        headers = request["headers"]
        expected = hmac.new(
            SECRET.encode(), headers["x-northstar-timestamp"].encode() + b"." + request["body"], hashlib.sha256
        ).hexdigest()
        assert headers["x-northstar-signature"] == "v1=" + expected
        assert headers["x-northstar-id"] == body["id"] and body["schema"] == "northstar.notification/v1"
        assert body["link"].startswith("http") and body["restricted_to"] is None
    oracle = notified["oracle"]
    tickets = {str(d)[:10]: v for d, v in oracle.query(["tickets"], ["metric_time__day"])}[SPIKE_DAY.isoformat()]
    incidents = {str(w)[:10]: v for w, v in oracle.query(["incidents"], ["metric_time__week"])}[BREACH_WEEK.isoformat()]
    with duckdb.connect() as con:  # the planted rows are in the landing files the build read
        planted = con.execute(
            f"select count(*) from read_parquet('{notified['landing']}/support_tickets.parquet') "
            "where ticket_id like 'tkt_planted_%'"
        ).fetchone()[0]
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
        assert all(
            n["status"] == "sent" and n["attempts"] == 1 for d in ("ops", "chat", "emea") for n in by_destination[d]
        )
        assert len(by_destination["ops"]) == 2
        regional = {"Authorization": f"Bearer {notified['tokens']['regional']}"}
        assert httpx.get(server.base_url + "/v1/notifications", headers=regional, timeout=30).status_code == 403
    finally:
        server.stop()


def test_a_restricted_destination_receives_only_its_rows(notified):
    emea = webhook_bodies(notified["sink"].at("/emea"))
    body = next(b for b in emea if b["kind"] == "digest")
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
    proc = northstar(
        "notify", "run", "--warehouse", str(notified["warehouse"]), "--dry-run", env=notified["env"], check=False
    )
    assert proc.returncode == 0, proc.stderr
    planned = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    # only the failed delivery is still due
    assert [(p["destination"], p["status"]) for p in planned] == [("broken", "would_send")]
    assert len(notified["sink"].requests) == before


def arm_users(oracle: Oracle, experiment_id: str, region: str | None = None) -> dict[str, int]:
    """Users per arm as a readout counts them (first assignment, non-internal), by hand."""
    in_region = (
        ("join users u on u.user_id = p.user_id join accounts ac on ac.account_id = u.account_id where ac.region = ?")
        if region
        else ""
    )
    rows = oracle.sql(
        f"select p.variant, count(*) from ({EXPERIMENT_POPULATION}) p {in_region} group by 1 order by 1",
        [experiment_id, region] if region else [experiment_id],
    )
    return {variant: n for variant, n in rows}


def test_new_kinds_send_one_signed_message_each_with_their_numbers(notified):
    events = [r for r in notified["first"] if r["path"] == "/events"]
    bodies = webhook_bodies(events)
    assert sorted(b["subject"] for b in bodies) == [
        f"experiment_health:{SKEWED}",
        f"experiment_sample_reached:{TOPPED_UP}",
        f"launch_scorecard:{LAUNCH}:day14",
        f"launch_scorecard:{LAUNCH}:day7",
        "regressed_release:android:5.3.0",
    ]
    for request, body in zip(events, bodies):
        headers = request["headers"]
        expected = hmac.new(
            SECRET.encode(), headers["x-northstar-timestamp"].encode() + b"." + request["body"], hashlib.sha256
        ).hexdigest()
        assert headers["x-northstar-signature"] == "v1=" + expected and headers["x-northstar-event"] == body["kind"]
        assert body["link"].startswith("http") and body["figures"]
    by_subject = {b["subject"]: b for b in bodies}
    oracle = notified["oracle"]

    release = by_subject["regressed_release:android:5.3.0"]
    released = dt.datetime(2026, 2, 19, 17)  # the sample's releases.parquet
    rates = {
        v: (cf, e)
        for v, cf, e in oracle.query(
            ["crash_free_user_rate", "errors_per_1k_events"],
            ["app_version"],
            where=[
                {"field": "platform", "op": "=", "value": "android"},
                {"field": "app_version", "op": "in", "values": ["5.3.0", "5.2.0"]},
            ],
            start=released,
            end=released + dt.timedelta(days=14),
        )
    }
    crash, errors = release["figures"]
    assert (crash["value"], crash["comparison"]) == pytest.approx((rates["5.3.0"][0], rates["5.2.0"][0]))
    assert (errors["value"], errors["comparison"]) == pytest.approx((rates["5.3.0"][1], rates["5.2.0"][1]))
    assert crash["value"] < crash["comparison"] and release["link"].endswith("/v1/releases/android/5.3.0")

    launched = dt.datetime(2026, 3, 10, 16)
    for day in (7, 14):
        # first use of the feature by a non-internal user within the launch's 28-day horizon, by day `day`
        adopters = oracle.sql(
            """
            select count(*) from (select e.user_id, min(e.event_ts) as first_used from events e
                                  join users u on u.user_id = e.user_id
                                  where u.is_internal is not true and e.feature_key = 'bulk_export'
                                    and e.event_ts >= ? and e.event_ts < ? + interval 28 day group by 1)
            where cast(first_used as date) <= ?""",
            [launched, launched, launched.date() + dt.timedelta(days=day)],
        )
        card = by_subject[f"launch_scorecard:{LAUNCH}:day{day}"]
        assert card["figures"][0]["metric"] == "adopters" and card["figures"][0]["value"] == adopters[0][0] > 0
        assert f"day {day}" in card["title"] and card["link"].endswith(f"scorecard?window_days={day}")

    planned = by_subject[f"experiment_sample_reached:{TOPPED_UP}"]
    arms = arm_users(oracle, TOPPED_UP)
    assert {f["label"]: f["value"] for f in planned["figures"]} == {f"Users in {a}": n for a, n in arms.items()}
    target = planned["figures"][0]["comparison"]
    assert min(arms.values()) >= target > min(arms.values()) - TOPPED_UP_USERS  # reached thanks to the top-up

    health = by_subject[f"experiment_health:{SKEWED}"]
    arms = arm_users(oracle, SKEWED)
    assert arms["treatment"] - arms["control"] >= SKEWED_USERS * 0.9
    figures = {f["metric"] + f["label"]: f for f in health["figures"]}
    assert figures["srm_p_valueSample ratio p-value"]["value"] == pytest.approx(
        chisquare([arms["control"], arms["treatment"]]).pvalue, rel=1e-6
    )
    assert health["state"] == "srm" and "sample ratio mismatch" in health["title"]


def test_email_sends_one_multipart_message_per_event_and_none_twice(notified):
    mails = notified["mail_first"]
    webhook = {b["id"]: b for b in webhook_bodies([r for r in notified["first"] if r["path"] == "/events"])}
    assert len(mails) == len(webhook) == 5
    assert len(notified["smtp"].messages) == len(mails)  # the second build mailed nothing
    subjects = set()
    for recipients, message in mails:
        assert recipients == ("leads@example.com", "ops@example.com")
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert message["X-Northstar-Id"] and message["Message-ID"] == f"<{message['X-Northstar-Id']}@northstar>"
        subjects.add(message["X-Northstar-Event"])
        # the same numbers as the webhook body of the same news to another destination
        body = next(b for b in webhook.values() if b["title"] == message["Subject"].removeprefix("[northstar] "))
        assert body["summary"] in text and "/v1/" in text and "<table" in html and "Open in northstar" in html
    assert subjects == {"regressed_release", "launch_scorecard", "experiment_sample_reached", "experiment_health"}


def test_a_restricted_destination_gets_every_kind_computed_for_its_rows(notified):
    emea = {b["kind"]: b for b in webhook_bodies(notified["sink"].at("/emea"))}
    region = notified["region"]
    assert {"digest", "experiment_health"} <= set(emea)
    health = emea["experiment_health"]
    assert region in health["restricted_to"]
    arms = arm_users(notified["oracle"], SKEWED, region)
    everyone = arm_users(notified["oracle"], SKEWED)
    users = {f["label"]: f["value"] for f in health["figures"] if f["metric"] == "users"}
    assert users == {f"Users in {a}": n for a, n in arms.items()} != {f"Users in {a}": n for a, n in everyone.items()}
    # anomaly alerts: the warehouse's check covers everyone, so the check runs over the region's rows
    oracle, region_filter = notified["oracle"], [{"field": "region", "op": "=", "value": region}]
    regional = {
        dt.date.fromisoformat(d): v for d, v in oracle.query(["tickets"], ["metric_time__day"], where=region_filter)
    }
    everyone = {dt.date.fromisoformat(d): v for d, v in oracle.query(["tickets"], ["metric_time__day"])}
    first, last = oracle.sql("select cast(min(metric_time) as date), cast(max(metric_time) as date) from src_events")[0]
    values = {
        first + dt.timedelta(days=i): float(regional.get(first + dt.timedelta(days=i), 0))
        for i in range((last - first).days + 1)
    }
    flagged = expected_alerts(values, "tickets")
    anomaly = emea["anomaly_alerts"]
    assert anomaly["subject"] == "anomaly_alerts:tickets" and region in anomaly["restricted_to"]
    newest = anomaly["figures"][0]
    assert newest["period"] == SPIKE_DAY.isoformat() and newest["value"] == regional[SPIKE_DAY] < everyone[SPIKE_DAY]
    since = SPIKE_DAY - dt.timedelta(days=6)  # the subscription's default lookback: 7 days of alerts
    assert [(f["period"], f["status"], f["value"]) for f in anomaly["figures"]] == [
        (day.isoformat(), flagged[day][0], values[day]) for day in sorted(flagged, reverse=True) if day >= since
    ][:5]
    assert (newest["lower_bound"], newest["upper_bound"]) == pytest.approx(flagged[SPIKE_DAY][1:])


def test_an_email_destination_takes_its_password_from_the_environment_only(tmp_path):
    config = tmp_path / "northstar.yml"
    config.write_text("""notify:
  destinations:
    mail: {type: email, host: smtp.example.com, username: u, password: hunter2, from: a@example.com, to: [b@example.com]}
  subscriptions: []
""")
    with pytest.raises(InvalidQuery, match="password"):
        notify_config.load(config, environ={})
    config.write_text(config.read_text().replace("password: hunter2", "password_env: NS_SMTP_PASSWORD"))
    with pytest.raises(InvalidQuery, match="NS_SMTP_PASSWORD"):
        notify_config.load(config, environ={})
    loaded = notify_config.load(config, environ={"NS_SMTP_PASSWORD": "hunter2"}).destinations["mail"]
    assert loaded.smtp.port == 587 and loaded.smtp.security == "starttls" and "hunter2" not in repr(loaded)


def test_email_retries_a_connection_error_and_stops_at_a_refusal():
    from metrics.notify.notices import Figure, Notice
    from northstar.notify.config import Smtp
    from northstar.notify.deliver import send_email, webhook_body

    notice = Notice(
        "digest",
        "digest:weekly",
        "week:2026-03-23",
        "Weekly",
        "Active users 1,234 (+5.0%).",
        (Figure("active_users", "Active users", "2026-03-23", 1234.0, "previous_period", 1175.0),),
        "/v1/query",
    )
    body = webhook_body(
        notice,
        key="ntf_test",
        subscription="weekly",
        destination="mail",
        build_id="b1",
        base_url="http://127.0.0.1",
        restricted_to=None,
    )
    waits: list[float] = []
    closed = Smtp("127.0.0.1", free_port(), "none", None, None, "a@example.com", ("b@example.com",))
    outcome = send_email(closed, body, max_attempts=3, backoff_s=0.01, sleep=waits.append)
    assert (outcome.ok, outcome.attempts, waits) == (False, 3, [0.01, 0.02])

    class Refusing:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            return "550 no such mailbox"

    controller = Controller(Refusing(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        waits.clear()
        refused = Smtp("127.0.0.1", controller.port, "none", None, None, "a@example.com", ("b@example.com",))
        outcome = send_email(refused, body, max_attempts=3, backoff_s=0.01, sleep=waits.append)
    finally:
        controller.stop()
    assert (outcome.ok, outcome.attempts, waits) == (False, 1, []) and "b@example.com" in outcome.error
