"""Tests of the synthetic landing-data generator: contract, integrity, determinism, story.

The contract checks hold the files to the landing contract as written (column names and
types are spelled out here, not imported from the generator). The story checks read the
files with DuckDB the way the product would and look for the planted facts.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seeds.generator import (
    BAD_RELEASE,
    DEFAULT_USERS,
    EXPERIMENTS,
    HOTFIX_RELEASE,
    INCIDENT_LAUNCH_ID,
    LAUNCHES,
    PLANTED,
    SAMPLE_DIR,
    GenerationSummary,
    generate,
)
from seeds.story import story_timeline

S, TS, B, I32 = pa.string(), pa.timestamp("us"), pa.bool_(), pa.int32()
DEC = pa.decimal128(18, 2)

#: The landing contract: (column, type, nullable) per table.
CONTRACT: dict[str, list[tuple[str, pa.DataType, bool]]] = {
    "accounts": [
        ("account_id", S, False),
        ("account_name", S, False),
        ("plan", S, False),
        ("industry", S, True),
        ("region", S, False),
        ("created_at", TS, False),
    ],
    "users": [
        ("user_id", S, False),
        ("account_id", S, False),
        ("signup_at", TS, False),
        ("country", S, True),
        ("is_internal", B, False),
    ],
    "events": [
        ("event_id", S, False),
        ("user_id", S, False),
        ("session_id", S, False),
        ("event_name", S, False),
        ("event_ts", TS, False),
        ("platform", S, False),
        ("app_version", S, True),
        ("feature_key", S, True),
        ("revenue_usd", DEC, True),
    ],
    "releases": [("platform", S, False), ("app_version", S, False), ("released_at", TS, False)],
    "launches": [
        ("launch_id", S, False),
        ("feature_key", S, False),
        ("launch_name", S, False),
        ("tier", S, False),
        ("owner_team", S, False),
        ("launched_at", TS, False),
    ],
    "experiments": [
        ("experiment_id", S, False),
        ("experiment_name", S, False),
        ("feature_key", S, True),
        ("hypothesis", S, True),
        ("control_variant", S, False),
        ("started_at", TS, False),
        ("ended_at", TS, True),
    ],
    "experiment_assignments": [
        ("experiment_id", S, False),
        ("user_id", S, False),
        ("variant", S, False),
        ("assigned_at", TS, False),
    ],
    "errors": [
        ("error_id", S, False),
        ("user_id", S, True),
        ("session_id", S, True),
        ("occurred_at", TS, False),
        ("platform", S, False),
        ("app_version", S, True),
        ("severity", S, False),
        ("error_type", S, False),
    ],
    "incidents": [
        ("incident_id", S, False),
        ("severity", S, False),
        ("opened_at", TS, False),
        ("resolved_at", TS, True),
        ("feature_key", S, True),
        ("launch_id", S, True),
    ],
    "support_tickets": [
        ("ticket_id", S, False),
        ("account_id", S, False),
        ("user_id", S, True),
        ("created_at", TS, False),
        ("resolved_at", TS, True),
        ("category", S, False),
        ("priority", S, False),
        ("feature_key", S, True),
    ],
    "feedback": [
        ("feedback_id", S, False),
        ("user_id", S, False),
        ("submitted_at", TS, False),
        ("channel", S, False),
        ("nps_score", I32, True),
        ("csat_score", I32, True),
        ("comment", S, True),
        ("feature_key", S, True),
    ],
}
PRIMARY_KEYS = {
    "accounts": "account_id",
    "users": "user_id",
    "launches": "launch_id",
    "experiments": "experiment_id",
    "errors": "error_id",
    "incidents": "incident_id",
    "support_tickets": "ticket_id",
    "feedback": "feedback_id",
}
SMALL = {"users": 600, "days": 28, "seed": 11}
#: Big enough that experiment arms have a few thousand users each.
STORY = {"users": 16000, "days": 60, "seed": 7}


def read(landing: Path, table: str) -> pa.Table:
    """Read a landing table (events: all its part files)."""
    if table == "events":
        return pa.concat_tables(pq.read_table(p) for p in sorted((landing / "events").glob("*.parquet")))
    return pq.read_table(landing / f"{table}.parquet")


def connect(landing: Path) -> duckdb.DuckDBPyConnection:
    """DuckDB views over the landing files; ``events`` is deduplicated, ``events_raw`` is not."""
    con = duckdb.connect()
    for table in CONTRACT:
        if table == "events":
            con.execute(
                f"create view events_raw as select * from read_parquet('{landing}/events/*.parquet', filename = true)"
            )
            con.execute("create view events as select distinct * exclude (filename) from events_raw")
        else:
            con.execute(f"create view {table} as select * from read_parquet('{landing}/{table}.parquet')")
    # Users excluded from every product metric, and their rows.
    con.execute("create view ext_users as select * from users where not is_internal")
    con.execute("create view ext_events as select e.* from events e join ext_users using (user_id)")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, GenerationSummary, list[tuple[int, int]]]:
    out = tmp_path_factory.mktemp("small")
    calls: list[tuple[int, int]] = []
    summary = generate(out, progress=lambda done, total: calls.append((done, total)), **SMALL)
    return out, summary, calls


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    out = tmp_path_factory.mktemp("story")
    generate(out, **STORY)
    return connect(out)


# ----------------------------------------------------------------- contract


def test_every_table_has_exactly_the_contract_columns_and_types(small) -> None:
    out, _, _ = small
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.parquet" for t in CONTRACT if t != "events"] + ["events"]
    )
    for table, columns in CONTRACT.items():
        tbl = read(out, table)
        assert [(f.name, f.type) for f in tbl.schema] == [(c, t) for c, t, _ in columns], table
        for name, _, nullable in columns:
            if not nullable:
                assert tbl.column(name).null_count == 0, f"{table}.{name} has nulls"


def test_events_are_parquet_part_files(small) -> None:
    out, summary, _ = small
    parts = sorted((out / "events").iterdir())
    assert len(parts) > 1 and len(parts) == summary.event_parts
    assert all(p.name.startswith("part-") and p.suffix == ".parquet" for p in parts)


def test_summary_counts_match_files_and_progress_reaches_the_end(small) -> None:
    out, summary, calls = small
    assert summary.out == out
    assert summary.tables == {t: read(out, t).num_rows for t in CONTRACT}
    assert calls[-1] == (SMALL["days"], SMALL["days"])
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_same_seed_gives_identical_data_and_another_seed_does_not(small, tmp_path: Path) -> None:
    out, _, _ = small
    again = generate(tmp_path / "again", **SMALL)
    for table in CONTRACT:
        assert read(again.out, table).equals(read(out, table)), table
    other = generate(tmp_path / "other", **{**SMALL, "seed": SMALL["seed"] + 1})
    assert not read(other.out, "events").equals(read(out, "events"))


def test_regenerating_replaces_previous_landing_files(tmp_path: Path) -> None:
    generate(tmp_path, users=300, days=21)
    summary = generate(tmp_path, users=20, days=3)
    assert len(list((tmp_path / "events").iterdir())) == summary.event_parts
    assert read(tmp_path, "users").num_rows == 20


def test_domains(small) -> None:
    con = connect(small[0])
    checks = {
        "select distinct plan from accounts": {"free", "pro", "enterprise"},
        "select distinct region from accounts": {"amer", "emea", "apac"},
        "select distinct platform from events": {"web", "ios", "android"},
        "select distinct platform from releases": {"ios", "android"},
        "select distinct severity from errors": {"crash", "error", "warning"},
        "select distinct tier from launches": {"major", "minor", "experiment"},
        "select distinct channel from feedback": {"in_app", "survey", "email"},
        "select distinct control_variant from experiments": {"control"},
        "select distinct variant from experiment_assignments": {"control", "treatment"},
    }
    for sql, expected in checks.items():
        assert {r[0] for r in con.execute(sql).fetchall()} == expected, sql
    assert {r[0] for r in con.execute("select distinct severity from incidents").fetchall()} <= {
        "sev1",
        "sev2",
        "sev3",
        "sev4",
    }
    assert {r[0] for r in con.execute("select distinct priority from support_tickets").fetchall()} <= {
        "low",
        "normal",
        "high",
        "urgent",
    }
    assert one(
        con, "select count(*) from feedback where nps_score not between 0 and 10 or csat_score not between 1 and 5"
    ) == (0,)
    assert one(
        con, "select count(*) from users where country is not null and not regexp_matches(country, '^[A-Z]{2}$')"
    ) == (0,)
    # Revenue exactly on purchases (positive) and refunds (negative); app_version exactly on mobile.
    assert one(
        con,
        "select count(*) from events where (event_name in ('purchase', 'refund')) "
        "<> (revenue_usd is not null) or (event_name = 'purchase') <> (revenue_usd > 0)",
    ) == (0,)
    # Some purchases are refunded, later the same UTC day, in the purchase's session, by at most its amount.
    refunds, unmatched = one(
        con,
        """
        select count(*), count(*) filter (where p.event_id is null)
        from events r left join events p
          on p.event_name = 'purchase' and p.session_id = r.session_id and p.user_id = r.user_id
         and p.event_ts < r.event_ts and cast(p.event_ts as date) = cast(r.event_ts as date)
         and -r.revenue_usd <= p.revenue_usd
        where r.event_name = 'refund'""",
    )
    assert refunds > 0 and unmatched == 0
    assert one(con, "select count(*) from events where (platform = 'web') <> (app_version is null)") == (0,)


def test_timestamps_are_consistent(small) -> None:
    con = connect(small[0])
    start = datetime.datetime(2026, 1, 5)
    end = start + datetime.timedelta(days=SMALL["days"])
    assert one(con, "select min(event_ts) >= ? and max(event_ts) < ? from events", [start, end]) == (True,)
    assert one(con, "select count(*) from events e join users u using (user_id) where e.event_ts < u.signup_at") == (0,)
    assert one(
        con, "select count(*) from users u join accounts a using (account_id) where a.created_at > u.signup_at"
    ) == (0,)
    assert one(
        con,
        "select count(*) from experiment_assignments a join experiments e using (experiment_id) "
        "where a.assigned_at < e.started_at or a.assigned_at >= coalesce(e.ended_at, ?)",
        [end],
    ) == (0,)
    assert one(con, "select count(*) from incidents where resolved_at <= opened_at") == (0,)
    assert one(con, "select count(*) from support_tickets where resolved_at <= created_at") == (0,)
    # A session opens with its session_start event.
    assert one(
        con,
        """select count(*) from (
        select session_id, min(event_ts) first_ts, min(event_ts) filter (where event_name = 'session_start') s
        from events group by 1) where first_ts <> s""",
    ) == (0,)


# ------------------------------------------------------------- integrity


def test_keys_are_unique_except_exact_duplicate_events(small) -> None:
    con = connect(small[0])
    for table, key in PRIMARY_KEYS.items():
        assert one(con, f"select count(*) = count(distinct {key}) from {table}") == (True,), table
    assert one(con, "select count(*) = count(distinct (platform, app_version)) from releases") == (True,)
    # Events: after dropping exact duplicate rows, event_id is unique.
    raw, distinct_rows, distinct_ids = one(
        con,
        "select (select count(*) from events_raw), (select count(*) from events), "
        "(select count(distinct event_id) from events_raw)",
    )
    assert distinct_rows == distinct_ids
    assert 0.003 < (raw - distinct_rows) / raw < 0.015
    # Some duplicates land in another part file than their original.
    assert one(
        con, "select count(*) > 0 from (select event_id from events_raw group by 1 having count(distinct filename) > 1)"
    ) == (True,)


def test_referential_integrity(small) -> None:
    con = connect(small[0])
    orphans = {
        "users.account_id": "select count(*) from users where account_id not in (select account_id from accounts)",
        "events.user_id": "select count(*) from events where user_id not in (select user_id from users)",
        "feedback.user_id": "select count(*) from feedback where user_id not in (select user_id from users)",
        "assignments.user_id": "select count(*) from experiment_assignments "
        "where user_id not in (select user_id from users)",
        "assignments.experiment_id": "select count(*) from experiment_assignments "
        "where experiment_id not in (select experiment_id from experiments)",
        "errors.user_id": "select count(*) from errors where user_id is not null "
        "and user_id not in (select user_id from users)",
        "errors.session_id": "select count(*) from errors where session_id is not null "
        "and session_id not in (select session_id from events)",
        "tickets.user_id": "select count(*) from support_tickets where user_id is not null "
        "and user_id not in (select user_id from users)",
        "tickets.account_id": "select count(*) from support_tickets "
        "where account_id not in (select account_id from accounts)",
        "incidents.launch_id": "select count(*) from incidents where launch_id is not null "
        "and launch_id not in (select launch_id from launches)",
        "events.app_version": "select count(*) from events e anti join releases r using (platform, app_version) "
        "where e.platform in ('ios', 'android')",
        "errors.app_version": "select count(*) from errors e anti join releases r using (platform, app_version) "
        "where e.platform in ('ios', 'android')",
    }
    for name, sql in orphans.items():
        assert one(con, sql) == (0,), name
    # A ticket's user belongs to the ticket's account.
    assert one(
        con, "select count(*) from support_tickets t join users u using (user_id) where t.account_id <> u.account_id"
    ) == (0,)


def test_messy_but_legal_rows_are_present(small) -> None:
    con = connect(small[0])
    assert one(con, "select count(*) > 0 from users where country is null") == (True,)
    assert one(con, "select count(*) > 0 from errors where user_id is null and session_id is null") == (True,)
    assert one(con, "select count(*) > 0 from experiments where ended_at is null") == (True,)
    assert one(con, "select count(*) > 0 from incidents where resolved_at is null") == (True,)
    assert one(con, "select count(*) > 0 from feedback where nps_score is null") == (True,)


def test_internal_users_exist_and_leave_traces_everywhere(story) -> None:
    share = one(story, "select avg(is_internal::int) from users")[0]
    assert 0.02 < share < 0.04
    for table in ("events", "errors", "feedback", "support_tickets", "experiment_assignments"):
        assert one(story, f"select count(*) > 0 from {table} join users using (user_id) where is_internal") == (
            True,
        ), table


# ----------------------------------------------------------------- story


def test_planted_facts_describe_the_committed_sample() -> None:
    """PLANTED (what the tests and the README say the sample shows) is read back from the
    committed sample's own files, not from the generator's constants."""
    sample = Path(__file__).resolve().parents[2] / "seeds" / "sample"
    con = connect(sample)

    def day(sql: str, params: list) -> str | None:
        found = one(con, sql, params)[0]
        return None if found is None else found.date().isoformat()

    bad = PLANTED["bad_release"]
    assert (bad["platform"], bad["app_version"]) == BAD_RELEASE
    assert (
        day(
            "select released_at from releases where platform = ? and app_version = ?",
            [bad["platform"], bad["app_version"]],
        )
        == bad["released_on"]
    )
    assert (
        day(
            "select released_at from releases where platform = ? and app_version = ?",
            [bad["platform"], bad["hotfix_app_version"]],
        )
        == bad["hotfix_released_on"]
    )
    for launch_id, launch in PLANTED["launches"].items():
        assert day("select launched_at from launches where launch_id = ?", [launch_id]) == launch["launched_on"]
    for experiment_id, experiment in PLANTED["experiments"].items():
        assert (
            day("select started_at from experiments where experiment_id = ?", [experiment_id])
            == experiment["started_on"]
        )
        assert (
            day("select ended_at from experiments where experiment_id = ?", [experiment_id]) == experiment["ended_on"]
        )
    assert one(con, "select count(*) from incidents where launch_id = ?", [PLANTED["incident_launch_id"]])[0] > 0
    tl = story_timeline(days=28)
    assert tl.release_day(*HOTFIX_RELEASE) > tl.bad_release_day  # the story survives a short window


def test_weekdays_are_busier_than_weekends(story) -> None:
    weekday, weekend = one(
        story,
        """
        select avg(n) filter (where isodow(d) <= 5), avg(n) filter (where isodow(d) > 5)
        from (select event_ts::date d, count(distinct user_id) n from ext_events group by 1)""",
    )
    assert weekday > 1.4 * weekend


def test_new_users_retain_meaningfully(story) -> None:
    """Share of in-window signups active on any of days 1..7 after signup."""
    (d7,) = one(
        story,
        """
        with cohort as (select user_id, signup_at::date d from ext_users
                        where signup_at >= '2026-01-05' and signup_at < '2026-02-20'),
             active as (select distinct user_id, event_ts::date d from ext_events)
        select avg((exists (select 1 from active a where a.user_id = c.user_id
                            and a.d between c.d + 1 and c.d + 7))::int) from cohort c""",
    )
    assert 0.3 < d7 < 0.6


def test_bad_release_crashes_far_more_than_other_releases(story) -> None:
    rows = story.execute(
        """
        with s as (select platform, app_version, count(*) sessions from events
                   where event_name = 'session_start' and platform <> 'web' group by 1, 2),
             c as (select platform, app_version, count(*) crashes from errors
                   where severity = 'crash' and platform <> 'web' group by 1, 2)
        select case when (platform, app_version) = (?, ?) then 'bad'
                    when (platform, app_version) = (?, ?) then 'hotfix' else 'other' end,
               sum(coalesce(crashes, 0)) / sum(sessions)
        from s left join c using (platform, app_version) group by 1""",
        [*BAD_RELEASE, *HOTFIX_RELEASE],
    ).fetchall()
    crashes_per_session = dict(rows)
    assert crashes_per_session["bad"] > 5 * crashes_per_session["other"]
    assert crashes_per_session["hotfix"] < crashes_per_session["bad"] / 3


def _conversion(con: duckdb.DuckDBPyConnection, experiment_id: str) -> dict[str, tuple[int, float]]:
    """Share of external users (in their first variant) who purchase after assignment, during the test."""
    rows = con.execute(
        """
        with first as (select user_id, arg_min(variant, assigned_at) variant, min(assigned_at) at_
                       from experiment_assignments where experiment_id = ? group by 1)
        select variant, count(*), avg((exists (
            select 1 from ext_events e where e.user_id = f.user_id and e.event_name = 'purchase'
            and e.event_ts >= f.at_ and e.event_ts < coalesce(x.ended_at, '9999-01-01')))::int)
        from first f join ext_users using (user_id) cross join (select ended_at from experiments
                                                                 where experiment_id = ?) x
        group by 1""",
        [experiment_id, experiment_id],
    ).fetchall()
    return {v: (n, c) for v, n, c in rows}


def test_checkout_experiment_has_a_real_effect_and_the_others_none(story) -> None:
    effects = {spec.experiment_id: spec.purchase_lift for spec in EXPERIMENTS}
    assert effects["exp_checkout_redesign"] > 1 and effects["exp_onboarding_tooltip"] == 1
    for experiment_id, lift in effects.items():
        conv = _conversion(story, experiment_id)
        (n_c, control), (n_t, treatment) = conv["control"], conv["treatment"]
        assert 0.45 < n_t / (n_c + n_t) < 0.55
        assert n_c > 1500
        if lift > 1:
            assert 1.08 < treatment / control < 1.45, (experiment_id, control, treatment)
        else:
            assert abs(treatment / control - 1) < 0.15, (experiment_id, control, treatment)
    ended = dict(story.execute("select experiment_id, ended_at is not null from experiments").fetchall())
    assert ended["exp_checkout_redesign"] and not all(ended.values())


def test_some_users_are_assigned_twice_to_different_variants(story) -> None:
    n_users, n_twice, n_conflicting = one(
        story,
        """
        select count(*), count(*) filter (where n > 1), count(*) filter (where variants > 1)
        from (select experiment_id, user_id, count(*) n, count(distinct variant) variants
              from experiment_assignments group by 1, 2)""",
    )
    assert n_conflicting == n_twice and 0.002 < n_twice / n_users < 0.01


def test_launched_features_appear_after_their_launch(story) -> None:
    for spec in LAUNCHES:
        launched_at = one(story, "select launched_at from launches where launch_id = ?", [spec.launch_id])[0]
        before, after = one(
            story,
            """
            with w as (select user_id, event_ts >= ? post, feature_key = ? hit from ext_events
                       where event_ts >= ? - interval 14 day)
            select count(distinct user_id) filter (where hit and not post)
                       / count(distinct user_id) filter (where not post),
                   count(distinct user_id) filter (where hit and post) / count(distinct user_id) filter (where post)
            from w""",
            [launched_at, spec.feature_key, launched_at],
        )
        assert before == 0, spec.feature_key
        assert after > 0.02, spec.feature_key


def test_the_incident_launch_causes_incidents_soon_after(story) -> None:
    n, first_after_h = one(
        story,
        """
        select count(*), min(epoch(i.opened_at - l.launched_at)) / 3600
        from incidents i join launches l using (launch_id) where launch_id = ?""",
        [INCIDENT_LAUNCH_ID],
    )
    assert n >= 2 and 0 < first_after_h < 72
    assert one(story, "select count(distinct launch_id) from incidents") == (1,)
    assert one(story, "select avg((resolved_at is not null)::int) > 0.7 from incidents") == (True,)


def test_android_users_complain_after_the_bad_release(story) -> None:
    tl = story_timeline(days=STORY["days"])
    bad = datetime.datetime.combine(tl.date(tl.bad_release_day), datetime.time())
    after = bad + datetime.timedelta(days=tl.aftermath_days)
    # Tickets per active android user-day, and NPS of android users, during vs outside the aftermath.
    rows = story.execute(
        """
        with main as (select user_id, mode(platform) platform from events group by 1),
             days as (select e.user_id, event_ts::date d from ext_events e join main using (user_id)
                      where main.platform = 'android' group by 1, 2),
             tickets as (select t.user_id, t.created_at::date d from support_tickets t
                         join main using (user_id) where main.platform = 'android'),
             nps as (select f.submitted_at::date d, nps_score from feedback f join main using (user_id)
                     where main.platform = 'android' and nps_score is not null)
        select inside,
               (select count(*) from tickets t where (t.d >= ? and t.d < ?) = inside)
                 / (select count(*) from days a where (a.d >= ? and a.d < ?) = inside),
               (select avg(nps_score) from nps where (nps.d >= ? and nps.d < ?) = inside)
        from (values (true), (false)) v(inside)""",
        [bad, after] * 3,
    ).fetchall()
    by = {inside: (tickets, nps) for inside, tickets, nps in rows}
    assert by[True][0] > 2 * by[False][0]
    assert by[True][1] < by[False][1] - 1.5


# ------------------------------------------------------------------ sample


def test_committed_sample_is_what_the_documented_command_generates(tmp_path: Path) -> None:
    summary = generate(tmp_path)
    assert summary.users == DEFAULT_USERS
    assert 150_000 <= summary.tables["events"] <= 300_000
    for table in CONTRACT:
        assert read(tmp_path, table).equals(read(SAMPLE_DIR, table)), f"seeds/sample/{table} is stale"
