"""The per-user experiment values a build materializes give the same sufficient statistics as
the statement that joins assignments to events at readout time, for every experiment and
every analysable metric, with and without the CUPED pre-period."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from metrics.engine import MetricsEngine
from metrics.experiments import PER_USER_PRE_DAYS, PER_USER_TABLE


@pytest.fixture(scope="module")
def engine(built_warehouse):
    engine = MetricsEngine.open(built_warehouse.warehouse)
    yield engine
    engine.close()


def test_the_build_materialized_the_table(built_warehouse, engine):
    info = json.loads((Path(os.path.realpath(built_warehouse.warehouse)).parent / "build.json").read_text())
    assert info["experiment_values"]["status"] == "materialized"
    assignments = engine.client.query("SELECT COUNT(*) FROM marts.fct_experiment_assignments").rows[0][0]
    assert info["experiment_values"]["rows"] == assignments > 0


def _rows(engine, rendered):
    result = engine.client.query(rendered.sql, rendered.params)
    names = [c.name for c in result.columns]
    return [dict(zip(names, row)) for row in result.rows]


@pytest.mark.parametrize("pre_days", [None, PER_USER_PRE_DAYS])
def test_same_statistics_from_the_table_and_from_the_assignments(engine, pre_days):
    experiments = engine.experiments
    metrics = list({m.name: m for m in experiments.metrics().values()}.values())
    assert len(metrics) >= 4
    compared = 0
    for experiment in experiments.experiments():
        plan = experiments.plan(metrics, cuped=bool(pre_days))
        fast = experiments._statistics_from_table(experiment, plan, pre_days, ())
        assert fast is not None and f'"{PER_USER_TABLE.table}"' in fast.sql
        direct = experiments.statistics_sql(experiment, metrics, pre_days=pre_days)
        assert PER_USER_TABLE.table not in direct.sql
        from_table, from_assignments = _rows(engine, fast), _rows(engine, direct)
        assert [r["variant"] for r in from_table] == [r["variant"] for r in from_assignments]
        for a, b in zip(from_table, from_assignments):
            assert a.keys() == b.keys()
            assert a["variant"] == b["variant"] and a["n"] == b["n"] > 0
            for key in a.keys() - {"variant"}:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-9, abs=1e-9), (
                    experiment.experiment_id,
                    key,
                )
        compared += len(from_table)
    assert compared >= 6


def test_readouts_the_table_cannot_serve_take_the_long_way(engine):
    experiments = engine.experiments
    experiment = experiments.experiments()[0]
    plan = experiments.plan(list(experiments.metrics().values())[:1], cuped=True)
    assert experiments._statistics_from_table(experiment, plan, PER_USER_PRE_DAYS + 7, ()) is None


@pytest.mark.parametrize(
    "group_by",
    [("platform",), ("country",), ("plan", "platform"), ("industry",), ("platform", "industry", "plan")],
)
def test_sliced_statistics_from_the_table_equal_those_from_the_assignments(engine, group_by):
    """The users model's own attributes (platform, country, plan) are columns of the table; one
    reached through another model (the account's industry) is joined to it from the users
    model. Either way a sliced readout sums the table, with the same numbers as the direct
    statement."""
    experiments = engine.experiments
    metrics = list({m.name: m for m in experiments.metrics().values()}.values())
    keys = ["variant", *(f"s{i}" for i in range(len(group_by)))]
    joined = "industry" in group_by
    for experiment in experiments.experiments():
        plan = experiments.plan(metrics, cuped=True)
        fast = experiments._statistics_from_table(experiment, plan, PER_USER_PRE_DAYS, group_by)
        assert fast is not None
        assert ("slice__" in fast.sql) == (group_by != ("industry",))
        assert ("LEFT JOIN" in fast.sql) == joined
        direct = experiments.statistics_sql(experiment, metrics, pre_days=PER_USER_PRE_DAYS, group_by=group_by)
        from_table, from_assignments = _rows(engine, fast), _rows(engine, direct)
        assert len(from_table) == len(from_assignments) > 2
        for a, b in zip(from_table, from_assignments):
            assert [a[k] for k in keys] + [a["n"]] == [b[k] for k in keys] + [b["n"]]
            for key in a.keys() - set(keys):
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-9, abs=1e-9), (
                    experiment.experiment_id,
                    key,
                )


def test_a_row_level_policy_cannot_read_the_experiment_tables(engine):
    """The written readouts aggregate every user and have no column to restrict them by."""
    from metrics.policy import PolicyDenied, RestrictedEngine, RowPolicy
    from metrics.query.request import Filter, FilterOp

    restricted = RestrictedEngine(engine, RowPolicy((Filter("country", FilterOp.EQ, "US"),), "country = 'US'"))
    for table in ("fct_experiment_results", "fct_experiment_health"):
        columns = [c.name for c in engine.mart_tables()[table][1]][:2]
        with pytest.raises(PolicyDenied):
            restricted.mart_rows(table, columns)
        assert engine.mart_rows(table, columns) is not None  # unrestricted callers read them
