"""One test per class of broken landing file, through `northstar build` over a served warehouse:
each is refused with an error naming the table (and the column and sample values where there are
any), and the served warehouse is unchanged: the same symlink, the same file, the same answers.

Keys, references, categories and score ranges (what else the contract forbids) are refused
by the same pre-flight: tests/northstar/test_landing_variants.py has one test per case.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from northstar.build import build
from northstar.errors import LandingContractViolation
from northstar.landing import locate
from tests.conftest import REPO, SAMPLE, BuiltWarehouse

DBT_PROJECT = REPO / "dbt_project"


@pytest.fixture(scope="module")
def served(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the session's published build, to build over."""
    data = tmp_path_factory.mktemp("bad-landing") / "data"
    data.mkdir()
    shutil.copytree(
        built_warehouse.data_dir / "builds", data / "builds", symlinks=True, ignore=shutil.ignore_patterns("failed-*")
    )
    warehouse = data / built_warehouse.warehouse.name
    os.symlink(os.readlink(built_warehouse.warehouse), warehouse)
    return warehouse


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    target = tmp_path / "landing"
    shutil.copytree(SAMPLE, target)
    return target


def snapshot(warehouse: Path) -> tuple:
    """What is served: the symlink, the file's identity, and an answer read from it."""
    real = Path(os.path.realpath(warehouse))
    st = real.stat()
    con = duckdb.connect(str(real), read_only=True)
    try:
        answer = con.execute("select count(*), count(distinct user_id) from marts.fct_events").fetchall()
    finally:
        con.close()
    return os.readlink(warehouse), st.st_ino, st.st_size, st.st_mtime_ns, answer


def replace_table(landing: Path, table: str, sql: str, fmt: str = "parquet") -> None:
    """Replace a landing table by `sql` over its current rows (as `t`), as one file."""
    located = locate(landing)[table]
    con = duckdb.connect()
    con.execute(f"create table t as select * from {located.reader_sql()}")
    out = landing / f"{table}.{fmt}"
    if located.path.is_dir():
        shutil.rmtree(located.path)
    else:
        located.path.unlink()
    options = "(format parquet)" if fmt == "parquet" else "(header, delimiter ',')"
    con.execute(f"copy ({sql}) to '{out}' {options}")
    con.close()


def missing_table(landing: Path) -> None:
    (landing / "incidents.parquet").unlink()


def missing_column(landing: Path) -> None:
    replace_table(landing, "users", "select * exclude (signup_at) from t")


def wrong_type(landing: Path) -> None:
    replace_table(
        landing,
        "feedback",
        "select * replace (case when row_number() over () <= 3 then 'ten' "
        "else cast(nps_score as varchar) end as nps_score) from t",
    )


def bad_timestamp(landing: Path) -> None:
    replace_table(
        landing,
        "events",
        "select * replace (case when row_number() over () <= 2 "
        "then '2026-02-30 25:61:00' else cast(event_ts as varchar) end as event_ts) from t",
    )


def bad_timestamp_in_csv(landing: Path) -> None:
    replace_table(
        landing,
        "accounts",
        "select * replace (case when row_number() over () = 1 "
        "then 'yesterday' else cast(created_at as varchar) end as created_at) from t",
        fmt="csv",
    )


def empty_parquet_file(landing: Path) -> None:
    (landing / "releases.parquet").write_bytes(b"")


def empty_csv_file(landing: Path) -> None:
    (landing / "launches.parquet").unlink()
    (landing / "launches.csv").write_bytes(b"")


def truncated_parquet(landing: Path) -> None:
    path = landing / "experiment_assignments.parquet"
    os.truncate(path, path.stat().st_size // 2)


def truncated_parquet_in_a_folder(landing: Path) -> None:
    part = sorted((landing / "events").glob("*.parquet"))[1]
    os.truncate(part, part.stat().st_size - 100)


CASES = {
    # breaker: (table, column, sample values, words the message must hold)
    "missing table": (missing_table, "incidents", None, None, ["incidents", "missing"]),
    "missing column": (missing_column, "users", "signup_at", None, ["users", "signup_at", "missing"]),
    "wrong type": (wrong_type, "feedback", "nps_score", ["ten", "ten", "ten"], ["feedback", "nps_score", "integer"]),
    "bad timestamp": (
        bad_timestamp,
        "events",
        "event_ts",
        ["2026-02-30 25:61:00"] * 2,
        ["events", "event_ts", "timestamp", "2026-02-30 25:61:00"],
    ),
    "bad timestamp in CSV": (
        bad_timestamp_in_csv,
        "accounts",
        "created_at",
        ["yesterday"],
        ["accounts", "created_at", "yesterday"],
    ),
    "empty Parquet file": (empty_parquet_file, "releases", None, None, ["releases", "releases.parquet", "empty"]),
    "empty CSV file": (empty_csv_file, "launches", None, None, ["launches", "launches.csv", "empty"]),
    "truncated Parquet": (
        truncated_parquet,
        "experiment_assignments",
        None,
        None,
        ["experiment_assignments", "experiment_assignments.parquet"],
    ),
    "truncated Parquet in a folder": (truncated_parquet_in_a_folder, "events", None, None, ["events", "part-00001"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_landing_file_is_named_and_the_served_warehouse_is_unchanged(case, landing, served):
    breaker, table, column, sample, words = CASES[case]
    breaker(landing)
    before = snapshot(served)
    builds_before = sorted(p.name for p in (served.parent / "builds").iterdir())

    with pytest.raises(LandingContractViolation) as info:
        build(landing, served, DBT_PROJECT, docs=False)

    error = info.value
    assert error.details.get("table") == table
    assert error.details.get("column") == column
    assert error.details.get("sample") == sample
    for word in words:
        assert word in error.message, f"{word!r} not in: {error.message}"
    assert snapshot(served) == before
    # Refused before dbt ran: no build directory was even started.
    assert sorted(p.name for p in (served.parent / "builds").iterdir()) == builds_before
