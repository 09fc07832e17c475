"""Planted problems, found: a copy of the sample landing data with users seen in both arms,
assignments outside the experiment's dates, one day of lopsided traffic (exp_onboarding_tooltip)
and a crash rise in the treatment of exp_checkout_redesign (a guardrail), built with the real
`northstar build` and read over HTTP and from the written tables."""

from __future__ import annotations

import datetime as dt
import shutil

import duckdb
import pytest

from tests.conftest import SAMPLE, Server, northstar
from tests.oracle import Oracle

EXPERIMENT = "exp_onboarding_tooltip"
REASSIGNED = 40  # assigned users who are later seen in the other arm too
BEFORE, AFTER = 3, 2  # users first assigned before the start / after the end
LOPSIDED_DAY = dt.date(2026, 1, 20)
LOPSIDED_USERS = 150  # extra control users on that day
CRASHING_SHARE = 0.2  # of checkout treatment users get a crash after their assignment


def _plant(landing) -> None:
    con = duckdb.connect()
    assignments = str(landing / "experiment_assignments.parquet")
    errors = str(landing / "errors.parquet")
    users = str(landing / "users.parquet")
    con.execute(f"create table a as select * from '{assignments}'")
    con.execute(f"create table e as select * from '{errors}'")
    con.execute(f"create table u as select * from '{users}' where is_internal is not true")
    started, ended = con.execute(
        f"select started_at, ended_at from '{landing / 'experiments.parquet'}' where experiment_id = ?", [EXPERIMENT]
    ).fetchone()
    # users seen in the other arm a day after their (first) assignment
    con.execute(
        """insert into a select experiment_id, user_id,
                   case when variant = 'control' then 'treatment' else 'control' end, assigned_at + interval 1 day
                   from (select * from a where experiment_id = ? and user_id in (select user_id from u)
                         qualify count(*) over (partition by user_id) = 1 order by user_id limit ?)""",
        [EXPERIMENT, REASSIGNED],
    )
    fresh = [
        r[0]
        for r in con.execute(
            "select user_id from u where user_id not in (select user_id from a where experiment_id = ?) order by user_id",
            [EXPERIMENT],
        ).fetchall()
    ]
    planted = [(u, "control", started - dt.timedelta(days=2)) for u in fresh[:BEFORE]]
    planted += [(u, "treatment", ended + dt.timedelta(days=1)) for u in fresh[BEFORE : BEFORE + AFTER]]
    day = dt.datetime.combine(LOPSIDED_DAY, dt.time(12))
    planted += [(u, "control", day) for u in fresh[BEFORE + AFTER : BEFORE + AFTER + LOPSIDED_USERS]]
    con.executemany("insert into a values (?, ?, ?, ?)", [(EXPERIMENT, *p) for p in planted])
    # crashes of checkout treatment users, an hour after their assignment
    con.execute(f"""insert into e select 'err_planted_' || user_id, user_id, null, assigned_at + interval 1 hour,
                    'android', '4.9.0', 'crash', 'PlantedCrash'
                    from a where experiment_id = 'exp_checkout_redesign' and variant = 'treatment'
                    and hash(user_id) % 1000 < {int(CRASHING_SHARE * 1000)}""")
    con.execute(f"copy a to '{assignments}' (format parquet)")
    con.execute(f"copy e to '{errors}' (format parquet)")
    con.close()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    landing = tmp_path_factory.mktemp("planted") / "landing"
    shutil.copytree(SAMPLE, landing)
    _plant(landing)
    warehouse = tmp_path_factory.mktemp("planted-data") / "northstar.duckdb"
    northstar("build", "--landing", str(landing), "--warehouse", str(warehouse))
    server = Server(warehouse)
    try:
        server.wait_ready()
        import httpx

        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            yield client, landing, warehouse
    finally:
        server.stop()


def test_planted_multiple_exposure_and_out_of_window_assignments_are_reported(planted):
    client, landing, _ = planted
    body = client.get(f"/v1/experiments/{EXPERIMENT}/health").json()
    oracle = Oracle(landing)
    before_planting = 7  # the sample's own users in both arms (test_experiment_design checks it by hand)
    several = oracle.sql(
        """select count(*) from (select a.user_id from experiment_assignments a
                            join users u using (user_id) where u.is_internal is not true and a.experiment_id = ?
                            group by 1 having count(distinct a.variant) > 1)""",
        [EXPERIMENT],
    )[0][0]
    assert several == before_planting + REASSIGNED
    assert body["multiple_exposure_users"] == several
    assert body["multiple_exposure_share"] == pytest.approx(several / body["users"])
    assert body["multiple_exposure_warning"] is True
    assert body["assigned_before_start"] == BEFORE and body["assigned_after_end"] == AFTER
    assert body["out_of_window_warning"] is True
    assert body["imbalanced_days"] == [LOPSIDED_DAY.isoformat()]
    warnings = " ".join(body["warnings"])
    assert f"{several} users" in warnings and "more than one arm" in warnings
    assert f"{BEFORE} before it started, {AFTER} after it ended" in warnings
    assert LOPSIDED_DAY.isoformat() in warnings
    # The untouched experiment stays healthy.
    other = client.get("/v1/experiments/exp_search_ranking_v2/health").json()
    assert other["warnings"] == [] and other["imbalanced_days"] == []


def test_planted_guardrail_harm_is_flagged_and_changes_the_decision(planted):
    client, _, warehouse = planted
    body = client.get("/v1/experiments/exp_checkout_redesign/readout").json()
    crashed = next(r for r in body["results"] if r["metric"] == "crashed")
    assert crashed["role"] == "guardrail" and crashed["ci_low"] > 0
    assert "guardrail_harm" in crashed["flags"]
    conversion = next(r for r in body["results"] if r["metric"] == "conversion")
    assert conversion["ci_low"] > 0  # the goal still wins: on the sample the decision is "ship"
    [decision] = body["decisions"]
    assert decision["decision"] == "roll back" and decision["failing_guardrails"] == ["crashed"]
    assert "guardrail crashed is significantly worse" in decision["sentence"]
    assert "although conversion improved" in decision["sentence"]
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        written = con.execute(
            "select decision, flags from marts.fct_experiment_results where experiment_result_key"
            " = 'exp_checkout_redesign|treatment|crashed|all'"
        ).fetchone()
        health = con.execute(
            "select multiple_exposure_warning, out_of_window_warning, imbalanced_days "
            f"from marts.fct_experiment_health where experiment_id = '{EXPERIMENT}'"
        ).fetchone()
    finally:
        con.close()
    assert written[0] == "roll back" and "guardrail_harm" in written[1]
    assert health == (True, True, 1)
