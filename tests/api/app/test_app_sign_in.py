"""Sign-in on a service with tokens, in Chromium against the real service: the form takes a
token once and keeps an HttpOnly, SameSite=Strict session that refers to it (not the token);
a restricted token sees only its rows and the app says so; the session dies with its token;
cross-site requests cannot use it."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.api.app.test_app_explorer import chart, wait_ready
from tests.api.browser import open_page, screenshot
from tests.conftest import Server, northstar
from tests.oracle import Oracle


def create_token(data_dir, name: str, *options: str) -> str:
    proc = northstar("tokens", "create", "--name", name, "--data-dir", str(data_dir), *options)
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def secured(built_warehouse, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("app-secured")
    (data_dir / "northstar.duckdb").symlink_to(os.path.realpath(built_warehouse.warehouse))
    region = Oracle(built_warehouse.landing_dir).sql(
        "select region, count(*) from src_events where region is not null group by 1 order by 2 desc limit 1"
    )[0][0]
    tokens = {
        "reader": create_token(data_dir, "reader", "--scope", "metrics:read", "--scope", "experiments:read"),
        "regional": create_token(data_dir, "regional", "--scope", "metrics:read", "--row-filter", f"region={region}"),
        "doomed": create_token(data_dir, "doomed", "--scope", "metrics:read"),
    }
    server = Server(data_dir / "northstar.duckdb", env={"NORTHSTAR_DATA_DIR": str(data_dir)})
    try:
        server.wait_ready()
        yield {"url": server.base_url, "tokens": tokens, "data_dir": data_dir, "region": region}
    finally:
        server.stop()


def sign_in(browser, secured, token: str, next_path: str = "/"):
    context, page, log = open_page(browser, secured["url"] + next_path, viewport={"width": 1280, "height": 800})
    assert "/sign-in" in page.url  # the page asked for a session first
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("form.sign-in button[type=submit]")
    return context, page, log


def test_pages_ask_for_a_token_and_a_wrong_one_is_refused(browser, secured):
    context, page, log = open_page(
        browser, secured["url"] + "/metrics/active_users?grain=week", viewport={"width": 1280, "height": 800}
    )
    try:
        assert page.url.endswith("/sign-in?next=%2Fmetrics%2Factive_users%3Fgrain%3Dweek")
        screenshot(page, "sign-in")
        log.assert_clean(secured["url"])
        page.fill("#token", secured["tokens"]["reader"][:-3] + "xyz")
        page.click("form.sign-in button[type=submit]")
        page.wait_for_selector("#sign-in-error")
        assert context.cookies() == []
    finally:
        context.close()


def test_session_cookie_refers_to_the_token_and_is_guarded(browser, secured):
    token = secured["tokens"]["reader"]
    context, page, log = sign_in(browser, secured, token, "/metrics/active_users?grain=week")
    try:
        assert page.url.endswith("/metrics/active_users?grain=week")
        wait_ready(page)
        assert chart(page)["series"]  # the chart's /v1/query ran on the session
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert token not in cookie["value"] and token.split("_", 2)[2] not in cookie["value"]
        assert page.evaluate("document.cookie") == ""
        assert "reader" in page.inner_text("#signed-in-as")
        log.assert_clean(secured["url"])

        jar = {cookie["name"]: cookie["value"]}
        body = {"metrics": ["active_users"]}
        with httpx.Client(base_url=secured["url"], cookies=jar) as client:
            assert client.get("/v1/metrics").status_code == 200
            # A request that changes something needs the app's header besides the cookie.
            assert client.post("/v1/query", json=body).status_code == 401
            assert client.post("/v1/query", json=body, headers={"X-Requested-With": "northstar"}).status_code == 200
        # A forged or altered session is nobody.
        forged = {cookie["name"]: cookie["value"][:-2] + ("AA" if not cookie["value"].endswith("AA") else "BB")}
        assert httpx.get(secured["url"] + "/v1/metrics", cookies=forged).status_code == 401
        # The sign-in form only accepts posts from this service's own page.
        cross = httpx.post(
            secured["url"] + "/sign-in", data={"token": token}, headers={"Origin": "http://attacker.example"}
        )
        assert cross.status_code == 403 and "set-cookie" not in cross.headers

        with page.expect_navigation():
            page.click("form[action='/sign-out'] button")
        assert "/sign-in" in page.url and context.cookies() == []
    finally:
        context.close()


def test_a_restricted_token_sees_only_its_rows(browser, secured):
    region, token = secured["region"], secured["tokens"]["regional"]
    context, page, log = sign_in(browser, secured, token, "/metrics/active_users?grain=week&range=all&slice=region")
    try:
        wait_ready(page)
        assert f"region in ({region})" in page.inner_text("#restriction")
        shape = chart(page)
        assert [s["slice"] for s in shape["series"]] == [region]
        # The same request with the token as a bearer: the API's rows for this caller.
        body = {
            "metrics": ["active_users"],
            "group_by": ["metric_time__week", "region"],
            "order_by": ["metric_time__week"],
        }
        rows = httpx.post(secured["url"] + "/v1/query", json=body, headers={"Authorization": f"Bearer {token}"}).json()[
            "rows"
        ]
        plotted = dict(zip(shape["x"], shape["series"][0]["values"]))
        assert {d: v for d, v in plotted.items() if v is not None} == {r[0][:10]: r[2] for r in rows}
        # And fewer than everyone's.
        everyone = httpx.post(
            secured["url"] + "/v1/query",
            json={"metrics": ["active_users"]},
            headers={"Authorization": f"Bearer {secured['tokens']['reader']}"},
        ).json()["rows"]
        mine = httpx.post(
            secured["url"] + "/v1/query",
            json={"metrics": ["active_users"]},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["rows"]
        assert mine[0][0] < everyone[0][0]
        # The value picker lists only the region's values too.
        page.select_option("#filter-dim", "region")
        page.wait_for_selector("#filter-values:not([disabled])")
        assert page.eval_on_selector_all("#filter-values option", "os => os.map(o => o.value)") == [region]
        screenshot(page, "explorer-restricted")
        log.assert_clean(secured["url"])
    finally:
        context.close()


def test_a_revoked_token_ends_its_session(browser, secured):
    context, page, log = sign_in(browser, secured, secured["tokens"]["doomed"])
    try:
        assert page.url.rstrip("/") == secured["url"]
        assert page.locator("#metric-cards .card").count() > 0
        northstar("tokens", "revoke", "doomed", "--data-dir", str(secured["data_dir"]))
        page.reload()
        assert "/sign-in" in page.url
        jar = {c["name"]: c["value"] for c in context.cookies()}
        assert httpx.get(secured["url"] + "/v1/metrics", cookies=jar).status_code == 401
    finally:
        context.close()
