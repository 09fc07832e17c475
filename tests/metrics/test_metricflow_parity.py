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

Needs the `metricflow` extra (`pip install -e '.[metricflow]'`); skipped without it.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Sequence

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


def differences(case: Case, ns_columns: Sequence[str], ns_rows: list[tuple], mf_columns: Sequence[str],
                mf_rows: list[tuple]) -> list[str]:
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
            out.append(f"group-by keys repeat: northstar {len(ns) - len(ns_by_key)}, "
                       f"MetricFlow {len(mf) - len(mf_by_key)} duplicate key(s)")
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
    ns_query = harness.northstar_query(case)
    ns = northstar.query(ns_query)
    mf = metricflow.query(harness.mf_request(case))
    table = mf.result_df
    return ([c.name for c in ns.columns], list(ns.rows), list(table.column_names), [tuple(r) for r in table.rows],
            northstar.compile(ns_query).inline_sql, mf.sql)


def check(engines, case: Case) -> None:
    ns_cols, ns_rows, mf_cols, mf_rows, ns_sql, mf_sql = answer_both(engines, case)
    problems = differences(case, ns_cols, ns_rows, mf_cols, mf_rows)
    assert not problems, (f"{case.id}: northstar and MetricFlow disagree\n  " + "\n  ".join(problems)
                          + f"\n--- northstar SQL\n{ns_sql}\n--- MetricFlow SQL\n{mf_sql}")
    assert ns_rows, f"{case.id}: no rows on either side; the case checks nothing"


# -- the shared query list --------------------------------------------------------------------

CASES = harness.parity_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_answer_as_metricflow(engines, case: Case) -> None:
    check(engines, case)


def test_cases_cover_every_simple_metric_of_the_built_manifest(engines) -> None:
    """The simple metrics are read from the dbt YAML at collection time; the built manifest must
    agree, so no metric of the pack escapes the comparison."""
    northstar, _ = engines
    built = sorted(name for name, m in northstar.manifest.metrics.items() if m.type.value == "simple")
    assert built == harness.simple_metric_names()
    covered = {m for c in CASES if "simple" in c.tags for m in c.metrics}
    assert covered == set(built)


# -- where the two differ by design -----------------------------------------------------------

# A time range that does not fall on bucket boundaries of the query's grain: northstar keeps
# [start, end) on the raw metric time (partial first/last buckets); MetricFlow widens the
# constraint to whole buckets of the requested grain (its `time_constraint_start/end` are snapped
# to the bucket start / bucket end). Both follow their own documented contract; checked against
# hand-written SQL in test_unaligned_range_against_hand_written_sql.
UNALIGNED = [
    Case("events-by-week-from-saturday", ("events",), ("metric_time__week",),
         start=dt.date(2026, 1, 10), end=dt.date(2026, 1, 20), aligned=False),
    Case("revenue-by-month-mid-month", ("revenue",), ("metric_time__month",),
         start=dt.date(2026, 1, 10), end=dt.date(2026, 2, 20), aligned=False),
]


@pytest.mark.xfail(strict=True, reason=(
    "by design: a range off the grain's bucket boundaries is half-open on raw metric time in northstar "
    "(partial buckets), widened to whole buckets by MetricFlow; see test_unaligned_range_against_hand_written_sql"))
@pytest.mark.parametrize("case", UNALIGNED, ids=[c.id for c in UNALIGNED])
def test_unaligned_time_range(engines, case: Case) -> None:
    check(engines, case)


def test_unaligned_range_against_hand_written_sql(engines) -> None:
    """Which side computes what, for the first UNALIGNED case, by hand over marts.fct_events."""
    northstar, _ = engines
    case = UNALIGNED[0]
    ns_cols, ns_rows, mf_cols, mf_rows, _, _ = answer_both(engines, case)
    half_open = northstar.client.query(
        "select cast(date_trunc('week', event_ts) as date) as metric_time__week, count(*) as events "
        "from marts.fct_events where event_ts >= timestamp '2026-01-10' and event_ts < timestamp '2026-01-20' "
        "group by 1").rows
    whole_weeks = northstar.client.query(
        "select cast(date_trunc('week', event_ts) as date) as metric_time__week, count(*) as events "
        "from marts.fct_events where event_ts >= timestamp '2026-01-05' and event_ts < timestamp '2026-01-26' "
        "group by 1").rows
    hand = ["metric_time__week", "events"]
    assert not differences(case, ns_cols, ns_rows, hand, half_open)
    assert not differences(case, mf_cols, mf_rows, hand, whole_weeks)
    assert differences(case, hand, half_open, hand, whole_weeks)
