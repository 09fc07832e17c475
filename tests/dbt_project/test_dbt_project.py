"""Tests of the dbt project in dbt_project/.

* `dbt parse` writes a semantic manifest holding every governed metric.
* `dbt build` over a tiny hand-written landing set passes, and a few mart
  facts match hand-written DuckDB SQL over the same landing files.
* Broken landing data (a non-identical duplicate event_id, an orphan user_id)
  makes `dbt build` fail.

Run from anywhere; dbt runs with cwd = repository root, as the orchestrator does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

duckdb = pytest.importorskip("duckdb")

REPO = Path(__file__).resolve().parents[2]
PROJECT = REPO / "dbt_project"

LANDING_TABLES = (
    "accounts",
    "users",
    "events",
    "releases",
    "launches",
    "experiments",
    "experiment_assignments",
    "errors",
    "incidents",
    "support_tickets",
    "feedback",
)

PACK_METRICS = {
    "events": "simple",
    "active_users": "simple",
    "sessions": "simple",
    "new_users": "simple",
    "revenue": "simple",
    "paying_users": "simple",
    "feature_users": "simple",
    "crashes": "simple",
    "crashed_users": "simple",
    "errors": "simple",
    "incidents": "simple",
    "mttr_hours": "simple",
    "tickets": "simple",
    "nps_points": "simple",
    "nps_responses": "simple",
    "csat_satisfied": "simple",
    "csat_responses": "simple",
    "d7_retained_users": "simple",
    "accounts": "simple",
    "arpu": "ratio",
    "feature_adoption_rate": "ratio",
    "nps": "ratio",
    "csat": "ratio",
    "d7_retention": "ratio",
    "crash_free_user_rate": "derived",
    "errors_per_1k_events": "derived",
}

# ---------------------------------------------------------------------------
# a tiny landing set
# ---------------------------------------------------------------------------

# Each table: a DuckDB query producing its rows. Column types follow the
# landing contract (Parquet is typed; users is also written as CSV to exercise
# the all-varchar path).
LANDING_SQL = {
    "accounts": """
        select * from (values
            ('a1', 'Acme',    'pro',        'software', 'amer', timestamp '2023-12-01 09:00:00'),
            ('a2', 'Globex',  'free',       null,       'emea', timestamp '2023-12-05 09:00:00'),
            ('a3', 'Initech', 'enterprise', 'finance',  'apac', timestamp '2023-12-10 09:00:00')
        ) as t(account_id, account_name, plan, industry, region, created_at)
    """,
    "users": """
        select * from (values
            ('u1', 'a1', timestamp '2024-01-01 10:00:00', 'US', false),
            ('u2', 'a1', timestamp '2024-01-02 23:30:00', null, false),
            ('u3', 'a2', timestamp '2024-01-01 08:00:00', 'DE', true),
            ('u4', 'a3', timestamp '2024-01-05 12:00:00', 'JP', false)
        ) as t(user_id, account_id, signup_at, country, is_internal)
    """,
    # two part files; the second carries an extra column (ignored by staging)
    "events/part-0": """
        select * from (values
            ('e1', 'u1', 's1', 'page_view', timestamp '2024-01-01 11:00:00', 'web', null,    null,       null::decimal(18,2)),
            ('e1', 'u1', 's1', 'page_view', timestamp '2024-01-01 11:00:00', 'web', null,    null,       null::decimal(18,2)),
            ('e2', 'u1', 's1', 'purchase',  timestamp '2024-01-03 09:00:00', 'web', null,    'checkout', 19.99::decimal(18,2)),
            ('e3', 'u2', 's2', 'app_open',  timestamp '2024-01-02 23:45:00', 'ios', '1.2.0', null,       null::decimal(18,2))
        ) as t(event_id, user_id, session_id, event_name, event_ts, platform, app_version, feature_key, revenue_usd)
    """,
    "events/part-1": """
        select * from (values
            ('e3', 'u2', 's2', 'app_open',  timestamp '2024-01-02 23:45:00', 'ios',     '1.2.0', null,       null::decimal(18,2), 'x'),
            ('e4', 'u2', 's3', 'app_open',  timestamp '2024-01-10 08:00:00', 'ios',     '1.2.0', 'search',   null::decimal(18,2), 'x'),
            ('e5', 'u3', 's4', 'purchase',  timestamp '2024-01-02 10:00:00', 'android', '1.1.0', 'checkout', 100.00::decimal(18,2), 'x'),
            ('e6', 'u1', 's5', 'purchase',  timestamp '2024-01-08 10:00:00', 'android', '1.1.0', 'checkout', 5.01::decimal(18,2), 'x')
        ) as t(event_id, user_id, session_id, event_name, event_ts, platform, app_version, feature_key, revenue_usd, extra_col)
    """,
    "releases": """
        select * from (values
            ('ios',     '1.1.0', timestamp '2023-12-01 00:00:00'),
            ('ios',     '1.2.0', timestamp '2023-12-20 00:00:00'),
            ('android', '1.1.0', timestamp '2023-12-02 00:00:00')
        ) as t(platform, app_version, released_at)
    """,
    "launches": """
        select * from (values
            ('l1', 'checkout', 'New checkout', 'major', 'payments', timestamp '2024-01-02 00:00:00'),
            ('l2', 'search',   'Fuzzy search', 'minor', 'discovery', timestamp '2024-01-04 00:00:00')
        ) as t(launch_id, feature_key, launch_name, tier, owner_team, launched_at)
    """,
    "experiments": """
        select * from (values
            ('x1', 'Checkout button colour', 'checkout', 'Green converts better', 'control', timestamp '2024-01-01 00:00:00', null::timestamp)
        ) as t(experiment_id, experiment_name, feature_key, hypothesis, control_variant, started_at, ended_at)
    """,
    "experiment_assignments": """
        select * from (values
            ('x1', 'u1', 'treatment', timestamp '2024-01-01 12:00:00'),
            ('x1', 'u1', 'control',   timestamp '2024-01-03 12:00:00'),
            ('x1', 'u2', 'control',   timestamp '2024-01-03 12:00:00'),
            ('x1', 'u3', 'treatment', timestamp '2024-01-02 12:00:00')
        ) as t(experiment_id, user_id, variant, assigned_at)
    """,
    "errors": """
        select * from (values
            ('r1', 'u1', 's1', timestamp '2024-01-01 11:05:00', 'web',     null,    'crash',   'TypeError'),
            ('r2', null, null, timestamp '2024-01-02 11:05:00', 'ios',     '1.2.0', 'error',   'Timeout'),
            ('r3', 'u3', 's4', timestamp '2024-01-02 10:01:00', 'android', '1.1.0', 'crash',   'OOM'),
            ('r4', 'u2', 's2', timestamp '2024-01-02 23:50:00', 'ios',     '1.2.0', 'warning', 'SlowFrame')
        ) as t(error_id, user_id, session_id, occurred_at, platform, app_version, severity, error_type)
    """,
    "incidents": """
        select * from (values
            ('i1', 'sev2', timestamp '2024-01-02 10:00:00', timestamp '2024-01-02 13:30:00', 'checkout', 'l1'),
            ('i2', 'sev4', timestamp '2024-01-05 10:00:00', null::timestamp,                 null,       null)
        ) as t(incident_id, severity, opened_at, resolved_at, feature_key, launch_id)
    """,
    "support_tickets": """
        select * from (values
            ('t1', 'a1', 'u1', timestamp '2024-01-03 10:00:00', timestamp '2024-01-04 10:00:00', 'billing', 'high',   'checkout'),
            ('t2', 'a2', null, timestamp '2024-01-04 10:00:00', null::timestamp,                 'access',  'normal', null),
            ('t3', 'a2', 'u3', timestamp '2024-01-04 11:00:00', null::timestamp,                 'bug',     'low',    null)
        ) as t(ticket_id, account_id, user_id, created_at, resolved_at, category, priority, feature_key)
    """,
    "feedback": """
        select * from (values
            ('f1', 'u1', timestamp '2024-01-04 10:00:00', 'in_app', 10,        5,         'love it', 'checkout'),
            ('f2', 'u2', timestamp '2024-01-04 11:00:00', 'survey', 6,         null::int, null,      null),
            ('f3', 'u3', timestamp '2024-01-04 12:00:00', 'email',  9,         4,         null,      null),
            ('f4', 'u1', timestamp '2024-01-05 10:00:00', 'email',  null::int, 3,         null,      null)
        ) as t(feedback_id, user_id, submitted_at, channel, nps_score, csat_score, comment, feature_key)
    """,
}


def write_landing(root: Path, extra_events_sql: str | None = None) -> dict[str, str]:
    """Write the landing set under `root`; return the dbt `landing` var for it.

    `extra_events_sql` adds a further events part file (to break the data)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "events").mkdir(exist_ok=True)
    con = duckdb.connect()
    try:
        for name, sql in LANDING_SQL.items():
            con.execute(f"copy ({sql}) to '{root / name}.parquet' (format parquet)")
        if extra_events_sql:
            con.execute(f"copy ({extra_events_sql}) to '{root}/events/part-9.parquet' (format parquet)")
        # users also as CSV: the all-varchar path must cast every column
        con.execute(f"copy ({LANDING_SQL['users']}) to '{root}/users.csv' (header true)")
    finally:
        con.close()
    landing = {t: f"read_parquet('{root}/{t}.parquet')" for t in LANDING_TABLES}
    landing["events"] = f"read_parquet('{root}/events/*.parquet', union_by_name=true)"
    landing["users"] = f"read_csv('{root}/users.csv', header=true, all_varchar=true)"
    return landing


# ---------------------------------------------------------------------------
# running dbt
# ---------------------------------------------------------------------------


def _dbt_executable() -> str:
    local = Path(sys.executable).with_name("dbt")
    if local.exists():
        return str(local)
    found = shutil.which("dbt")
    if not found:
        pytest.skip("dbt is not installed")
    return found


def run_dbt(args: list[str], target_path: Path, db_path: Path, landing: dict | None = None):
    cmd = [
        _dbt_executable(),
        *args,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target-path",
        str(target_path),
        "--log-path",
        str(target_path / "logs"),
    ]
    if landing is not None:
        cmd += ["--vars", json.dumps({"landing": landing})]
    env = dict(os.environ, NORTHSTAR_DBT_DUCKDB_PATH=str(db_path), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dbt_build")
    landing_dir = tmp / "landing"
    landing = write_landing(landing_dir)
    db_path = tmp / "northstar.duckdb"
    result = run_dbt(["build"], tmp / "target", db_path, landing)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    con = duckdb.connect(str(db_path), read_only=True)
    yield con, landing_dir, result
    con.close()


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


def test_parse_writes_semantic_manifest(tmp_path):
    result = run_dbt(["parse"], tmp_path / "target", tmp_path / "parse.duckdb")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    manifest = json.loads((tmp_path / "target" / "semantic_manifest.json").read_text())
    metrics = {m["name"]: m for m in manifest["metrics"]}
    for name, metric_type in PACK_METRICS.items():
        assert name in metrics, f"metric {name} missing from the semantic manifest"
        assert metrics[name]["type"] == metric_type, name
        assert metrics[name].get("label"), name
        assert metrics[name].get("description"), name
    semantic_models = {sm["name"]: sm for sm in manifest["semantic_models"]}
    assert set(semantic_models) >= {"events", "errors", "incidents", "support_tickets", "feedback", "users", "accounts"}
    measures = [m["name"] for sm in manifest["semantic_models"] for m in sm["measures"]]
    assert len(measures) == len(set(measures)), "measure names must be unique"
    assert manifest["project_configuration"]["time_spines"], "time spine not declared"


def test_build_passes_without_warnings(built):
    _, _, result = built
    assert "Completed successfully" in result.stdout
    assert "WARN=0" in result.stdout.replace(" ", ""), result.stdout[-3000:]


def test_events_are_deduplicated_and_internal_users_excluded(built):
    con, landing_dir, _ = built
    expected = (
        duckdb.connect()
        .execute(
            f"""
        select count(distinct event_id)
        from read_parquet('{landing_dir}/events/*.parquet', union_by_name=true) as e
        where e.user_id not in (
            select user_id from read_parquet('{landing_dir}/users.parquet') where is_internal
        )
        """
        )
        .fetchone()[0]
    )
    rows, distinct_ids = con.execute("select count(*), count(distinct event_id) from marts.fct_events").fetchone()
    assert rows == distinct_ids == expected == 5
    assert con.execute("select count(*) from marts.fct_events where user_id = 'u3'").fetchone()[0] == 0
    revenue = con.execute("select sum(revenue_usd) from marts.fct_events").fetchone()[0]
    assert float(revenue) == pytest.approx(25.00)


def test_errors_keep_anonymous_rows(built):
    con, _, _ = built
    ids = [r[0] for r in con.execute("select error_id from marts.fct_errors order by error_id").fetchall()]
    assert ids == ["r1", "r2", "r4"]


def test_dim_users(built):
    con, _, _ = built
    rows = con.execute(
        """
        select user_id, plan, region, signup_date, first_event_platform, is_retained_d7
        from marts.dim_users order by user_id
        """
    ).fetchall()
    assert [r[0] for r in rows] == ["u1", "u2", "u4"]
    by_id = {r[0]: r for r in rows}
    assert by_id["u1"][1:3] == ("pro", "amer")
    assert str(by_id["u2"][3]) == "2024-01-02"
    assert by_id["u1"][4] == "web" and by_id["u2"][4] == "ios" and by_id["u4"][4] is None
    # u1: event on day 2 -> retained; u2: events on day 0 and day 8 -> not; u4: no events
    assert [by_id[u][5] for u in ("u1", "u2", "u4")] == [True, False, False]


def test_other_marts(built):
    con, _, _ = built
    assert con.execute(
        "select variant, variant_count from marts.fct_experiment_assignments where user_id = 'u1'"
    ).fetchall() == [("treatment", 2)]
    assert con.execute("select count(*) from marts.fct_experiment_assignments").fetchone()[0] == 2
    assert con.execute("select resolution_hours from marts.fct_incidents order by incident_id").fetchall() == [
        (3.5,),
        (None,),
    ]
    assert con.execute("select ticket_id from marts.fct_support_tickets order by ticket_id").fetchall() == [
        ("t1",),
        ("t2",),
    ]
    assert con.execute("select feedback_id, nps_category from marts.fct_feedback order by feedback_id").fetchall() == [
        ("f1", "promoter"),
        ("f2", "detractor"),
        ("f4", None),
    ]
    assert con.execute(
        "select release_key, previous_app_version from marts.dim_releases order by release_key"
    ).fetchall() == [("android:1.1.0", None), ("ios:1.1.0", None), ("ios:1.2.0", "1.1.0")]
    n_days, first_day, last_day = con.execute(
        "select count(*), min(date_day), max(date_day) from marts.metricflow_time_spine"
    ).fetchone()
    assert (str(first_day), str(last_day)) == ("2015-01-01", "2035-12-31")
    assert n_days == 7670


BROKEN_EVENTS = {
    # same event_id as e2, but not an exact duplicate (another timestamp)
    "non_identical_duplicate_event_id": """
        select 'e2' as event_id, 'u1' as user_id, 's1' as session_id, 'purchase' as event_name,
               timestamp '2024-01-03 09:00:01' as event_ts, 'web' as platform, null as app_version,
               'checkout' as feature_key, 19.99::decimal(18,2) as revenue_usd
    """,
    # an event of a user that does not exist
    "orphan_user_id": """
        select 'e99' as event_id, 'u_missing' as user_id, 's9' as session_id, 'page_view' as event_name,
               timestamp '2024-01-03 09:00:00' as event_ts, 'web' as platform, null as app_version,
               null as feature_key, null::decimal(18,2) as revenue_usd
    """,
}


# the data test expected to catch each breakage
EXPECTED_FAILURE = {
    "non_identical_duplicate_event_id": "unique_stg_product__events_event_id",
    "orphan_user_id": "relationships_fct_events_user_id",
}


@pytest.mark.parametrize("case", sorted(BROKEN_EVENTS))
def test_broken_landing_fails_build(tmp_path, case):
    landing = write_landing(tmp_path / "landing", extra_events_sql=BROKEN_EVENTS[case])
    result = run_dbt(["build"], tmp_path / "target", tmp_path / "broken.duckdb", landing)
    assert result.returncode != 0, result.stdout[-3000:]
    failed = [line for line in result.stdout.splitlines() if " FAIL " in line]
    assert any(EXPECTED_FAILURE[case] in line for line in failed), result.stdout[-3000:]


if __name__ == "__main__":  # write the landing set somewhere for manual runs
    print(json.dumps({"landing": write_landing(Path(sys.argv[1]).resolve())}))
