"""Landing data as real exports hold it: every variant the landing contract allows builds, is
served, and answers as the oracle (hand-written SQL over the same raw files) says; every case
it forbids is refused by the pre-flight with one line naming table, column and sample values.

One build carries all the allowed variants at once, across tables (a build costs ~30 s):
CSV with a UTF-8 BOM, `\\r\\n` line ends, quoted commas and newlines, empty strings for nulls,
ISO-8601 timestamps with `Z`, `+00:00`, another offset and fractional seconds; Parquet with
`timestamp[us, tz=UTC]`, int64/double/decimal numeric columns, dictionary-encoded strings and
extra columns; a header-only CSV of a table that may be empty; an events folder whose parts
differ in schema (read with `union_by_name`); the sample's refunds; and rows that only break
expectations (a future event, an event before signup, an incident resolved before it opened),
which the build reports as warnings and still publishes.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import shutil
from pathlib import Path

import duckdb
import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from northstar.errors import LandingContractViolation
from northstar.landing import check_contract
from tests.api.test_metric_pack import check
from tests.conftest import REPO, SAMPLE, Server, northstar
from tests.oracle import Oracle

BLOCKED_IMPORTS = Path(__file__).resolve().parent / "blocked_imports"


def read(path: Path) -> pa.Table:
    if path.is_dir():
        return duckdb.sql(f"select * from read_parquet('{path}/*.parquet', union_by_name=true)").arrow()
    return pq.read_table(path)


def write_csv(path: Path, table: pa.Table, *, bom: bool = False, crlf: bool = False, render=None) -> None:
    """A CSV as another pipeline would export it: every field quoted as needed, nulls as ''."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(table.column_names)
    for row in table.to_pylist():
        writer.writerow(["" if v is None else (render(k, v) if render else str(v)) for k, v in row.items()])
    path.write_bytes(("\ufeff" if bom else "").encode() + out.getvalue().encode("utf-8"))


def iso(value: dt.datetime, style: str) -> str:
    if style == "Z":
        return value.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    if style == "+00:00":
        return value.isoformat(timespec="seconds") + "+00:00"
    if style == "+02:00":  # the same instant, written in another zone
        return (value + dt.timedelta(hours=2)).isoformat(timespec="seconds") + "+02:00"
    return value.isoformat(sep=" ", timespec="microseconds")  # fractional seconds


def make_variants(source: Path, target: Path) -> None:
    target.mkdir(parents=True)
    # accounts: CSV with BOM and \r\n, a name with a comma and a newline, '' for null industry, Z
    accounts = read(source / "accounts.parquet")
    names = accounts.column("account_name").to_pylist()
    names[0], names[1] = "Acme, Inc.", "Two\nLines Ltd"
    accounts = accounts.set_column(accounts.column_names.index("account_name"), "account_name", pa.array(names))
    write_csv(
        target / "accounts.csv",
        accounts,
        bom=True,
        crlf=True,
        render=lambda k, v: iso(v, "Z") if isinstance(v, dt.datetime) else str(v),
    )
    # users: CSV with +00:00 offsets, booleans as true/false, an extra column
    users = read(source / "users.parquet")
    users = users.append_column("utm_source", pa.array(["ads"] * len(users)))

    def user_field(k, v):
        if isinstance(v, dt.datetime):
            return iso(v, "+00:00")
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    write_csv(target / "users.csv", users, render=user_field)
    # errors: CSV with fractional seconds; the first rows in another offset
    errors = read(source / "errors.parquet")
    count = [0]

    def error_field(k, v):
        if isinstance(v, dt.datetime):
            count[0] += 1
            return iso(v, "+02:00" if count[0] <= 50 else "fractional")
        return str(v)

    write_csv(target / "errors.csv", errors, render=error_field)
    # incidents: header only (a table that may be empty)
    incidents = read(source / "incidents.parquet")
    write_csv(target / "incidents.csv", incidents.slice(0, 0))
    # feedback: nps as int64, csat as double, comment dictionary-encoded
    feedback = read(source / "feedback.parquet")
    feedback = feedback.set_column(
        feedback.column_names.index("nps_score"), "nps_score", feedback.column("nps_score").cast(pa.int64())
    )
    feedback = feedback.set_column(
        feedback.column_names.index("csat_score"), "csat_score", feedback.column("csat_score").cast(pa.float64())
    )
    feedback = feedback.set_column(
        feedback.column_names.index("comment"),
        "comment",
        feedback.column("comment").combine_chunks().dictionary_encode(),
    )
    pq.write_table(feedback, target / "feedback.parquet")
    # support tickets: timestamps with a time zone, dictionary strings, an extra column
    tickets = read(source / "support_tickets.parquet")
    for name in ("created_at", "resolved_at"):
        tickets = tickets.set_column(
            tickets.column_names.index(name), name, tickets.column(name).cast(pa.timestamp("us", tz="UTC"))
        )
    tickets = tickets.set_column(
        tickets.column_names.index("category"),
        "category",
        tickets.column("category").combine_chunks().dictionary_encode(),
    )
    tickets = tickets.append_column("assignee", pa.array(["ops"] * len(tickets)))
    pq.write_table(tickets, target / "support_tickets.parquet")
    # unchanged tables
    for name in ("releases", "launches", "experiments", "experiment_assignments"):
        shutil.copy(source / f"{name}.parquet", target / f"{name}.parquet")
    # events: parts of different, compatible schemas
    (target / "events").mkdir()
    parts = sorted((source / "events").glob("*.parquet"))
    for i, part in enumerate(parts):
        events = pq.read_table(part)
        if i % 3 == 0:  # tz-aware timestamps, revenue as double, columns reordered
            events = events.set_column(
                events.column_names.index("event_ts"),
                "event_ts",
                events.column("event_ts").cast(pa.timestamp("us", tz="UTC")),
            )
            events = events.set_column(
                events.column_names.index("revenue_usd"), "revenue_usd", events.column("revenue_usd").cast(pa.float64())
            )
            events = events.select(list(reversed(events.column_names)))
        elif i % 3 == 1:  # dictionary strings, revenue as decimal(12, 4), an extra column
            for name in ("event_name", "platform"):
                events = events.set_column(
                    events.column_names.index(name), name, events.column(name).combine_chunks().dictionary_encode()
                )
            events = events.set_column(
                events.column_names.index("revenue_usd"),
                "revenue_usd",
                events.column("revenue_usd").cast(pa.decimal128(12, 4)),
            )
            events = events.append_column("ingested_by", pa.array(["collector-2"] * len(events)))
        pq.write_table(events, target / "events" / f"part-{i:05d}.parquet")
    # Rows that break expectations only (warnings): a future purchase, an event before signup.
    first = (
        read(source / "users.parquet")
        .filter(pa.compute.equal(read(source / "users.parquet").column("is_internal"), False))
        .slice(0, 1)
        .to_pylist()[0]
    )
    odd = pa.table(
        {
            "event_id": ["evt_future_purchase", "evt_before_signup"],
            "user_id": [first["user_id"]] * 2,
            "session_id": ["ses_odd_1", "ses_odd_2"],
            "event_name": ["purchase", "page_view"],
            "event_ts": pa.array(
                [dt.datetime(2099, 1, 1, 12), first["signup_at"] - dt.timedelta(days=3)], pa.timestamp("us")
            ),
            "platform": ["web", "web"],
            "app_version": pa.array([None, None], pa.string()),
            "feature_key": pa.array([None, None], pa.string()),
            "revenue_usd": pa.array([decimal.Decimal("12.50"), None], pa.decimal128(18, 2)),
        }
    )
    pq.write_table(odd, target / "events" / "part-late.parquet")


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("variants")
    landing = root / "landing"
    make_variants(SAMPLE, landing)
    warehouse = root / "data" / "northstar.duckdb"
    build = northstar("build", "--landing", str(landing), "--warehouse", str(warehouse), "--no-docs")
    server = Server(warehouse)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.base_url, timeout=120) as client:
            yield landing, warehouse, build, client
    finally:
        server.stop()


class _Api:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client


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
FROM_THE_EMPTY_TABLE = {"incidents", "mttr_hours"}


@pytest.mark.parametrize("grain", ["week", "month"])
def test_every_variant_builds_and_every_metric_answers_as_the_oracle(variants, grain):
    landing, _, _, client = variants
    oracle = Oracle(landing)
    for metric in PACK:
        # The incidents table is header-only here: its metrics answer no rows, as the oracle.
        check(
            _Api(client),
            oracle,
            allow_empty=metric in FROM_THE_EMPTY_TABLE,
            metrics=[metric],
            group_by=[f"metric_time__{grain}"],
        )


def test_slices_read_from_csv_and_parquet_variants_match_the_oracle(variants):
    landing, _, _, client = variants
    oracle = Oracle(landing)
    check(_Api(client), oracle, metrics=["revenue", "paying_users", "arpu"], group_by=["plan", "region"])
    check(_Api(client), oracle, metrics=["tickets"], group_by=["priority", "category"])
    check(_Api(client), oracle, metrics=["nps", "csat"], group_by=["channel"])
    check(
        _Api(client),
        oracle,
        metrics=["crashes"],
        group_by=["metric_time__day", "platform"],
        start="2026-01-05",
        end="2026-01-12",
    )


def test_refunds_make_revenue_net(variants):
    landing, _, _, client = variants
    oracle = Oracle(landing)
    gross, refunds = oracle.sql(
        "select sum(revenue_usd) filter (where revenue_usd > 0), sum(revenue_usd) filter (where revenue_usd < 0) "
        "from (select distinct * from events) e join users u using (user_id) where not u.is_internal"
    )[0]
    assert refunds < 0
    answer = client.post("/v1/query", json={"metrics": ["revenue"], "group_by": []}).json()
    assert float(answer["rows"][0][0]) == pytest.approx(float(gross + refunds), rel=1e-12)


def test_expectations_broken_are_warnings_in_build_output_build_json_readyz_and_query_meta(variants):
    _, warehouse, build, client = variants
    output = build.stderr + build.stdout
    assert "warning: test expression_is_true on fct_events.event_ts: 1 failing row" in output, output
    assert "warning: test expression_is_true on dim_users.first_event_at: 1 failing row" in output, output
    info = json.loads((warehouse.resolve().parent / "build.json").read_text())
    assert info["tests_passed"] is True
    by_place = {(w["model"], w["column"]): w for w in info["warnings"]}
    future = by_place[("fct_events", "event_ts")]
    assert future["failing_rows"] == 1 and future["sample_rows"][0]["event_id"] == "evt_future_purchase"
    assert by_place[("dim_users", "first_event_at")]["failing_rows"] == 1
    ready = client.get("/readyz").json()
    assert ready["tests_passed"] is True
    assert {(w["model"], w["column"]) for w in ready["warnings"]} == set(by_place)
    meta = client.post("/v1/query", json={"metrics": ["events"], "group_by": ["metric_time__month"]}).json()["meta"]
    assert meta["tests_passed"] is True
    assert [(w["model"], w["column"], w["failing_rows"]) for w in meta["warnings"]] == [("fct_events", "event_ts", 1)]
    tickets = client.post("/v1/query", json={"metrics": ["tickets"], "group_by": []}).json()["meta"]
    assert tickets["warnings"] == []


# ------------------------------------------------------------------------------------------
# What the contract forbids: refused by the pre-flight (no dbt), one line naming table, column
# and sample values.
# ------------------------------------------------------------------------------------------


def rewrite(landing: Path, table: str, sql: str) -> None:
    """Replace a landing table by `sql` over its rows (as `t`), as one Parquet file."""
    located = landing / table if (landing / table).is_dir() else landing / f"{table}.parquet"
    con = duckdb.connect()
    reader = f"read_parquet('{located}/*.parquet')" if located.is_dir() else f"read_parquet('{located}')"
    con.execute(f"create table t as select * from {reader}")
    shutil.rmtree(located) if located.is_dir() else located.unlink()
    con.execute(f"copy ({sql}) to '{landing / (table + '.parquet')}' (format parquet)")
    con.close()


FORBIDDEN = {
    "missing key": (
        "accounts",
        "account_id",
        "select * replace (case when account_id = (select min(account_id) "
        "from t) then null else account_id end as account_id) from t",
        None,
    ),
    "missing required value": (
        "events",
        "event_ts",
        "select * replace (case when event_id = 'evt_x' then null "
        "else event_ts end as event_ts) from (select * from t union all select * replace "
        "('evt_x' as event_id) from (select * from t order by event_id limit 1))",
        ["evt_x"],
    ),
    "duplicate key": (
        "launches",
        "launch_id",
        "select * from t union all select * replace ('again' as launch_name) from t where launch_id = 'lch_002'",
        ["lch_002"],
    ),
    "events differing under one id": (
        "events",
        "event_id",
        "select * from t union all select * replace "
        "('tampered' as event_name) from (select * from t order by event_id limit 1)",
        None,
    ),
    "broken reference": (
        "events",
        "user_id",
        "select * replace (case when event_id = (select min(event_id) from t) "
        "then 'usr_nobody' else user_id end as user_id) from t",
        ["usr_nobody"],
    ),
    "category outside the list": (
        "accounts",
        "plan",
        "select * replace (case when account_id = (select "
        "min(account_id) from t) then 'gold' else plan end as plan) from t",
        ["gold"],
    ),
    "score outside its range": (
        "feedback",
        "nps_score",
        "select * replace (case when feedback_id = (select "
        "min(feedback_id) from t) then 11 else nps_score end as nps_score) from t",
        [11],
    ),
}


@pytest.mark.parametrize("case", list(FORBIDDEN))
def test_what_the_contract_forbids_is_refused_naming_table_column_and_sample(case, tmp_path):
    table, column, sql, sample = FORBIDDEN[case]
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    rewrite(landing, table, sql)
    with pytest.raises(LandingContractViolation) as info:
        check_contract(landing)
    error = info.value
    assert error.details.get("table") == table and error.details.get("column") == column
    if sample is not None:
        assert error.details.get("sample") == sample
    else:
        assert len(error.details.get("sample")) == 1
    assert "\n" not in error.message and table in error.message and column in error.message
    assert repr(error.details["sample"][0]) in error.message


def test_a_forbidden_case_is_one_line_from_the_cli(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(SAMPLE, landing)
    table, column, sql, _ = FORBIDDEN["category outside the list"]
    rewrite(landing, table, sql)
    proc = northstar("build", "--landing", str(landing), "--warehouse", str(tmp_path / "w.duckdb"), check=False)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(lines) == 1 and "table accounts, column plan" in lines[0] and "'gold'" in lines[0], proc.stderr


# ------------------------------------------------------------------------------------------
# Missing extras and other user mistakes: one line, non-zero exit, no traceback.
# ------------------------------------------------------------------------------------------


def without(*modules: str) -> dict[str, str]:
    return {"PYTHONPATH": f"{BLOCKED_IMPORTS}:{REPO}", "NORTHSTAR_TEST_BLOCKED_IMPORTS": ",".join(modules)}


@pytest.mark.parametrize(
    "command,blocked,extra",
    [
        (["build", "--warehouse-type", "postgres"], ("psycopg",), "postgres"),
        (["serve", "--warehouse-type", "postgres"], ("dbt.adapters.postgres",), "postgres"),
        (["build", "--warehouse-type", "spark"], ("pyspark",), "spark"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it_and_its_install_command(command, blocked, extra, tmp_path):
    env = {
        **without(*blocked),
        "NORTHSTAR_POSTGRES_DSN": "postgresql://u:p@127.0.0.1:9/db",
        "NORTHSTAR_DATA_DIR": str(tmp_path),
    }
    proc = northstar(*command, env=env, check=False, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and f"'{extra}' extra" in error[0] and f"pip install -e '.[{extra}]'" in error[0]


@pytest.mark.parametrize(
    "args,env,words",
    [
        (["build", "--landing", "/nonexistent/landing"], {}, ["/nonexistent/landing", "does not exist"]),
        (["build"], {"NORTHSTAR_PORT": "eighty"}, ["NORTHSTAR_PORT"]),
        (
            ["build", "--warehouse-type", "postgres"],
            {"NORTHSTAR_POSTGRES_DSN": "postgresql://u:p@127.0.0.1:9/db"},
            ["cannot connect to PostgreSQL"],
        ),
    ],
)
def test_user_mistakes_are_one_line_without_a_traceback(args, env, words, tmp_path):
    proc = northstar(*args, "--warehouse", str(tmp_path / "w.duckdb"), env=env, check=False, timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and all(w in error[0] for w in words), proc.stderr


def test_a_bad_flag_is_a_usage_error_without_a_traceback():
    proc = northstar("build", "--no-such-flag", check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "--no-such-flag" in proc.stderr
