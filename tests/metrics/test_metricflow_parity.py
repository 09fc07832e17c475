"""Parity with MetricFlow: the same metric queries, answered by MetricFlow's own engine and by
northstar over the same semantic manifest and the same DuckDB warehouse, must give the same rows.

The warehouse is the sample built by the real `northstar build` (`built_warehouse` in
tests/conftest.py). MetricFlow (`MetricFlowEngine.query`) reads the build's
`semantic_manifest.json` and runs its SQL on the build's DuckDB file through the small `SqlClient`
in bench/metricflow/mf_harness.py; northstar answers with `MetricsEngine.query`. The query list
(`parity_cases`) is shared with the compile benchmark in bench/metricflow/.

Comparison: columns matched by name; rows matched by their group-by values (or in order when the
query orders them); numbers equal to a relative 1e-9; dates equal (MetricFlow's data table turns
DATE into midnight datetimes, which are read back as dates); null must meet null.

Cases that disagree are listed in KNOWN_DIFFERENCES (strict xfail, with the reason) and what each
side computes there is pinned down against hand-written SQL by the tests that follow the list.

Needs the `metricflow` extra (`pip install -e '.[metricflow]'`); skipped without it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import os
import sys
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.metricflow

pytest.importorskip(
    "metricflow.engine.metricflow_engine",
    reason="MetricFlow is not installed; install the test extra with `pip install -e '.[metricflow]'`",
)

from metrics.engine import MetricsEngine  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("mf_harness", REPO / "bench" / "metricflow" / "mf_harness.py")
harness = sys.modules.setdefault("mf_harness", importlib.util.module_from_spec(_spec))
if not hasattr(harness, "Case"):
    _spec.loader.exec_module(harness)
Case = harness.Case

REL_TOL = 1e-9
ABS_TOL = 1e-12


@pytest.fixture(scope="module")
def engines(built_warehouse):
    warehouse = built_warehouse.warehouse
    manifest = Path(os.path.realpath(warehouse)).parent / "semantic_manifest.json"
    northstar = MetricsEngine.open(warehouse)
    metricflow = harness.open_metricflow(manifest, warehouse)
    yield northstar, metricflow
    northstar.close()


# -- comparison -------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.time() == dt.time() and value.tzinfo is None:
        return value.date()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def _sort_key(row: Sequence[Any]) -> tuple:
    return tuple((v is None, type(v).__name__, v if v is not None else 0) for v in row)


def differences(
    case: Case, ns_columns: Sequence[str], ns_rows: list[tuple], mf_columns: Sequence[str], mf_rows: list[tuple]
) -> list[str]:
    """What differs between the two answers, as readable lines (empty when they agree)."""
    if sorted(ns_columns) != sorted(mf_columns):
        return [f"columns differ: northstar {list(ns_columns)} vs MetricFlow {list(mf_columns)}"]
    keys = [c for c in ns_columns if c in case.group_by]
    values = [c for c in ns_columns if c not in case.group_by]
    order = keys + values

    def arrange(columns: Sequence[str], rows: list[tuple]) -> list[tuple]:
        index = [list(columns).index(c) for c in order]
        return [tuple(_plain(row[i]) for i in index) for row in rows]

    ns, mf = arrange(ns_columns, ns_rows), arrange(mf_columns, mf_rows)
    out: list[str] = []
    if len(ns) != len(mf):
        out.append(f"row counts differ: northstar {len(ns)} vs MetricFlow {len(mf)}")
    if case.ordered:
        pairs = list(zip(ns, mf))
    else:
        n_keys = len(keys)
        ns_by_key = {row[:n_keys]: row for row in ns}
        mf_by_key = {row[:n_keys]: row for row in mf}
        if len(ns_by_key) != len(ns) or len(mf_by_key) != len(mf):
            out.append(
                f"group-by keys repeat: northstar {len(ns) - len(ns_by_key)}, "
                f"MetricFlow {len(mf) - len(mf_by_key)} duplicate key(s)"
            )
        for key in sorted(set(ns_by_key) ^ set(mf_by_key), key=_sort_key)[:5]:
            side = "northstar only" if key in ns_by_key else "MetricFlow only"
            out.append(f"{side}: {dict(zip(keys, key))} -> {(ns_by_key.get(key) or mf_by_key.get(key))[n_keys:]}")
        pairs = [(ns_by_key[k], mf_by_key[k]) for k in sorted(set(ns_by_key) & set(mf_by_key), key=_sort_key)]
    mismatched = [(a, b) for a, b in pairs if not all(_same(x, y) for x, y in zip(a, b))]
    for a, b in mismatched[:5]:
        out.append(f"{dict(zip(order, a))} (northstar) != {dict(zip(order, b))} (MetricFlow)")
    if len(mismatched) > 5:
        out.append(f"... and {len(mismatched) - 5} more differing rows")
    return out


def answer_both(engines, case: Case):
    northstar, metricflow = engines
    # The values as the SQL computes them (harness.northstar_query): northstar's completeness
    # step is a layer MetricFlow does not have; it is tested in tests/metrics/test_completeness.py.
    ns_query = harness.northstar_query(case)
    ns = northstar.query(ns_query)
    mf = metricflow.query(harness.mf_request(case))
    table = mf.result_df
    return (
        [c.name for c in ns.columns],
        list(ns.rows),
        list(table.column_names),
        [tuple(r) for r in table.rows],
        northstar.compile(ns_query).inline_sql,
        mf.sql,
    )


DESIGN_NO_CONTRIBUTION = (
    "by design: a group no row contributes to (only null arguments of a distinct count, sum or mean, e.g. "
    "a day without purchases for paying_users, anonymous crashes for crashed_users by plan) is no row in "
    "northstar; MetricFlow answers it with 0 or null (docs/http-api.md, 'Empty means one thing')"
)


def without_groups_of_nothing(case: Case, ns_cols, ns_rows, mf_cols, mf_rows) -> list[tuple]:
    """MetricFlow's rows less those of groups northstar leaves out by DESIGN_NO_CONTRIBUTION:
    keys northstar does not answer whose every metric value is 0 or null. Every other row is
    compared as before (a row northstar lacks with a real value is still a difference)."""
    if case.ordered or not case.group_by or set(case.metrics) & set(harness.offset_metric_names()):
        return mf_rows  # an offset's extra buckets are DESIGN_OFFSET_SPAN, compared on their own
    keys = [list(mf_cols).index(c) for c in mf_cols if c in case.group_by]
    values = [i for i in range(len(mf_cols)) if i not in keys]
    ns_index = [list(ns_cols).index(mf_cols[i]) for i in keys]
    answered = {tuple(_plain(r[i]) for i in ns_index) for r in ns_rows}
    return [
        r
        for r in mf_rows
        if tuple(_plain(r[i]) for i in keys) in answered or not all(_plain(r[i]) in (None, 0) for i in values)
    ]


def check(engines, case: Case) -> None:
    ns_cols, ns_rows, mf_cols, mf_rows, ns_sql, mf_sql = answer_both(engines, case)
    mf_rows = without_groups_of_nothing(case, ns_cols, ns_rows, mf_cols, mf_rows)
    problems = differences(case, ns_cols, ns_rows, mf_cols, mf_rows)
    assert not problems, (
        f"{case.id}: northstar and MetricFlow disagree\n  "
        + "\n  ".join(problems)
        + f"\n--- northstar SQL\n{ns_sql}\n--- MetricFlow SQL\n{mf_sql}"
    )
    assert ns_rows, f"{case.id}: no rows on either side; the case checks nothing"


# -- the shared query list --------------------------------------------------------------------

CASES = harness.parity_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_answer_as_metricflow(engines, case: Case) -> None:
    check(engines, case)


def test_cases_cover_the_built_manifest(engines) -> None:
    """Simple and cumulative metrics are read from the dbt YAML at collection time; the built manifest
    must agree, so no metric of those kinds escapes the comparison."""
    northstar, _ = engines
    for kind, names in (("simple", harness.simple_metric_names()), ("cumulative", harness.cumulative_metric_names())):
        built = sorted(name for name, m in northstar.manifest.metrics.items() if m.type.value == kind)
        assert built == names, kind
        assert {m for c in CASES if kind in c.tags for m in c.metrics} == set(built), kind


# -- where the two differ ---------------------------------------------------------------------
#
# Each case below disagrees; the tests after the list check, against hand-written SQL, what each
# side computes. All by design: which buckets a series shows, and a zero conversion rate.

DESIGN_UNALIGNED_RANGE = (
    "by design: a range off the grain's bucket boundaries is half-open on raw metric time in northstar "
    "(partial first/last buckets), widened to whole buckets by MetricFlow"
)
DESIGN_CUMULATIVE_SPAN = (
    "by design: without a range, an all-time cumulative series ends on the last day with data in northstar; "
    "MetricFlow's runs to the end of the time spine (2035)"
)
DESIGN_OFFSET_SPAN = (
    "by design: an offset input adds no buckets in northstar; MetricFlow adds the buckets where only the "
    "offset input has data (their value is null)"
)
CONVERSION_ZERO = (
    "by design: a bucket with new users and no conversion is 0.0 in northstar (a rate over a non-zero "
    "denominator), null in MetricFlow (no fill_nulls_with)"
)

_week, _day = harness.RANGES["week"], harness.RANGES["day"]
KNOWN_DIFFERENCES = [
    (
        Case(
            "events-by-week-from-saturday",
            ("events",),
            ("metric_time__week",),
            start=dt.date(2026, 1, 10),
            end=dt.date(2026, 1, 20),
            aligned=False,
        ),
        DESIGN_UNALIGNED_RANGE,
    ),
    (
        Case(
            "revenue-by-month-mid-month",
            ("revenue",),
            ("metric_time__month",),
            start=dt.date(2026, 1, 10),
            end=dt.date(2026, 2, 20),
            aligned=False,
        ),
        DESIGN_UNALIGNED_RANGE,
    ),
    *[
        (Case(f"{m}-by-day-no-range", (m,), ("metric_time__day",)), DESIGN_CUMULATIVE_SPAN)
        for m in harness.cumulative_metric_names()
        if m in harness.all_time_cumulative_names()
    ],
    *[
        (Case(f"{m}-by-week-no-range", (m,), ("metric_time__week",)), DESIGN_OFFSET_SPAN)
        for m in harness.offset_metric_names()
    ],
    *[
        (
            Case(f"{m}-by-day-range-past-data", (m,), ("metric_time__day",), start=_day[0], end=_day[1]),
            DESIGN_OFFSET_SPAN,
        )
        for m in harness.offset_metric_names()
    ],
    *[(Case(f"{m}-by-week", (m,), ("metric_time__week",)), CONVERSION_ZERO) for m in harness.conversion_metric_names()],
]

CUMULATIVE_OPEN_RANGE_CASES = [
    Case(f"{m}-by-day-no-range", (m,), ("metric_time__day",))
    for m in harness.cumulative_metric_names()
    if m not in harness.all_time_cumulative_names()
]


@pytest.mark.parametrize("case", CUMULATIVE_OPEN_RANGE_CASES, ids=lambda c: c.id)
def test_cumulative_open_range_parity(engines, case: Case) -> None:
    """Without a range, a windowed or to-date series runs while its window still reaches data."""
    check(engines, case)


CONVERSION_CASES = [
    case
    for m in harness.conversion_metric_names()
    for case in (
        Case(f"{m}-total", (m,)),
        Case(f"{m}-by-week-range", (m,), ("metric_time__week",), start=_week[0], end=_week[1]),
        Case(f"{m}-by-user__country", (m,), ("user__country",)),
    )
]


@pytest.mark.parametrize("case", CONVERSION_CASES, ids=lambda c: c.id)
def test_conversion_parity(engines, case: Case) -> None:
    check(engines, case)


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=r), id=c.id) for c, r in KNOWN_DIFFERENCES]
)
def test_known_difference(engines, case: Case) -> None:
    check(engines, case)


def _hand(engines, sql: str) -> list[tuple]:
    return engines[0].client.query(sql).rows


def test_unaligned_range_against_hand_written_sql(engines) -> None:
    """Northstar counts [start, end) on event_ts; MetricFlow the whole weeks around it."""
    case = KNOWN_DIFFERENCES[0][0]
    ns_cols, ns_rows, mf_cols, mf_rows, _, _ = answer_both(engines, case)
    by_week = (
        "select cast(date_trunc('week', event_ts) as date) as metric_time__week, count(*) as events "
        "from marts.fct_events where event_ts >= timestamp '{}' and event_ts < timestamp '{}' group by 1"
    )
    half_open = _hand(engines, by_week.format("2026-01-10", "2026-01-20"))
    whole_weeks = _hand(engines, by_week.format("2026-01-05", "2026-01-26"))
    hand = ["metric_time__week", "events"]
    assert not differences(case, ns_cols, ns_rows, hand, half_open)
    assert not differences(case, mf_cols, mf_rows, hand, whole_weeks)
    assert differences(case, hand, half_open, hand, whole_weeks)


def _split(case: Case, engines):
    """Both answers keyed by group-by values: (northstar, MetricFlow)."""
    ns_cols, ns_rows, mf_cols, mf_rows, _, _ = answer_both(engines, case)
    keys = list(case.group_by)

    def keyed(columns, rows):
        index = [list(columns).index(k) for k in keys]
        value = [i for i, c in enumerate(columns) if c not in keys]
        return {tuple(_plain(r[i]) for i in index): tuple(_plain(r[i]) for i in value) for r in rows}

    return keyed(ns_cols, ns_rows), keyed(mf_cols, mf_rows)


@pytest.mark.parametrize("metric", harness.all_time_cumulative_names())
def test_cumulative_without_range_differs_only_after_the_data(engines, metric: str) -> None:
    """Same value on every day both show; MetricFlow's extra days all come after northstar's last."""
    ns, mf = _split(Case(metric, (metric,), ("metric_time__day",)), engines)
    common = set(ns) & set(mf)
    assert set(ns) <= set(mf)
    assert all(_same(ns[k][0], mf[k][0]) for k in common)
    assert min(set(mf) - set(ns)) > max(ns)


def test_trailing_7_day_users_after_the_data_against_hand_written_sql(engines) -> None:
    """After the last day with events, active_users_7d goes on for six days with the true 7-day
    count of each (on both sides)."""
    if "active_users_7d" not in harness.cumulative_metric_names():
        pytest.skip("the pack has no active_users_7d")
    ns, mf = _split(Case("au7", ("active_users_7d",), ("metric_time__day",)), engines)
    ((last_event_day,),) = _hand(engines, "select max(cast(event_ts as date)) from marts.fct_events")
    assert max(ns)[0] == last_event_day + dt.timedelta(days=6) == max(mf)[0]
    day = last_event_day + dt.timedelta(days=3)
    ((expected,),) = _hand(
        engines,
        f"select count(distinct user_id) from marts.fct_events where event_ts >= "
        f"date '{day}' - interval 6 day and event_ts < date '{day}' + interval 1 day",
    )
    assert ns[(day,)][0] == mf[(day,)][0] == expected


def _conversion_sql(day_grain: bool, group: str = "") -> str:
    window = (
        "cast(e.event_ts as date) >= cast(u.signup_at as date) "
        "and cast(e.event_ts as date) < cast(u.signup_at as date) + interval 7 day"
        if day_grain
        else "e.event_ts >= u.signup_at and e.event_ts <= u.signup_at + interval 7 day"
    )
    select_group = f"{group} as k, " if group else ""
    group_by = "group by 1" if group else ""
    return (
        f"select {select_group}cast(count(distinct c.user_id) as double) / count(distinct u.user_id) "
        f"from marts.dim_users u left join (select distinct u.user_id from marts.dim_users u join "
        f"marts.fct_events e on e.user_id = u.user_id and e.revenue_usd > 0 where {window}) c "
        f"on c.user_id = u.user_id {group_by}"
    )


def test_conversion_window_against_hand_written_sql(engines) -> None:
    """signup_to_purchase_7d: both sides equal the day-grain window [signup day, +7 days), which differs
    from a timestamp window [signup_at, signup_at + 7 days] on the sample."""
    names = harness.conversion_metric_names()
    if "signup_to_purchase_7d" not in names:
        pytest.skip("the pack has no signup_to_purchase_7d")
    ns, mf = _split(Case("conv", ("signup_to_purchase_7d",)), engines)
    ((day_grain,),) = _hand(engines, _conversion_sql(True))
    ((timestamps,),) = _hand(engines, _conversion_sql(False))
    assert _same(mf[()][0], day_grain)
    assert _same(ns[()][0], day_grain)
    assert not _same(day_grain, timestamps)
    # the same by country, row by row
    ns, mf = _split(Case("conv", ("signup_to_purchase_7d",), ("user__country",)), engines)
    day_grain = {(k,): v for k, v in _hand(engines, _conversion_sql(True, "u.country"))}
    assert all(_same(mf[k][0], day_grain[k]) for k in mf if mf[k][0] is not None)
    assert all(_same(ns[k][0], day_grain[k]) for k in ns)


def test_conversion_zero_is_null_in_metricflow(engines) -> None:
    """A week with new users and no conversion: 0.0 in northstar, null in MetricFlow."""
    if "signup_to_purchase_7d" not in harness.conversion_metric_names():
        pytest.skip("the pack has no signup_to_purchase_7d")
    ns, mf = _split(Case("conv", ("signup_to_purchase_7d",), ("metric_time__week",)), engines)
    zero = [k for k in ns if ns[k][0] == 0.0]
    assert zero, "no week without conversions on the sample"
    assert all(mf[k][0] is None for k in zero)


def test_groups_of_nothing_against_hand_written_sql(engines) -> None:
    """DESIGN_NO_CONTRIBUTION: the days MetricFlow answers paying_users 0 and northstar leaves
    out are exactly the days with events and no purchase of a user."""
    ns, mf = _split(Case("paying-by-day", ("paying_users",), ("metric_time__day",)), engines)
    assert set(ns) <= set(mf) and all(_same(ns[k][0], mf[k][0]) for k in ns)
    only_mf = set(mf) - set(ns)
    assert all(mf[k][0] == 0 for k in only_mf)
    without_purchase = _hand(
        engines,
        "select cast(event_ts as date) from marts.fct_events group by 1 "
        "having count(case when revenue_usd > 0 then user_id end) = 0",
    )
    assert only_mf == {(day,) for (day,) in without_purchase}
