"""`northstar build`: the landing contract is enforced with named errors, a failed build
never replaces the served warehouse, and a good one is swapped in atomically."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from northstar.build import build
from northstar.errors import BuildFailed, LandingContractViolation
from northstar.landing import check_contract, locate
from tests.conftest import REPO, SAMPLE

DBT_PROJECT = REPO / "dbt_project"


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    """A private copy of the sample landing data to break."""
    target = tmp_path / "landing"
    shutil.copytree(SAMPLE, target)
    return target


def rewrite(landing: Path, table: str, sql: str) -> None:
    """Replace a landing table by the result of `sql` over it (as `t`), written as CSV."""
    located = locate(landing)[table]
    con = duckdb.connect()
    con.execute(f"create table t as select * from {located.reader_sql()}")
    out = landing / f"{table}.csv"
    con.execute(f"copy ({sql}) to '{out}' (header, delimiter ',')")
    con.close()
    if located.path.is_dir():
        shutil.rmtree(located.path)
    elif located.path != out:
        located.path.unlink()


def add_conflicting_duplicate(landing: Path) -> None:
    """Two different rows with the same event_id: not an exact duplicate, so a build must stop
    (the pre-flight refuses it before dbt starts)."""
    rewrite(
        landing,
        "events",
        "select * from t union all select * replace ('tampered' as event_name) from (select * from t limit 1)",
    )


FAILING_TEST = "assert_no_purchase_over_2000"


def failing_dbt_project(tmp_path: Path) -> Path:
    """Our dbt project plus an error-severity singular test that the sample fails (one purchase
    of an external user is over 2,000 USD): a build that fails inside dbt, after the pre-flight
    passed, on any warehouse."""
    project = tmp_path / "dbt_project_failing"
    shutil.copytree(DBT_PROJECT, project, ignore=shutil.ignore_patterns("target", "logs"))
    (project / "tests").mkdir(exist_ok=True)
    (project / "tests" / f"{FAILING_TEST}.sql").write_text(
        "select event_id, revenue_usd from {{ ref('fct_events') }} where revenue_usd > 2000\n"
    )
    return project


def over_2000(landing: Path) -> str:
    """The event the failing test finds, computed from the landing files."""
    ((event_id,),) = duckdb.sql(
        f"select e.event_id from {locate(landing)['events'].reader_sql()} e "
        f"join {locate(landing)['users'].reader_sql()} u using (user_id) "
        "where e.revenue_usd > 2000 and not u.is_internal"
    ).fetchall()
    return event_id


def test_the_sample_meets_the_contract():
    assert set(check_contract(SAMPLE)) == set(locate(SAMPLE))


def test_missing_table_is_named(landing):
    located = locate(landing)["incidents"]
    located.path.unlink() if located.path.is_file() else shutil.rmtree(located.path)
    with pytest.raises(LandingContractViolation, match="incidents"):
        check_contract(landing)


def test_missing_column_is_named(landing):
    rewrite(landing, "users", "select * exclude (signup_at) from t")
    with pytest.raises(LandingContractViolation) as info:
        check_contract(landing)
    assert info.value.details == {"table": "users", "column": "signup_at"}


def test_uncastable_value_is_named_with_sample_rows(landing):
    rewrite(
        landing,
        "feedback",
        "select * replace (case when row_number() over () <= 2 then 'ten' else cast(nps_score as varchar) end as nps_score) from t",
    )
    with pytest.raises(LandingContractViolation) as info:
        check_contract(landing)
    assert "feedback" in info.value.message and "nps_score" in info.value.message
    assert info.value.details["sample"] == ["ten", "ten"]


def test_rows_that_differ_under_one_event_id_are_refused_before_dbt(landing):
    add_conflicting_duplicate(landing)
    with pytest.raises(LandingContractViolation) as info:
        check_contract(landing)
    assert info.value.details["table"] == "events" and info.value.details["column"] == "event_id"
    assert "duplicate key" in info.value.message


def test_csv_landing_files_are_accepted(landing):
    rewrite(landing, "accounts", "select * from t")
    assert locate(landing)["accounts"].format == "csv"
    check_contract(landing)


def test_failed_build_leaves_the_served_warehouse_untouched_then_a_good_one_swaps_in(landing, tmp_path):
    warehouse = tmp_path / "data" / "northstar.duckdb"
    first = build(landing, warehouse, DBT_PROJECT, docs=False)
    served_target = os.readlink(warehouse)
    con = duckdb.connect(str(warehouse), read_only=True)  # a reader holds the served file open
    events_before = con.execute("select count(*) from marts.fct_events").fetchone()[0]

    with pytest.raises(BuildFailed) as info:
        build(landing, warehouse, failing_dbt_project(tmp_path), docs=False)
    message = info.value.message
    assert FAILING_TEST in message and "sample rows" in message and repr(over_2000(landing)) in message, message
    assert os.readlink(warehouse) == served_target
    assert con.execute("select count(*) from marts.fct_events").fetchone()[0] == events_before
    assert not (first.directory.parent / info.value.details["build_id"]).exists()

    shutil.rmtree(landing)
    shutil.copytree(SAMPLE, landing)
    second = build(landing, warehouse, DBT_PROJECT, docs=False)
    assert os.readlink(warehouse) != served_target
    assert Path(os.path.realpath(warehouse)) == second.directory / "warehouse.duckdb"
    # The old reader still answers from the file it opened.
    assert con.execute("select count(*) from marts.fct_events").fetchone()[0] == events_before
    con.close()
