"""SQL for experiment readouts: per-variant sufficient statistics, computed in the warehouse.

Python never sees a per-user row: for each variant (and slice) the statement returns the
count of users and the sums, sums of squares and cross-products that the statistics in
`metrics/stats/` need. Per-user values come from the semantic layer's own measures, over each
user's window: from its assignment to the experiment's end (or the end of the data while it
runs); the CUPED covariate is the same measure over the days before the assignment.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from metrics.query.plan import TimeSettings
from metrics.query.request import WeekStart
from metrics.semantic.graph import GroupByItem
from metrics.semantic.model import Measure, Relation, SemanticModel
from metrics.sql.render import Renderer, RenderedQuery, _aggregate_tree, _column_expr, _select, _table


@dataclass(frozen=True)
class ExperimentTables:
    """Where a warehouse keeps experiments: our dbt project's marts by default."""

    experiments: Relation = Relation("marts", "dim_experiments")
    assignments: Relation = Relation("marts", "fct_experiment_assignments")


@dataclass(frozen=True)
class PerUserMeasure:
    """A measure evaluated per assigned user over that user's window."""

    measure: Measure
    model: SemanticModel
    user_expr: str
    time_expr: str


class ExperimentSql:
    """Renders experiment statements with a `Renderer`'s cached fragments and parameters."""

    def __init__(self, renderer: Renderer, tables: ExperimentTables = ExperimentTables()) -> None:
        self.renderer = renderer
        self.tables = tables
        self.dialect = renderer.dialect

    def _rel(self, relation: Relation) -> str:
        return _table(relation.schema, relation.table).sql(dialect=self.dialect)

    def catalog(self) -> RenderedQuery:
        """Every experiment with its variants and assigned (non-internal, first-variant) users."""
        sql = (
            "SELECT e.experiment_id, e.experiment_name, e.control_variant, e.started_at, e.ended_at, "
            "a.variant, COUNT(a.user_id) AS users, SUM(CASE WHEN a.variant_count > 1 THEN 1 ELSE 0 END) AS multi "
            f"FROM {self._rel(self.tables.experiments)} AS e "
            f"LEFT JOIN {self._rel(self.tables.assignments)} AS a ON a.experiment_id = e.experiment_id "
            "GROUP BY e.experiment_id, e.experiment_name, e.control_variant, e.started_at, e.ended_at, a.variant "
            "ORDER BY e.experiment_id, a.variant"
        )
        return RenderedQuery(sql, {}, self.dialect)

    def sufficient_statistics(self, experiment_id: str, values: list[PerUserMeasure],
                              data_end: dt.datetime | None, pre_days: int | None,
                              slices: list[tuple[GroupByItem, SemanticModel, str]]) -> RenderedQuery:
        """Per variant (and slice): `n`, and for each value i `x{i}_sum`, `x{i}_sum_sq`, plus the
        cross-products `x0_x1_sum` (ratio metrics) and, with a pre-period, `pre{i}_sum`,
        `pre{i}_sum_sq`, `x{i}_pre{i}_sum` (CUPED)."""
        params: dict[str, Any] = {}
        param = self.renderer._param
        assignments = _select(
            ["a.user_id AS user_id", "a.variant AS variant", "a.assigned_at AS assigned_at",
             f"COALESCE(e.ended_at, {param(params, data_end)}) AS window_end"],
            f"{self._rel(self.tables.assignments)} AS a",
            [f"JOIN {self._rel(self.tables.experiments)} AS e ON e.experiment_id = a.experiment_id"],
            [f"a.experiment_id = {param(params, experiment_id)}"])
        ctes = [("w", assignments)]
        per_user_columns = ["w.variant AS variant"]
        joins = []
        for i, value in enumerate(values):
            ctes.append((f"x{i}", self._per_user(value, "w.assigned_at", "w.window_end")))
            joins.append(f"LEFT JOIN x{i} ON x{i}.user_id = w.user_id")
            per_user_columns.append(f"COALESCE(x{i}.v, 0) AS x{i}")
            if pre_days:
                start = exp.Sub(this=exp.column("assigned_at", "w"),
                                expression=exp.Interval(this=exp.Literal.string(str(pre_days)), unit=exp.var("DAY")))
                ctes.append((f"pre{i}", self._per_user(value, start.sql(dialect=self.dialect), "w.assigned_at")))
                joins.append(f"LEFT JOIN pre{i} ON pre{i}.user_id = w.user_id")
                per_user_columns.append(f"COALESCE(pre{i}.v, 0) AS pre{i}")
        if slices:
            ctes.append(("s", self._slices(slices)))
            joins.append("LEFT JOIN s ON s.user_id = w.user_id")
            per_user_columns += [f"s.{column} AS {column}" for _, _, column in slices]
        ctes.append(("per_user", _select(per_user_columns, "w", joins, [])))

        keys = ["variant"] + [column for _, _, column in slices]
        sums = ["COUNT(*) AS n"]
        for i in range(len(values)):
            sums += [f"SUM(x{i}) AS x{i}_sum", f"SUM(x{i} * x{i}) AS x{i}_sum_sq"]
            if pre_days:
                sums += [f"SUM(pre{i}) AS pre{i}_sum", f"SUM(pre{i} * pre{i}) AS pre{i}_sum_sq",
                         f"SUM(x{i} * pre{i}) AS x{i}_pre{i}_sum"]
        if len(values) == 2:
            sums.append("SUM(x0 * x1) AS x0_x1_sum")
            if pre_days:
                sums += ["SUM(pre0 * pre1) AS pre0_pre1_sum", "SUM(x0 * pre1) AS x0_pre1_sum",
                         "SUM(x1 * pre0) AS x1_pre0_sum"]
        body = _select(keys + sums, "per_user", [], [], keys) + " ORDER BY " + ", ".join(keys)
        sql = "WITH " + ", ".join(f"{alias} AS ({text})" for alias, text in ctes) + " " + body
        return RenderedQuery(sql, params, self.dialect)

    def _per_user(self, value: PerUserMeasure, start: str, end: str) -> str:
        dialect = self.renderer.model_dialect
        user = _column_expr(value.user_expr, "t0", dialect).sql(dialect=self.dialect)
        at = _column_expr(value.time_expr, "t0", dialect).sql(dialect=self.dialect)
        aggregate = _aggregate_tree(value.measure, dialect).sql(dialect=self.dialect)
        return _select(["w.user_id AS user_id", f"{aggregate} AS v"], "w",
                       [f"JOIN {self.renderer._table(value.model)} AS t0 ON {user} = w.user_id "
                        f"AND {at} >= {start} AND {at} < {end}"], [], ["w.user_id"])

    def _slices(self, slices: list[tuple[GroupByItem, SemanticModel, str]]) -> str:
        """User attributes (country, plan, platform of the first event...) per user, from the
        semantic model whose primary entity is the user."""
        model = slices[0][1]
        user = model.entity(model.primary_entity)
        alias_for, joins = self.renderer._joiner()
        columns = [f"{_column_expr(user.expr, 't0', self.renderer.model_dialect).sql(dialect=self.dialect)} AS user_id"]
        time = TimeSettings(None, WeekStart.MONDAY)
        for item, _, column in slices:
            columns.append(f"{self.renderer._item(item, alias_for(item), time)} AS {column}")
        return _select(columns, f"{self.renderer._table(model)} AS t0", joins, [])
