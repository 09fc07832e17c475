"""The real service over HTTP: catalog, query forms and encodings, errors, compile, health
and the dbt docs site. Metric values are checked against the oracle in test_metric_pack.py."""

from __future__ import annotations

import csv
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.oracle import Oracle

PACK = [
    "events",
    "active_users",
    "sessions",
    "new_users",
    "revenue",
    "paying_users",
    "arpu",
    "feature_users",
    "feature_adoption_rate",
    "crashes",
    "crashed_users",
    "crash_free_user_rate",
    "errors_per_1k_events",
    "incidents",
    "mttr_hours",
    "tickets",
    "nps",
    "csat",
    "d7_retention",
]

SLICES = {
    "events": ["platform", "app_version", "feature_key", "event_name", "country", "plan", "region"],
    "active_users": ["platform", "app_version", "country", "plan", "region"],
    "sessions": ["platform", "country", "plan", "region"],
    "new_users": ["country", "plan", "region"],
    "revenue": ["platform", "country", "plan", "region"],
    "paying_users": ["platform", "country", "plan", "region"],
    "arpu": ["platform", "country", "plan", "region"],
    "feature_users": ["feature_key", "platform", "plan"],
    "feature_adoption_rate": ["platform", "plan"],
    "crashes": ["platform", "app_version"],
    "crashed_users": ["platform", "app_version"],
    "crash_free_user_rate": ["platform", "app_version"],
    "errors_per_1k_events": ["platform", "app_version"],
    "incidents": ["severity", "feature_key"],
    "mttr_hours": ["severity"],
    "tickets": ["priority", "category", "plan", "region"],
    "nps": ["channel", "country", "plan"],
    "csat": ["channel", "plan"],
    "d7_retention": ["country", "plan", "platform"],
}


def error_of(response) -> dict:
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]
    return body["error"]


def test_catalog_lists_every_pack_metric_with_its_slices_and_grains(api):
    metrics = {m["name"]: m for m in api.client.get("/v1/metrics").json()["metrics"]}
    for name in PACK:
        assert name in metrics, name
        assert set(SLICES[name]) <= set(metrics[name]["dimensions"]), (name, metrics[name]["dimensions"])
        assert metrics[name]["grains"] == ["day", "week", "month", "quarter", "year"]
        assert metrics[name]["label"] and metrics[name]["description"]


def test_metric_detail_names_its_models_owner_and_definition(api):
    detail = api.client.get("/v1/metrics/crash_free_user_rate").json()
    assert detail["type"] == "derived"
    assert set(detail["models"]) == {"fct_events", "fct_errors"}
    assert detail["definition"]["metrics"] == ["crashed_users", "active_users"]
    assert detail["owner"]
    assert "user__country" in detail["qualified_dimensions"]


def test_unknown_metric_detail_is_404_with_suggestions(api):
    response = api.client.get("/v1/metrics/activ_users")
    assert response.status_code == 404
    assert "active_users" in response.json()["error"]["message"]


def test_dimensions_list_every_slice_with_its_metrics(api):
    dims = {d["name"]: d for d in api.client.get("/v1/dimensions").json()["dimensions"]}
    for metric, slices in SLICES.items():
        for name in slices:
            assert metric in dims[name]["metrics"], (name, metric)
    assert "events" in dims["metric_time__week"]["metrics"]


def test_qualified_and_short_names_give_the_same_rows(api):
    short = api.client.post("/v1/query", json={"metrics": ["events"], "group_by": ["country"]}).json()
    full = api.client.post("/v1/query", json={"metrics": ["events"], "group_by": ["user__country"]}).json()
    assert short["rows"] == full["rows"]
    assert short["columns"][0]["name"] == "country" and full["columns"][0]["name"] == "user__country"


def test_response_carries_build_freshness_and_cache_flag(api):
    body = {"metrics": ["sessions"], "group_by": ["metric_time__month"]}
    first = api.client.post("/v1/query", json=body).json()
    second = api.client.post("/v1/query", json=body).json()
    assert first["rows"] == second["rows"]
    assert second["meta"]["cached"] is True
    assert first["meta"]["build_id"] and first["meta"]["tests_passed"] is True
    assert first["meta"]["models"] == ["fct_events"]
    newest = Oracle(api.landing_dir).sql("select max(metric_time) from src_events")[0][0]
    assert first["meta"]["newest_metric_time"] == newest.isoformat()


def test_csv_parquet_arrow_and_accept_header_carry_the_same_rows(api):
    body = {"metrics": ["events", "arpu"], "group_by": ["metric_time__month", "platform"]}
    rows = api.client.post("/v1/query", json=body).json()["rows"]

    text = api.client.post("/v1/query?format=csv", json=body).text
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["metric_time__month", "platform", "events", "arpu"]
    assert len(parsed) - 1 == len(rows)
    assert [int(r[2]) for r in parsed[1:]] == [r[2] for r in rows]

    parquet = pq.read_table(io.BytesIO(api.client.post("/v1/query?format=parquet", json=body).content))
    assert parquet.column("events").to_pylist() == [r[2] for r in rows]
    response = api.client.post("/v1/query", json=body, headers={"Accept": "application/vnd.apache.arrow.stream"})
    arrow = pa.ipc.open_stream(response.content).read_all()
    assert arrow.column("arpu").to_pylist() == [r[3] for r in rows]
    accept_csv = api.client.post("/v1/query", json=body, headers={"Accept": "text/csv"})
    assert accept_csv.headers["content-type"].startswith("text/csv")


def test_get_form_matches_post(api):
    post = api.client.post(
        "/v1/query",
        json={
            "metrics": ["events", "sessions"],
            "group_by": ["metric_time__week"],
            "start": "2026-01-12",
            "end": "2026-02-09",
            "order_by": ["-events"],
            "limit": 3,
        },
    ).json()
    get = api.client.get(
        "/v1/query",
        params={
            "metrics": "events,sessions",
            "group_by": "metric_time__week",
            "start": "2026-01-12",
            "end": "2026-02-09",
            "order_by": "-events",
            "limit": 3,
        },
    ).json()
    assert get["rows"] == post["rows"] and len(get["rows"]) == 3


def test_dbt_style_filter_string(api):
    structured = api.client.post(
        "/v1/query", json={"metrics": ["events"], "where": [{"field": "country", "op": "=", "value": "US"}]}
    ).json()
    template = api.client.post(
        "/v1/query", json={"metrics": ["events"], "where": ["{{ Dimension('user__country') }} = 'US'"]}
    ).json()
    assert structured["rows"] == template["rows"]


def test_compile_returns_readable_sql_and_an_explanation(api):
    body = {
        "metrics": ["crash_free_user_rate"],
        "group_by": ["metric_time__week", "platform"],
        "where": [{"field": "country", "op": "=", "value": "US"}],
    }
    compiled = api.client.post("/v1/compile", json=body).json()
    assert "fct_events" in compiled["sql"] and "fct_errors" in compiled["sql"]
    assert "'US'" in compiled["sql"] and "'US'" not in compiled["parameterized_sql"]
    assert compiled["parameters"] == {"p0": "US", "p1": "US"}
    explanation = compiled["explanation"]
    assert {i["semantic_model"] for i in explanation["inputs"]} == {"events", "errors"}
    assert "fan_out" in explanation and "null_policy" in explanation


def test_bad_requests_name_the_problem_and_the_nearest_choice(api):
    unknown = error_of(api.client.post("/v1/query", json={"metrics": ["activ_users"]}))
    assert unknown["code"] == "unknown_metric" and "active_users" in unknown["message"]
    dim = error_of(api.client.post("/v1/query", json={"metrics": ["events"], "group_by": ["contry"]}))
    assert dim["code"] == "unknown_dimension" and "country" in dim["message"]
    unreachable = error_of(api.client.post("/v1/query", json={"metrics": ["incidents"], "group_by": ["country"]}))
    assert unreachable["code"] == "unknown_dimension"
    grain = error_of(api.client.post("/v1/query", json={"metrics": ["events"], "group_by": ["metric_time__hour"]}))
    assert "metric_time__day" in grain["message"] or "metric_time" in grain["message"]
    op = error_of(
        api.client.post(
            "/v1/query", json={"metrics": ["events"], "where": [{"field": "country", "op": "~", "value": "x"}]}
        )
    )
    assert op["code"] == "invalid_filter" and "in" in op["message"]
    missing_value = error_of(
        api.client.post("/v1/query", json={"metrics": ["events"], "where": [{"field": "country", "op": "in"}]})
    )
    assert "values" in missing_value["message"]
    no_metric = error_of(api.client.post("/v1/query", json={"group_by": ["country"]}))
    assert "metric" in no_metric["message"]
    dates = error_of(api.client.post("/v1/query", json={"metrics": ["events"], "start": "yesterday"}))
    assert "start" in dates["message"]
    order = error_of(api.client.post("/v1/query", json={"metrics": ["events"], "order_by": ["-evnts"]}))
    assert "events" in order["message"]
    extra = error_of(api.client.post("/v1/query", json={"metrics": ["events"], "groupby": ["country"]}))
    assert "groupby" in extra["message"]
    injection = error_of(
        api.client.post(
            "/v1/query",
            json={
                "metrics": ["events"],
                "where": ["{{ Dimension('user__country') }} = 'US'; drop table marts.fct_events"],
            },
        )
    )
    assert injection["code"] == "invalid_filter"


def test_an_unreadable_body_is_named(api):
    def post(content: bytes, content_type: str) -> dict:
        response = api.client.post("/v1/query", content=content, headers={"Content-Type": content_type})
        assert 400 <= response.status_code < 500, response.text
        return response.json()["error"]

    error = post(b'{"metrics": ["\xff"]}', "application/json")  # not UTF-8
    assert error["code"] == "invalid_body" and "JSON object" in error["message"], error
    error = post(b'{"metrics": ["events"],}', "application/json")
    assert (
        error["message"] == "body: not valid JSON (Expecting property name enclosed in double quotes) at character 23"
    )
    error = post(b"metrics=events", "text/plain")
    assert error["message"].startswith("body: ")


def test_health_readiness_openapi_and_dbt_docs(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["tests_passed"] is True
    assert "/v1/query" in api.client.get("/openapi.json").json()["paths"]
    assert api.client.get("/docs").status_code == 200
    index = api.client.get("/dbt-docs/")
    assert index.status_code == 200 and "dbt" in index.text.lower()
    manifest = api.client.get("/dbt-docs/manifest.json").json()
    assert "model.northstar.fct_events" in manifest["nodes"]
    assert api.client.get("/dbt-docs/catalog.json").status_code == 200
    assert api.client.get("/dbt-docs/profiles.yml").status_code == 404


def test_the_query_routes_document_the_json_answer_they_give(api):
    """OpenAPI's schema of /v1/query's JSON answer is MetricQueryResponse, and real answers
    (computed, and a repeated request served from stored bytes) validate against it."""
    from api.schemas.query import MetricQueryResponse

    spec = api.client.get("/openapi.json").json()
    for method in ("get", "post"):
        content = spec["paths"]["/v1/query"][method]["responses"]["200"]["content"]
        assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/MetricQueryResponse"}
        assert "text/csv" in content
    body = {"metrics": ["active_users", "d7_retention"], "group_by": ["metric_time__month"]}
    for _ in range(2):
        answer = api.client.post("/v1/query", json=body).json()
        MetricQueryResponse.model_validate(answer)
        # ... and nothing is left undocumented (the models accept extra keys).
        assert set(answer) == set(MetricQueryResponse.model_fields)
        assert set(answer["meta"]) == set(MetricQueryResponse.model_fields["meta"].annotation.model_fields)
    assert answer["meta"]["cached"] is True and answer["meta"]["incomplete"]


def test_saved_queries_are_listed_and_queryable_by_name(api):
    saved = {q["name"]: q for q in api.client.get("/v1/saved-queries").json()["saved_queries"]}
    assert saved["weekly_quality_us"]["group_by"] == ["metric_time__week"]
    assert saved["weekly_quality_us"]["where"] == ["{{ Dimension('user__country') }} = 'US'"]
    by_name = api.client.post("/v1/query", json={"saved_query": "weekly_quality_us"}).json()
    explicit = api.client.post(
        "/v1/query",
        json={
            "metrics": ["crashes", "arpu"],
            "group_by": ["metric_time__week"],
            "where": [{"field": "user__country", "op": "=", "value": "US"}],
        },
    ).json()
    assert by_name["rows"] == explicit["rows"] and by_name["rows"]
    get = api.client.get("/v1/query", params={"saved_query": "weekly_active_users_by_platform"}).json()
    assert [c["name"] for c in get["columns"]] == ["metric_time__week", "event__platform", "active_users"]
    missing = api.client.post("/v1/query", json={"saved_query": "weekly_qualty_us"})
    # a name in the body is a validation error (422); 404 is for names in the path
    assert missing.status_code == 422 and "weekly_quality_us" in missing.json()["error"]["message"]


def test_time_zone_and_week_start_over_http(api):
    body = {
        "metrics": ["events"],
        "group_by": ["metric_time__week"],
        "timezone": "America/Los_Angeles",
        "week_start": "sunday",
        "start": "2026-02-01",
        "end": "2026-03-01",
    }
    weeks = api.client.post("/v1/query", json=body).json()["rows"]
    assert weeks and all(__import__("datetime").date.fromisoformat(w).weekday() == 6 for w, _ in weeks)
    oracle = Oracle(api.landing_dir)
    expected = oracle.sql("""
        select count(*) from src_events
        where timezone('America/Los_Angeles', timezone('UTC', metric_time)) >= timestamp '2026-02-01'
          and timezone('America/Los_Angeles', timezone('UTC', metric_time)) < timestamp '2026-03-01'""")[0][0]
    assert sum(n for _, n in weeks) == expected
    bad = api.client.post("/v1/query", json={**body, "timezone": "Europe/Berln"})
    assert bad.status_code == 422 and "Europe/Berlin" in bad.json()["error"]["message"]
    bad_week = api.client.get("/v1/query", params={"metrics": "events", "week_start": "friday"})
    assert bad_week.status_code == 422 and "sunday" in bad_week.json()["error"]["message"]


def test_rolling_7_day_active_users_match_hand_written_sql(api):
    got = api.client.post(
        "/v1/query",
        json={
            "metrics": ["active_users_7d"],
            "group_by": ["metric_time__day"],
            "start": "2026-02-01",
            "end": "2026-03-01",
        },
    ).json()["rows"]
    expected = Oracle(api.landing_dir).sql("""
        with days as (select cast(range as date) as d from range(date '2026-02-01', date '2026-03-01', interval 1 day))
        select strftime(days.d, '%Y-%m-%d'), count(distinct e.user_id)
        from days join src_events e
          on cast(e.metric_time as date) <= days.d and cast(e.metric_time as date) > days.d - 7
        group by 1 order by 1""")
    assert [tuple(r) for r in got] == expected and len(expected) == 28


def test_signup_to_purchase_conversion_matches_hand_written_sql(api):
    got = api.client.post(
        "/v1/query", json={"metrics": ["signup_to_purchase_7d"], "group_by": ["metric_time__month"]}
    ).json()["rows"]
    # A month is known only when the 7-day window of each of its signup days (within the days
    # that have signups) lies inside the events' first..last day; otherwise it is null.
    expected = Oracle(api.landing_dir).sql("""
        with events_reach as (select min(cast(metric_time as date)) as first_day,
                                     max(cast(metric_time as date)) as last_day from src_events),
             users_reach as (select min(cast(metric_time as date)) as first_day,
                                    max(cast(metric_time as date)) as last_day from src_users),
             months as (
               select date_trunc('month', u.metric_time) as month,
                      count(*) filter (where exists (
                          select 1 from src_events e where e.user_id = u.user_id and e.revenue_usd > 0
                            and cast(e.metric_time as date) >= cast(u.metric_time as date)
                            and cast(e.metric_time as date) < cast(u.metric_time as date) + 7)) / count(*) as rate
               from src_users u group by 1)
        select strftime(m.month, '%Y-%m-%d'),
               case when greatest(cast(m.month as date), ur.first_day) >= er.first_day
                     and least(cast(m.month + interval 1 month as date) - 1, ur.last_day) + 6 <= er.last_day
                    then m.rate end
        from months m, events_reach er, users_reach ur order by 1""")
    assert [r[0] for r in got] == [r[0] for r in expected]
    assert [r[1] is None for r in got] == [r[1] is None for r in expected]
    assert [r[1] for r in got if r[1] is not None] == pytest.approx(
        [float(r[1]) for r in expected if r[1] is not None], rel=1e-12
    )
    assert any(r[1] is not None and r[1] > 0 for r in got) and any(r[1] is None for r in got)


def test_week_over_week_change_uses_the_prior_week(api):
    rows = api.client.post(
        "/v1/query", json={"metrics": ["revenue_change_vs_prior_week", "revenue"], "group_by": ["metric_time__week"]}
    ).json()["rows"]
    revenue = {week: value for week, _, value in rows}
    for week, change, value in rows[1:]:
        prior = (__import__("datetime").date.fromisoformat(week) - __import__("datetime").timedelta(days=7)).isoformat()
        assert change == pytest.approx(value - revenue[prior], rel=1e-9)
    assert rows[0][1] is None


def test_freshness_names_the_tests_of_the_models_read(api):
    build_dir = __import__("pathlib").Path(__import__("os").path.realpath(api.warehouse)).parent
    info = __import__("json").loads((build_dir / "build.json").read_text())
    assert info["model_tests"]["fct_events"]["tests"] >= 5 and info["model_tests"]["fct_events"]["failed"] == 0
    meta = api.client.post("/v1/query", json={"metrics": ["crash_free_user_rate"]}).json()["meta"]
    assert meta["models"] == ["fct_errors", "fct_events"] and meta["tests_passed"] is True
