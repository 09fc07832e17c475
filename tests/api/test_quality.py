"""GET /v1/quality on the sample warehouse: every KPI value against hand-written SQL over the
landing files (tests/oracle.py and the SQL below), statuses against the SLOs as written in the
dbt project's YAML, and the planted bad Android release."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from seeds.story import BAD_RELEASE, PLANTED
from tests.oracle import Oracle

REPO = Path(__file__).resolve().parents[2]
PARAMS = {"period": "week", "start": "2026-02-16", "end": "2026-03-09", "platform": "android"}
WEEKS = ["2026-02-09", "2026-02-16", "2026-02-23", "2026-03-02"]  # the first is the previous of the second


def governed_slo(metric: str) -> dict:
    """The SLO as written in the dbt project (not as the engine read it)."""
    for path in (REPO / "dbt_project" / "models").rglob("*.yml"):
        for entry in (yaml.safe_load(path.read_text()) or {}).get("metrics") or []:
            if entry["name"] == metric:
                return entry["config"]["meta"]["slo"]
    raise AssertionError(f"no metric {metric} in the dbt project")


def expected_status(value, slo: dict, days: float = 7, severity: str | None = None) -> str:
    if value is None:
        return "no_data"
    thresholds = (slo.get("by_severity") or {}).get(severity, slo) if severity else slo
    scale = days / slo["per_days"] if slo.get("per_days") else 1
    target, warn = thresholds["target"] * scale, thresholds["warn"] * scale
    if slo["direction"] == "higher_is_better":
        return "ok" if value >= target else "warn" if value >= warn else "breach"
    return "ok" if value <= target else "warn" if value <= warn else "breach"


@pytest.fixture(scope="module")
def card(api):
    response = api.client.get("/v1/quality", params=PARAMS)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def oracle(api):
    return Oracle(api.landing_dir)


def kpi(card, metric, severity=None):
    return next(k for k in card["kpis"] if k["metric"] == metric and k["severity"] == severity)


def check_series(k: dict, expected: dict[str, float | None], metric: str, severity: str | None = None):
    slo = governed_slo(metric)
    assert [p["period_start"] for p in k["periods"]] == WEEKS[1:]
    for i, period in enumerate(k["periods"], start=1):
        value, previous = expected.get(WEEKS[i]), expected.get(WEEKS[i - 1])
        assert period["value"] == (None if value is None else pytest.approx(value, rel=1e-12)), (
            metric,
            severity,
            WEEKS[i],
        )
        assert period["previous"] == (None if previous is None else pytest.approx(previous, rel=1e-12)), (
            metric,
            severity,
            WEEKS[i],
        )
        if value is not None and previous is not None:
            assert period["change"] == pytest.approx(value - previous, rel=1e-9, abs=1e-12)
        assert period["status"] == expected_status(value, slo, 7, severity), (metric, severity, WEEKS[i], value)
    assert k["current"] == k["periods"][-1]


@pytest.mark.parametrize("metric", ["crash_free_user_rate", "errors_per_1k_events"])
def test_platform_kpis_match_the_oracle(card, oracle, metric):
    rows = oracle.query(
        [metric],
        ["metric_time__week"],
        [{"field": "platform", "op": "=", "value": "android"}],
        start="2026-02-09",
        end="2026-03-09",
    )
    k = kpi(card, metric)
    assert k["platform_scoped"] is True
    check_series(k, dict(rows), metric)


@pytest.mark.parametrize("metric", ["nps", "csat"])
def test_feedback_kpis_match_the_oracle(card, oracle, metric):
    rows = oracle.query([metric], ["metric_time__week"], start="2026-02-09", end="2026-03-09")
    k = kpi(card, metric)
    assert k["platform_scoped"] is False
    check_series(k, dict(rows), metric)


def test_tickets_per_1k_active_users_by_hand(card, oracle):
    rows = oracle.sql("""
        with t as (select date_trunc('week', metric_time) as w, count(*) as n from src_tickets group by 1),
             a as (select date_trunc('week', metric_time) as w, count(distinct user_id) as n from src_events group by 1)
        select strftime(a.w, '%Y-%m-%d'), 1000.0 * coalesce(t.n, 0) / a.n
        from a left join t on t.w = a.w
        where a.w >= '2026-02-09' and a.w < '2026-03-09'""")
    check_series(kpi(card, "tickets_per_1k_active_users"), dict(rows), "tickets_per_1k_active_users")


def test_incidents_and_mttr_by_severity_by_hand(card, oracle):
    rows = oracle.sql("""
        select strftime(date_trunc('week', opened_at), '%Y-%m-%d'), severity, count(*),
               avg(epoch(resolved_at) - epoch(opened_at)) / 3600.0
        from incidents where opened_at >= '2026-02-09' and opened_at < '2026-03-09'
        group by all""")
    for severity in ("sev1", "sev2", "sev3", "sev4"):
        counts = {w: 0.0 for w in WEEKS}
        counts.update({w: float(n) for w, s, n, _ in rows if s == severity})
        check_series(kpi(card, "incidents", severity), counts, "incidents", severity)
        mttr = {w: h for w, s, _, h in rows if s == severity}
        check_series(kpi(card, "mttr_hours", severity), mttr, "mttr_hours", severity)
    totals = {w: 0.0 for w in WEEKS}
    for w, _, n, _ in rows:
        totals[w] += n
    check_series(kpi(card, "incidents"), totals, "incidents")


def test_the_bad_release_week_breaches_the_crash_free_slo(card):
    released = dt.date.fromisoformat(PLANTED["bad_release"]["released_on"])
    week = (released + dt.timedelta(days=7 - released.weekday())).isoformat()  # the first full week after it
    assert BAD_RELEASE[0] == PARAMS["platform"]
    by_week = {p["period_start"]: p for p in kpi(card, "crash_free_user_rate")["periods"]}
    assert by_week[week]["status"] == "breach"
    assert by_week[week]["change"] < 0
    assert by_week[week]["target"] == governed_slo("crash_free_user_rate")["target"]


def test_monthly_thresholds_scale_and_partial_periods_are_marked(api, oracle):
    body = api.client.get("/v1/quality", params={"period": "month", "start": "2026-02-01", "end": "2026-03-15"}).json()
    incidents = kpi(body, "incidents")
    february, march = incidents["periods"]
    slo = governed_slo("incidents")
    assert february["complete"] is True and march["complete"] is False
    assert february["target"] == pytest.approx(slo["target"] * 28 / 7)
    assert march["period_end"] == "2026-03-15" and march["target"] == pytest.approx(slo["target"] * 14 / 7)
    expected = oracle.query(["incidents"], ["metric_time__month"], start="2026-01-01", end="2026-03-15")
    assert [february["previous"], february["value"], march["value"]] == [float(n) for _, n in expected]


def test_defaults_cover_the_last_weeks_of_data(api):
    body = api.client.get("/v1/quality").json()
    assert body["period"] == "week" and body["end"] == PLANTED["window"]["end_exclusive"]
    assert len(kpi(body, "crash_free_user_rate")["periods"]) == 4


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"platform": "andriod"}, "'android'"),
        ({"period": "year"}, "'week'"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "before"),
        ({"start": "not-a-date"}, "YYYY-MM-DD"),
    ],
)
def test_bad_input_names_the_valid_choices(api, params, needle):
    response = api.client.get("/v1/quality", params=params)
    assert response.status_code == 422, response.text
    assert needle in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "metric",
    [
        "crash_free_user_rate",
        "errors_per_1k_events",
        "incidents",
        "mttr_hours",
        "tickets_per_1k_active_users",
        "nps",
        "csat",
    ],
)
def test_slos_are_governed_in_the_dbt_project_and_published_in_the_catalog(api, metric):
    body = api.client.get(f"/v1/metrics/{metric}").json()
    assert body["meta"]["slo"] == governed_slo(metric)
