"""End to end on generated data with a planted effect: the readout's interval covers the true
lift, and the experiment without an effect is not significant.

The generator multiplies the per-session purchase probability of treatment users by
`purchase_lift` (x1.35 for the checkout redesign) from their assignment day to the end of the
experiment; what that does to per-user conversion is not a stated number, so it is derived
here independently of the readout: the generator's population (each user's purchase
probability p, the first draws of its random stream, reproduced with the same seed) and the
sessions each assigned user actually had in its window (read from the raw landing files) give
every user's expected conversion under control, 1 - (1 - p)^k, and under treatment,
1 - (1 - lift * p)^k. The true lift is the ratio of their population means minus one. The
interval is a 95% interval, so with these fixed seeds it either covers or not, once and for
all; the sizes are chosen so the interval is informative (it excludes 0 by a margin).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import duckdb
import httpx
import numpy as np
import pytest

from seeds import generator
from seeds.story import EXPERIMENTS, story_timeline
from tests.conftest import Server, northstar

CHECKOUT = "exp_checkout_redesign"
NULL = "exp_onboarding_tooltip"

SESSIONS_IN_WINDOW = """
    with first as (
        select a.user_id, a.variant, a.assigned_at,
               row_number() over (partition by a.user_id order by a.assigned_at, a.variant) as rn
        from read_parquet($assignments) a join read_parquet($users) u on u.user_id = a.user_id
        where a.experiment_id = $experiment and not u.is_internal)
    -- a treated session is one on or after the assignment day (assignment happens in the
    -- user's first session that day) and before the end
    select f.user_id, count(distinct e.session_id) as sessions
    from first f
    cross join (select ended_at from read_parquet($experiments) where experiment_id = $experiment) x
    left join read_parquet($events) e
      on e.user_id = f.user_id and e.event_ts >= date_trunc('day', f.assigned_at) and e.event_ts < x.ended_at
    where f.rn = 1
    group by f.user_id
"""


def true_conversion_lift(
    landing: Path, *, users: int, days: int, seed: int, start: dt.date = generator.DEFAULT_START
) -> float:
    """The relative lift in per-user conversion the generator planted in the checkout test."""
    rng = np.random.Generator(np.random.PCG64(seed))
    timeline = story_timeline(start, days)
    epoch_us = int((dt.datetime.combine(start, dt.time()) - dt.datetime(1970, 1, 1)) / dt.timedelta(microseconds=1))
    accounts = generator._make_accounts(rng, users)
    population = generator._make_population(rng, users, accounts, timeline, epoch_us)
    width = max(6, len(str(users)))
    con = duckdb.connect()
    try:
        rows = con.execute(
            SESSIONS_IN_WINDOW,
            {
                "assignments": str(landing / "experiment_assignments.parquet"),
                "users": str(landing / "users.parquet"),
                "experiments": str(landing / "experiments.parquet"),
                "events": str(landing / "events" / "*.parquet"),
                "experiment": CHECKOUT,
            },
        ).fetchall()
    finally:
        con.close()
    index = np.array([int(user_id[len("usr_") :]) - 1 for user_id, _ in rows])  # ids are 1-based
    assert all(len(user_id) == len("usr_") + width for user_id, _ in rows)
    sessions = np.array([k for _, k in rows], dtype=np.float64)
    p = population.purchase_p[index]
    lift = next(s.purchase_lift for s in EXPERIMENTS if s.experiment_id == CHECKOUT)
    control = 1 - (1 - p) ** sessions
    treated = 1 - (1 - np.minimum(lift * p, 1.0)) ** sessions
    return treated.mean() / control.mean() - 1


def check_readouts(client: httpx.Client, truth: float, min_margin: float) -> dict:
    planted = client.get(f"/v1/experiments/{CHECKOUT}/readout", params={"metrics": "conversion"}).json()
    row = next(r for r in planted["results"] if r["metric"] == "conversion")
    assert row["ci_low"] < truth < row["ci_high"], (truth, row)
    assert row["cuped"]["ci_low"] < truth < row["cuped"]["ci_high"], (truth, row["cuped"])
    # informative: the interval excludes no effect by a margin, and the test is significant
    assert row["ci_low"] > min_margin and row["p_value"] < 0.01
    null = client.get(f"/v1/experiments/{NULL}/readout", params={"metrics": "conversion"}).json()
    for result in null["results"]:
        assert result["p_value"] > 0.05 and result["ci_low"] < 0 < result["ci_high"], result
        assert result["cuped"]["p_value"] > 0.05, result["cuped"]
    return row


def test_planted_lift_lies_in_the_interval_on_the_sample(api):
    # The committed sample is generate(users=5500, days=90, seed=7) (seeds/README.md).
    truth = true_conversion_lift(api.landing_dir, users=5500, days=90, seed=7)
    assert 0.15 < truth < 0.25  # x1.35 per session is a smaller per-user lift: conversion saturates
    check_readouts(api.client, truth, min_margin=0.05)


@pytest.fixture(scope="module")
def larger(tmp_path_factory):
    """30,000 users with another seed: an interval about 2.3 times narrower than the sample's."""
    root = tmp_path_factory.mktemp("planted")
    landing = root / "landing"
    generator.generate(landing, users=30_000, days=90, seed=11)
    warehouse = root / "data" / "northstar.duckdb"
    northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs")
    server = Server(warehouse, env={"NORTHSTAR_SQL_PORT": "0"})
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=60) as client:
            yield landing, client
    finally:
        server.stop()


def test_planted_lift_lies_in_a_narrower_interval_on_larger_generated_data(larger):
    landing, client = larger
    truth = true_conversion_lift(landing, users=30_000, days=90, seed=11)
    row = check_readouts(client, truth, min_margin=0.1)
    assert row["ci_high"] - row["ci_low"] < 0.16
    assert math.isclose(row["relative_lift"], row["variant_mean"] / row["control_mean"] - 1, rel_tol=1e-12)
