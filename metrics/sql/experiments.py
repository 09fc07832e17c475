"""SQL for experiment readouts: per-variant sufficient statistics, computed in the warehouse.

Python never sees a per-user row: for each variant (and slice) the statement returns the
count of users and the sums, sums of squares and cross-products that the statistics in
`metrics/stats/` need. Per-user values come from the semantic layer's own measures, over each
user's window: from its assignment to the experiment's end (or the end of the data while it
runs); the CUPED covariate is the same measure over the days before the assignment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from metrics.errors import InternalError
from metrics.query.plan import TimeSettings
from metrics.query.request import Filter, WeekStart
from metrics.semantic.graph import GroupByItem
from metrics.semantic.model import Agg, Entity, Measure, Relation, SemanticModel
from metrics.sql.render import Renderer
from metrics.sql.trees import RenderedQuery, aggregate_tree, column_expr, select_statement, table_expr


@dataclass(frozen=True)
class ExperimentTables:
    """Where a warehouse keeps experiments: our dbt project's marts by default."""

    experiments: Relation = Relation("marts", "dim_experiments")
    assignments: Relation = Relation("marts", "fct_experiment_assignments")

    @classmethod
    def in_schema(cls, schema: str) -> ExperimentTables:
        return cls(Relation(schema, "dim_experiments"), Relation(schema, "fct_experiment_assignments"))


@dataclass(frozen=True)
class PerUserMeasure:
    """A measure evaluated per assigned user over that user's window."""

    measure: Measure
    model: SemanticModel
    user_expr: str
    time_expr: str


@dataclass(frozen=True)
class Population:
    """The users a readout may count: those of `users` (the semantic model whose primary entity
    is the user) whose attributes pass every filter (a caller's row-level policy)."""

    users: SemanticModel
    filters: tuple[tuple[GroupByItem, Filter], ...]


class ExperimentSql:
    """Renders experiment statements with a `Renderer`'s cached fragments and parameters."""

    def __init__(self, renderer: Renderer, tables: ExperimentTables = ExperimentTables()) -> None:
        self.renderer = renderer
        self.tables = tables
        self.dialect = renderer.dialect

    def _rel(self, relation: Relation) -> str:
        return table_expr(relation.schema, relation.table).sql(dialect=self.dialect)

    def catalog(self, population: Population | None = None) -> RenderedQuery:
        """Every experiment with its variants and assigned (non-internal, first-variant) users
        (those of `population` only, when given)."""
        params: dict[str, Any] = {}
        assignments = self._rel(self.tables.assignments)
        if population is not None:
            assignments = (
                f"(SELECT * FROM {assignments} AS pa WHERE pa.user_id IN ({self._population(params, population)}))"
            )
        sql = (
            "SELECT e.experiment_id, e.experiment_name, e.control_variant, e.started_at, e.ended_at, e.feature_key, "
            "a.variant, COUNT(a.user_id) AS users, SUM(CASE WHEN a.variant_count > 1 THEN 1 ELSE 0 END) AS multi "
            f"FROM {self._rel(self.tables.experiments)} AS e "
            f"LEFT JOIN {assignments} AS a ON a.experiment_id = e.experiment_id "
            "GROUP BY e.experiment_id, e.experiment_name, e.control_variant, e.started_at, e.ended_at, e.feature_key, "
            "a.variant "
            "ORDER BY e.experiment_id, a.variant"
        )
        return RenderedQuery(sql, params, self.dialect)

    def table_columns(self, table: Relation) -> RenderedQuery:
        """The column names of `table`, from information_schema (empty if it does not exist)."""
        params: dict[str, Any] = {}
        param = self.renderer._param
        sql = (
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = {param(params, table.schema)} AND table_name = {param(params, table.table)}"
        )
        return RenderedQuery(sql, params, self.dialect)

    def sufficient_statistics(
        self,
        experiment_id: str,
        values: list[PerUserMeasure],
        data_ends: list[dt.datetime | None],
        pre_days: int | None,
        slices: list[tuple[GroupByItem, SemanticModel, str]],
        pre_values: tuple[int, ...] | None = None,
        products: tuple[tuple[int, int], ...] = (),
        population: Population | None = None,
    ) -> RenderedQuery:
        """Per variant (and slice): `n`, and for each per-user value i `x{i}_sum`, `x{i}_sum_sq`;
        with a pre-period, for each i in `pre_values` (default: all) `pre{i}_sum`,
        `pre{i}_sum_sq` and `x{i}_pre{i}_sum` (CUPED); and `x{a}_x{b}_sum` for each pair of
        `products` (ratio metrics). `data_ends[i]` ends the windows of value i while the
        experiment runs (the newest time of that value's input). With a `population`, only its
        users are counted.

        The values of one semantic model are computed in one pass over its table: each
        assignment is joined once to its user's rows from the start of the pre-period to the end
        of its window, and every value (and its pre-period twin) is an aggregate over the rows
        on its side of the assignment. Values of different models are joined per user.
        """
        params: dict[str, Any] = {}
        if pre_days is not None and pre_days <= 0:
            pre_days = None
        pre = set(range(len(values)) if pre_values is None else pre_values) if pre_days else set()
        ctes = self._per_user_ctes(params, experiment_id, values, data_ends, pre, pre_days, slices, population)
        keys = ["variant"] + [column for _, _, column in slices]
        body = (
            select_statement(keys + _sums(len(values), pre, products), "per_user", [], [], keys)
            + " ORDER BY "
            + ", ".join(keys)
        )
        sql = "WITH " + ", ".join(f"{alias} AS ({text})" for alias, text in ctes) + " " + body
        return RenderedQuery(sql, params, self.dialect)

    def per_user_table(
        self,
        values: list[PerUserMeasure],
        columns: list[str],
        pre_columns: list[str],
        data_ends: list[dt.datetime | None],
        pre_days: int,
        slices: Sequence[tuple[GroupByItem, SemanticModel, str]] = (),
        slice_columns: Sequence[str] = (),
    ) -> RenderedQuery:
        """Every experiment's per-user values (and their pre-period twins), one row per
        (experiment, first-variant user): the SELECT a build materializes so that a readout
        only has to sum a table instead of joining every assignment to its user's rows."""
        params: dict[str, Any] = {}
        pre = set(range(len(values)))
        ctes = self._per_user_ctes(params, None, values, data_ends, pre, pre_days, list(slices))
        selected = ["experiment_id", "user_id", "variant"]
        selected += [f"x{i} AS {column}" for i, column in enumerate(columns)]
        selected += [f"pre{i} AS {column}" for i, column in enumerate(pre_columns)]
        selected += [f"{alias} AS {column}" for (_, _, alias), column in zip(slices, slice_columns)]
        sql = (
            "WITH "
            + ", ".join(f"{alias} AS ({text})" for alias, text in ctes)
            + " "
            + select_statement(selected, "per_user", [], [])
        )
        return RenderedQuery(sql, params, self.dialect)

    def statistics_from_table(
        self,
        table: Relation,
        experiment_id: str,
        columns: list[str],
        pre_columns: dict[int, str],
        products: tuple[tuple[int, int], ...],
        population: Population | None = None,
        slice_columns: Sequence[str | None] = (),
        joined_slices: Sequence[tuple[GroupByItem, SemanticModel, str]] = (),
    ) -> RenderedQuery:
        """`sufficient_statistics` over a materialized `per_user_table`, sliced by its
        `slice_columns` (named `s{i}` in the result as there); a slice whose column is None is
        read from the users model instead (the next of `joined_slices`, left-joined on the
        user id as in the direct statement)."""
        params: dict[str, Any] = {}
        keys = ["variant"] + [f"s{i}" for i in range(len(slice_columns))]
        joined = iter(joined_slices)
        picked = ["v.variant AS variant"] + [
            f"v.{column} AS s{i}" if column is not None else f"u.{next(joined)[2]} AS s{i}"
            for i, column in enumerate(slice_columns)
        ]
        picked += [f"v.{column} AS x{i}" for i, column in enumerate(columns)]
        picked += [f"v.{column} AS pre{i}" for i, column in pre_columns.items()]
        conditions = [f"v.experiment_id = {self.renderer._param(params, experiment_id)}"]
        if population is not None:
            conditions.append(f"v.user_id IN ({self._population(params, population)})")
        joins = (
            [f"LEFT JOIN ({self._slices(list(joined_slices))}) AS u ON u.user_id = v.user_id"] if joined_slices else []
        )
        per_user = select_statement(picked, f"{self._rel(table)} AS v", joins, conditions)
        body = (
            select_statement(
                keys + _sums(len(columns), set(pre_columns), products), f"({per_user}) AS per_user", [], [], keys
            )
            + " ORDER BY "
            + ", ".join(keys)
        )
        return RenderedQuery(body, params, self.dialect)

    def assignment_health(self, experiment_id: str, population: Population | None = None) -> RenderedQuery:
        """Per day of first assignment and variant: the users assigned, and how many of them
        were assigned before the experiment started or after it ended (out of its window)."""
        params: dict[str, Any] = {}
        conditions = [f"a.experiment_id = {self.renderer._param(params, experiment_id)}"]
        if population is not None:
            conditions.append(f"a.user_id IN ({self._population(params, population)})")
        day = exp.cast(exp.column("assigned_at", "a"), exp.DataType.build("date")).sql(dialect=self.dialect)
        sql = (
            select_statement(
                [
                    f"{day} AS assigned_on",
                    "a.variant AS variant",
                    "COUNT(*) AS users",
                    "SUM(CASE WHEN a.assigned_at < e.started_at THEN 1 ELSE 0 END) AS before_start",
                    "SUM(CASE WHEN e.ended_at IS NOT NULL AND a.assigned_at > e.ended_at THEN 1 ELSE 0 END) AS after_end",
                    "SUM(CASE WHEN a.variant_count > 1 THEN 1 ELSE 0 END) AS in_several_variants",
                ],
                f"{self._rel(self.tables.assignments)} AS a",
                [f"JOIN {self._rel(self.tables.experiments)} AS e ON e.experiment_id = a.experiment_id"],
                conditions,
                [day, "a.variant"],
            )
            + " ORDER BY 1, 2"
        )
        return RenderedQuery(sql, params, self.dialect)

    def eligible_statistics(
        self,
        values: list[PerUserMeasure],
        entry: PerUserMeasure,
        window_start: dt.datetime,
        window_end: dt.datetime,
        metric_days: int,
        pre_days: int | None,
        population: Population | None = None,
    ) -> RenderedQuery:
        """A plan's inputs: over the users with a row of `entry`'s model in [window_start,
        window_end), each entering at its first such row, `n` and the sums (and CUPED sums) of
        every value over the user's first `metric_days` days from entry (and the `pre_days`
        before it), as if each had been assigned when first seen (users of `population` only,
        when given)."""
        params: dict[str, Any] = {}
        dialect = self.renderer.model_dialect
        user = column_expr(entry.user_expr, "t0", dialect).sql(dialect=self.dialect)
        at = column_expr(entry.time_expr, "t0", dialect)
        first = exp.Min(this=at.copy())
        ends = exp.Add(
            this=first.copy(), expression=exp.Interval(this=exp.Literal.string(str(metric_days)), unit=exp.var("DAY"))
        )
        param = self.renderer._param
        conditions = [
            f"{at.sql(dialect=self.dialect)} >= {param(params, window_start)}",
            f"{at.sql(dialect=self.dialect)} < {param(params, window_end)}",
        ]
        if population is not None:
            conditions.append(f"{user} IN ({self._population(params, population)})")
        eligible = select_statement(
            [
                "'plan' AS experiment_id",
                f"{user} AS user_id",
                "'all' AS variant",
                f"{first.sql(dialect=self.dialect)} AS assigned_at",
                f"{ends.sql(dialect=self.dialect)} AS ended_at",
            ],
            f"{self.renderer._table(entry.model)} AS t0",
            [],
            conditions,
            [user],
        )
        pre = set(range(len(values))) if pre_days else set()
        ctes = self._per_user_ctes(
            params,
            None,
            values,
            [window_end + dt.timedelta(days=metric_days)] * len(values),
            pre,
            pre_days,
            [],
            assignments=eligible,
        )
        body = select_statement(_sums(len(values), pre, ()), "per_user", [], [])
        sql = "WITH " + ", ".join(f"{alias} AS ({text})" for alias, text in ctes) + " " + body
        return RenderedQuery(sql, params, self.dialect)

    def _per_user_ctes(
        self,
        params: dict[str, Any],
        experiment_id: str | None,
        values: list[PerUserMeasure],
        data_ends: list[dt.datetime | None],
        pre: set[int],
        pre_days: int | None,
        slices: list[tuple[GroupByItem, SemanticModel, str]],
        population: Population | None = None,
        assignments: str | None = None,
    ) -> list[tuple[str, str]]:
        """CTEs ending in `per_user`: one row per assigned user (of one experiment, or of every
        experiment when `experiment_id` is None; of `population` only, when given) with
        `variant`, `x{i}`, `pre{i}` and slices. `assignments` replaces the experiment's
        assignments by another SELECT of the same columns (a plan's eligible users)."""
        param = self.renderer._param
        conditions = [f"a.experiment_id = {param(params, experiment_id)}"] if experiment_id is not None else []
        if population is not None:
            # Every per-user value starts from these assignments, so restricting them restricts all.
            conditions.append(f"a.user_id IN ({self._population(params, population)})")
        assignments = (
            assignments
            or select_statement(
                [
                    "a.experiment_id AS experiment_id",
                    "a.user_id AS user_id",
                    "a.variant AS variant",
                    "a.assigned_at AS assigned_at",
                    "e.ended_at AS ended_at",
                ],
                f"{self._rel(self.tables.assignments)} AS a",
                [f"JOIN {self._rel(self.tables.experiments)} AS e ON e.experiment_id = a.experiment_id"],
                conditions,
            )
            if assignments is None
            else assignments
        )
        ctes = [("w", assignments)]
        by_model: dict[tuple[str, str, str], list[int]] = {}
        for i, value in enumerate(values):
            by_model.setdefault((value.model.name, value.user_expr, value.time_expr), []).append(i)
        # The first model's values are aggregated over every assignment (a left join keeps the
        # users without rows), so its result already has one row per user and the variant;
        # the other models only aggregate the users they have rows for and are joined to it.
        per_user_columns = ["m0.experiment_id AS experiment_id", "m0.user_id AS user_id", "m0.variant AS variant"]
        joins = []
        for j, indices in enumerate(by_model.values()):
            alias = f"m{j}"
            window_end = f"COALESCE(w.ended_at, {param(params, data_ends[indices[0]])})"
            ctes.append((alias, self._per_user_values(values, indices, pre, pre_days, window_end, base=j == 0)))
            if j:
                joins.append(
                    f"LEFT JOIN {alias} ON {alias}.experiment_id = m0.experiment_id AND {alias}.user_id = m0.user_id"
                )
            for i in indices:
                per_user_columns.append(f"COALESCE({alias}.x{i}, 0) AS x{i}")
                if i in pre:
                    per_user_columns.append(f"COALESCE({alias}.pre{i}, 0) AS pre{i}")
        if slices:
            ctes.append(("s", self._slices(slices)))
            joins.append("LEFT JOIN s ON s.user_id = m0.user_id")
            per_user_columns += [f"s.{column} AS {column}" for _, _, column in slices]
        ctes.append(("per_user", select_statement(per_user_columns, "m0", joins, [])))
        return ctes

    def _per_user_values(
        self,
        values: list[PerUserMeasure],
        indices: list[int],
        pre: set[int],
        pre_days: int | None,
        window_end: str,
        *,
        base: bool,
    ) -> str:
        """`x{i}` (and `pre{i}`) per user for the values of one semantic model: for every
        assigned user, with its variant, when `base`; else for the users with rows in their
        windows."""
        dialect = self.renderer.model_dialect
        first = values[indices[0]]
        user = column_expr(first.user_expr, "t0", dialect)
        at = column_expr(first.time_expr, "t0", dialect)
        assigned = exp.column("assigned_at", "w")
        reaches_back = pre_days is not None and any(i in pre for i in indices)
        start = (
            exp.Sub(this=assigned, expression=exp.Interval(this=exp.Literal.string(str(pre_days)), unit=exp.var("DAY")))
            if reaches_back
            else assigned
        )
        # a user has one variant; MIN names it on every warehouse (ANY_VALUE is not in PostgreSQL 15)
        columns = ["w.experiment_id AS experiment_id", "w.user_id AS user_id"] + (
            ["MIN(w.variant) AS variant"] if base else []
        )
        for i in indices:
            value = values[i]
            expr = column_expr(value.measure.expr, "t0", dialect)
            if reaches_back or base:
                # in the base model the condition also holds no row of a user without rows
                # (NULL after the left join), so `count(1)` or `sum(1)` give 0 for them
                after = exp.GTE(this=at.copy(), expression=assigned.copy())
                columns.append(f"{self._aggregate(value, expr, user, after)} AS x{i}")
                if i in pre:
                    before = exp.LT(this=at.copy(), expression=assigned.copy())
                    columns.append(f"{self._aggregate(value, expr, user, before)} AS pre{i}")
            else:
                columns.append(f"{self._aggregate(value, expr, user, None)} AS x{i}")
        on = exp.and_(
            exp.EQ(this=user.copy(), expression=exp.column("user_id", "w")), exp.GTE(this=at.copy(), expression=start)
        ).sql(dialect=self.dialect)
        on += f" AND {at.sql(dialect=self.dialect)} < {window_end}"
        join = "LEFT JOIN" if base else "JOIN"
        return select_statement(
            columns,
            "w",
            [f"{join} {self.renderer._table(first.model)} AS t0 ON {on}"],
            [],
            ["w.experiment_id", "w.user_id"],
        )

    def _aggregate(self, value: PerUserMeasure, expr: exp.Expr, user: exp.Expr, when: exp.Expr | None) -> str:
        """The measure's aggregate over one user's rows (those matching `when`, if given).

        A distinct count of the user itself (or of the user when a condition holds, as
        `count(distinct case when revenue > 0 then user_id end)`) is 1 or 0 within one user, so
        it is computed as a max over a 0/1 flag: the same number without a distinct hash table
        per user.
        """
        if when is not None:
            expr = exp.Case(ifs=[exp.If(this=when, true=expr)])
        if value.measure.agg is Agg.COUNT_DISTINCT and _only_user_or_null(expr, user):
            flag = exp.Case(
                ifs=[exp.If(this=exp.Not(this=exp.Is(this=expr, expression=exp.Null())), true=exp.Literal.number(1))],
                default=exp.Literal.number(0),
            )
            return exp.Max(this=flag).sql(dialect=self.dialect)
        return aggregate_tree(value.measure, self.renderer.model_dialect, expr).sql(dialect=self.dialect)

    def population_sql(self, population: Population) -> RenderedQuery:
        """The user ids of `population`, as a statement of its own."""
        params: dict[str, Any] = {}
        return RenderedQuery(self._population(params, population), params, self.dialect)

    def _population(self, params: dict[str, Any], population: Population) -> str:
        """SELECT of the user ids of `population`: its filters rendered as the semantic layer
        renders metric filters, values bound."""
        model = population.users
        user = _user_entity(model)
        alias_for, joins = self.renderer._joiner()
        time = TimeSettings(None, WeekStart.MONDAY)
        user_id = column_expr(user.expr, "t0", self.renderer.model_dialect).sql(dialect=self.dialect)
        conditions = [
            self.renderer._filter(self.renderer._item(item, alias_for(item), time), item, flt, params)
            for item, flt in population.filters
        ]
        return select_statement([user_id], f"{self.renderer._table(model)} AS t0", joins, conditions)

    def _slices(self, slices: list[tuple[GroupByItem, SemanticModel, str]]) -> str:
        """User attributes (country, plan, platform of the first event...) per user, from the
        semantic model whose primary entity is the user."""
        model = slices[0][1]
        user = _user_entity(model)
        alias_for, joins = self.renderer._joiner()
        columns = [f"{column_expr(user.expr, 't0', self.renderer.model_dialect).sql(dialect=self.dialect)} AS user_id"]
        time = TimeSettings(None, WeekStart.MONDAY)
        for item, _, column in slices:
            columns.append(f"{self.renderer._item(item, alias_for(item), time)} AS {column}")
        return select_statement(columns, f"{self.renderer._table(model)} AS t0", joins, [])


def _user_entity(model: SemanticModel) -> Entity:
    """The entity of the users model whose column is the user id: its primary entity."""
    user = model.entity(model.primary_entity) if model.primary_entity else None
    if user is None:
        raise InternalError(f"semantic model {model.name!r} has no primary entity to read user ids from.")
    return user


def _sums(count: int, pre: set[int], products: tuple[tuple[int, int], ...]) -> list[str]:
    """The sufficient statistics of `count` per-user values `x{i}` (and `pre{i}` for i in
    `pre`): n, sums, sums of squares, CUPED and ratio cross-products."""
    sums = ["COUNT(*) AS n"]
    for i in range(count):
        sums += [f"SUM(x{i}) AS x{i}_sum", f"SUM(x{i} * x{i}) AS x{i}_sum_sq"]
        if i in pre:
            sums += [
                f"SUM(pre{i}) AS pre{i}_sum",
                f"SUM(pre{i} * pre{i}) AS pre{i}_sum_sq",
                f"SUM(x{i} * pre{i}) AS x{i}_pre{i}_sum",
            ]
    for a, b in products:
        sums.append(f"SUM(x{a} * x{b}) AS x{a}_x{b}_sum")
        if a in pre and b in pre:
            sums += [
                f"SUM(pre{a} * pre{b}) AS pre{a}_pre{b}_sum",
                f"SUM(x{a} * pre{b}) AS x{a}_pre{b}_sum",
                f"SUM(x{b} * pre{a}) AS x{b}_pre{a}_sum",
            ]
    return sums


def _only_user_or_null(expr: exp.Expr, user: exp.Expr) -> bool:
    """Whether `expr` evaluates to the user column or NULL on every row: the user column itself,
    or a CASE whose every branch is one of those."""
    if isinstance(expr, exp.Paren):
        return _only_user_or_null(expr.this, user)
    if isinstance(expr, exp.Null):
        return True
    if isinstance(expr, exp.Column):
        return expr == user
    if isinstance(expr, exp.Case):
        default = expr.args.get("default")
        branches = [branch.args.get("true") for branch in expr.args.get("ifs") or []]
        return all(_only_user_or_null(b, user) for b in branches) and (
            default is None or _only_user_or_null(default, user)
        )
    return False
