"""SQL over the semantic layer: the SELECTs BI tools send, answered by the metrics engine.

Clients see schema `semantic` with a table `metrics` (one column per metric and per queryable
slice, plus `metric_time__day` ... `metric_time__year`) and one table per semantic model, and
schema `marts` with the dbt marts, read-only. A SELECT over `semantic.metrics` is not run as SQL
over a table: it is translated into the engine's `MetricQuery` (the same one `POST /v1/query`
builds), so a metric is always computed at the grain of the selected slices from its parts,
never re-aggregated from finer rows.

    SELECT metric_time__week, platform, active_users FROM semantic.metrics
    WHERE country = 'US' AND metric_time__week >= '2026-01-05' ORDER BY 1 LIMIT 100

is `{"metrics": ["active_users"], "group_by": ["metric_time__week", "platform"], "where":
[country = US, metric_time__week >= 2026-01-05], "order_by": ["metric_time__week"],
"limit": 100}`. The forms BI tools generate map onto the same query: `SUM(m)`, `MAX(m)`,
`MIN(m)`, `AVG(m)`, `MEASURE(m)` with `GROUP BY` the selected slices are the metric at that
grain; a WHERE on a slice is an engine filter, and one on `metric_time__<grain>` becomes the
range `start`/`end` (exactly the buckets the comparison keeps, so it filters before
aggregation whatever grain is selected). What is left once the engine has answered (outer
queries around a subquery, filters on metric values, HAVING, DISTINCT, expressions, ORDER BY,
LIMIT/OFFSET, COUNT(*) probes) runs over the engine's rows in a private in-memory DuckDB
(`metrics.execution.rowset`), and is refused where it would add up a metric across rows
(`SUM(active_users)` over weeks).

Nothing the client wrote is pasted into SQL: values become engine filter values (bound
parameters), and the rest of the statement is a sqlglot tree rendered by sqlglot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from api.sql_endpoint.semantic_errors import _from_engine, _unknown_column, _unsupported
from api.sql_endpoint.semantic_tables import (
    _ROWS,
    COMPLETE_SUFFIX,
    METRIC_TIME,
    METRICS_TABLE,
    SEMANTIC_SCHEMA,
    SUPPORTED,
    SqlAnswer,
    SqlColumn,
    _Catalog,
    _catalog,
    _identifier_text,
    _table_kind,
    reads_data_tables,
    visible_tables,
)
from api.sql_endpoint.semantic_trees import conjuncts, literal_node, own, pg_name
from api.sql_endpoint.semantic_values import (
    _COMPARISONS,
    _FLIPPED,
    _NEGATED,
    _as_datetime,
    _grain_of,
    _json_value,
    _literal,
    _time_range,
)
from api.sql_endpoint.series_limits import answer_series_others, resolve_series_limits
from api.sql_endpoint.statements import SqlError
from metrics import errors
from metrics.engine import MetricsEngine
from metrics.execution.client import ResultColumn, ResultSet
from metrics.execution.rowset import query_rows
from metrics.query.request import Filter, FilterOp, WeekStart, query_from_text
from metrics.semantic.model import Grain, MetricType
from metrics.sql.marts import (
    check_functions,
    check_read_only,
    cte_references,
    function_name,
)
from metrics.time_buckets import truncate

# What the server calls; the rest of the endpoint's semantic SQL lives in semantic_tables (the
# schema clients see), semantic_values (literals and time ranges), semantic_trees (readings of
# a SELECT's tree), series_limits (Superset's top-N joins) and semantic_errors.
__all__ = ["SqlAnswer", "SqlError", "answer", "reads_data_tables", "visible_tables"]

# -- answering ----------------------------------------------------------------------------


def answer(statement: exp.Expression, engine: MetricsEngine) -> SqlAnswer:
    """Answer one SELECT (parsed from PostgreSQL, parameters bound as literals).

    Raises:
        SqlError: with the SQLSTATE of the problem (42703 unknown column, 42P01
            unknown table, 0A000 unsupported SQL, 22023 bad value, ...).
    """
    try:
        return _answer(statement, engine)
    except SqlError:
        raise
    except errors.MetricsError as exc:
        raise _from_engine(exc) from exc


def _answer(statement: exp.Expression, engine: MetricsEngine) -> SqlAnswer:
    check_read_only(statement)
    catalog = _catalog(engine)
    grouped = answer_series_others(statement, engine, _answer)
    if grouped is not None:
        return grouped
    statement = resolve_series_limits(statement, engine, _answer)
    ctes = cte_references(statement)
    kinds: dict[str, list[exp.Table]] = {}
    for table in statement.find_all(exp.Table):
        kinds.setdefault(_table_kind(table, ctes), []).append(table)
    if "function" in kinds:
        raise _unsupported("table functions are not supported; read semantic.metrics or marts.<table>.")
    for table in kinds.get("other", []):
        raise SqlError(
            "42P01",
            f'relation "{table.sql(dialect="postgres")}" does not exist',
            "Tables: " + ", ".join(catalog.table_names()) + ".",
        )
    semantic, marts = kinds.get("semantic", []), kinds.get("marts", [])
    if semantic and marts:
        raise _unsupported("a query cannot combine semantic tables with marts tables.")
    if marts:
        result = engine.read_mart(statement)
        return _sql_answer(result.columns, result.rows, _output_names(statement))
    if semantic:
        return _SemanticQuery(statement, engine, catalog, semantic).answer()
    check_functions(statement)
    result = query_rows(statement, {})
    return _sql_answer(result.columns, result.rows, _output_names(statement))


def _sql_answer(columns: tuple[ResultColumn, ...], rows: list[tuple], names: list[str] | None = None) -> SqlAnswer:
    if names is not None and len(names) == len(columns):
        columns = tuple(ResultColumn(n, c.type) for n, c in zip(names, columns))
    return SqlAnswer(tuple(SqlColumn(c.name, c.type) for c in columns), rows)


def _output_names(top: exp.Expression) -> list[str] | None:
    """PostgreSQL's names for unaliased output columns (`sum`, `count`, `?column?`)."""
    if not isinstance(top, exp.Select) or any(
        isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star)) for p in top.expressions
    ):
        return None
    return [pg_name(p) for p in top.expressions]


_METRIC_AGGS = {"sum", "min", "max", "avg", "measure", "any_value", "arbitrary", "first", "last"}
# Aggregates whose value over rows that each hold one metric value is still meaningful
# (how many rows, the smallest, the largest); SUM is added for additive metrics.
_ROW_STATISTICS = {"count", "min", "max", "any_value", "arbitrary", "first", "last"}


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc) or (isinstance(node, exp.Anonymous) and node.name.lower() == "measure")


@dataclass
class _EngineFilters:
    """What the WHERE clause gives the engine: structured filters, dbt-style filter strings
    (built from the tree, with checked names), and a metric-time range."""

    structured: list[Filter] = dataclasses.field(default_factory=list)
    templates: list[str] = dataclasses.field(default_factory=list)
    time: list[tuple[str, str, Any]] = dataclasses.field(default_factory=list)  # (column, op, value)
    never: bool = False  # a condition no row can meet (`x = NULL`)

    def add(self, column: str, op: str, value: Any = None, values: tuple = ()) -> None:
        grain = _grain_of(column)
        if grain is not None and op in ("=", "<", "<=", ">", ">="):
            self.time.append((column, op, value))
            return
        if op in ("in", "not_in"):
            kept = tuple(v for v in values if v is not None)
            if op == "not_in" and len(kept) < len(values):
                self.never = True  # NOT IN with a NULL is never true
                return
            if not kept:
                self.never = True
                return
            self.structured.append(
                Filter(field=column, op=FilterOp.parse(op), values=tuple(_json_value(v) for v in kept))
            )
        elif op in ("is_null", "is_not_null"):
            self.structured.append(Filter(field=column, op=FilterOp.parse(op)))
        else:
            if value is None:
                self.never = True  # a comparison with NULL is never true
                return
            if grain is not None:
                value = _as_datetime(value, column)
            self.structured.append(Filter(field=column, op=FilterOp.parse(op), value=_json_value(value)))

    def bounds(
        self, week_start: WeekStart = WeekStart.MONDAY
    ) -> tuple[dt.datetime | None, dt.datetime | None, list[Filter]]:
        """`start`/`end` from the metric-time comparisons; those that do not map to a range
        (an `=` on a date that starts no bucket) stay bucket filters."""
        start: dt.datetime | None = None
        end: dt.datetime | None = None
        leftover: list[Filter] = []
        for column, op, value in self.time:
            if value is None:
                self.never = True
                continue
            when = _as_datetime(value, column)
            grain = _grain_of(column)
            span = _time_range(op, when, grain, week_start)
            if span is None:
                leftover.append(Filter(field=column, op=FilterOp.parse(op), value=_json_value(value)))
                continue
            low, high = span
            if low is not None:
                start = low if start is None else max(start, low)
            if high is not None:
                end = high if end is None else min(end, high)
        if start is not None and end is not None and start >= end:
            # An empty range: keep every comparison as a bucket filter, which selects nothing.
            return (
                None,
                None,
                leftover
                + [
                    Filter(field=c, op=FilterOp.parse(o), value=_json_value(v))
                    for c, o, v in self.time
                    if v is not None
                ],
            )
        return start, end, leftover


class _SemanticQuery:
    """One statement whose innermost query reads a semantic table."""

    def __init__(
        self, statement: exp.Expression, engine: MetricsEngine, catalog: _Catalog, tables: list[exp.Table]
    ) -> None:
        if len(tables) > 1:
            raise _unsupported(
                "a query can read one semantic table once: joins, unions and self-joins of "
                "semantic tables are not supported."
            )
        self.engine = engine
        self.catalog = catalog
        self.statement = _inline_ctes(statement.copy())
        self.table = next(
            t
            for t in self.statement.find_all(exp.Table)
            if _table_kind(t, cte_references(self.statement)) == "semantic"
        )
        name = _identifier_text(self.table.this)
        semantic = catalog.semantic.get(name)
        if semantic is None:
            raise SqlError(
                "42P01",
                f'relation "{self.table.sql(dialect="postgres")}" does not exist',
                "Tables: " + ", ".join(catalog.table_names()) + ".",
            )
        self.semantic = semantic
        self.week_start = WeekStart.MONDAY
        # Each filter template sent to the engine, by the client's condition it stands for.
        self.template_sources: dict[str, str] = {}
        self._check_shape()

    # -- shape checks ------------------------------------------------------------------

    def _check_shape(self) -> None:
        for node in self.statement.walk():
            if isinstance(node, exp.SetOperation):
                raise _unsupported(
                    f"{node.key.upper()} is not supported over semantic tables; send one query per metric set."
                )
            if isinstance(node, exp.Window):
                raise _unsupported(
                    "window functions are not supported over semantic tables: a metric is "
                    "computed at the grain of the selected slices; select a coarser grain instead."
                )
            if isinstance(node, exp.CTE):
                raise _unsupported("WITH is not supported over semantic tables; nest the query as a subquery.")
        parent = self.table.parent
        inner = parent.parent if isinstance(parent, exp.From) else None
        if not isinstance(inner, exp.Select):
            raise _unsupported(
                "semantic tables can only be read in the FROM clause of a SELECT; "
                "joins with other tables are not supported."
            )
        if inner.args.get("joins") or inner.args.get("laterals"):
            raise _unsupported(
                "semantic.metrics cannot be joined with other tables: it already holds every "
                "metric by every slice; select the slices you need instead of joining."
            )
        for arg in ("qualify", "connect", "prewhere", "match", "sample", "pivots"):
            if inner.args.get(arg):
                raise _unsupported(f"{arg.upper()} is not supported over semantic tables.")
        if self.table.args.get("pivots") or self.table.args.get("sample") or self.table.args.get("joins"):
            raise _unsupported("semantic.metrics cannot be sampled, pivoted or joined.")
        self.inner = inner
        check_functions(self.statement, also=("measure",))

    # -- column resolution ---------------------------------------------------------------

    def _name(self, column: exp.Column) -> str:
        return _identifier_text(column.this)

    def _classify(self) -> None:
        """Sort the inner query's column references into metrics, slices and output aliases."""
        inner = self.inner
        aliases = {
            _identifier_text(p.args.get("alias"))
            if isinstance(p.args.get("alias"), exp.Identifier)
            else p.alias.lower()
            for p in inner.expressions
            if isinstance(p, exp.Alias)
        }
        self.metrics: list[str] = []
        self.kind: dict[int, str] = {}
        table_names = {_identifier_text(self.table.this)}
        if self.table.alias:
            table_names = {_identifier_text(self.table.args["alias"].this)}
        for column in list(inner.find_all(exp.Column)):
            if not own(inner, column):
                continue
            if isinstance(column.this, exp.Star):
                if column.parent is inner:
                    continue  # `SELECT m.* FROM semantic.metrics m`: a table preview, as `*`
                raise self._star_error()
            name = self._name(column)
            qualifier = _identifier_text(column.args.get("table"))
            if qualifier and qualifier not in table_names:
                raise SqlError("42P01", f'missing FROM-clause entry for table "{qualifier}"')
            in_output_clause = column.find_ancestor(exp.Order, exp.Group, exp.Having) is not None
            if name in self.semantic.metrics:
                kind = "metric"
                if name not in self.metrics:
                    self.metrics.append(name)
            elif name in self.semantic.slices or (
                self.semantic.definition.name == METRICS_TABLE and name in self.catalog.slice_names
            ):
                kind = "slice"
            elif in_output_clause and name in aliases and not qualifier:
                kind = "alias"
                continue
            elif name in self.catalog.metric_types and self.semantic.definition.name != METRICS_TABLE:
                raise SqlError(
                    "42703",
                    f'column "{name}" does not exist in {SEMANTIC_SCHEMA}.{self.semantic.definition.name}',
                    f"It is in {SEMANTIC_SCHEMA}.{METRICS_TABLE}.",
                )
            else:
                raise _unknown_column(name, self.semantic)
            # The engine's rows carry canonical names; qualifiers name the rows' alias.
            column.set("this", exp.to_identifier(name, quoted=True))
            column.set("db", None)
            column.set("catalog", None)
            self.kind[id(column)] = kind

    def _copy(self, node: exp.Expression) -> exp.Expression:
        """A copy whose columns keep the classification of the originals."""
        copy = node.copy()
        for original, copied in zip(node.walk(), copy.walk()):
            if id(original) in self.kind:
                self.kind[id(copied)] = self.kind[id(original)]
        return copy

    def _star_error(self) -> SqlError:
        return _unsupported(
            "SELECT * over semantic.metrics is not supported: name the slices and metrics "
            "to select (the selected slices are the grain), e.g. SELECT metric_time__week, "
            "active_users FROM semantic.metrics."
        )

    def _columns_in(self, node: exp.Expression, kind: str | None = None) -> list[exp.Column]:
        found = [node] if isinstance(node, exp.Column) else []
        found += [c for c in node.find_all(exp.Column) if c is not node]
        return [c for c in found if id(c) in self.kind and (kind is None or self.kind[id(c)] == kind)]

    # -- time truncation -----------------------------------------------------------------

    def _fold_sunday_weeks(self) -> None:
        """Metabase's weeks (they start on Sunday by default): the day shifted forward one day,
        truncated to its ISO week, shifted back, `CAST((CAST(DATE_TRUNC('week', CAST((d +
        INTERVAL '1 day') AS date)) AS date) + INTERVAL '-1 day') AS date)`, is the
        `metric_time__week` slice with `week_start=sunday`, so every metric is computed over
        Sunday weeks by the engine rather than added up from days."""
        for projection in self.inner.expressions:
            if _sunday_week_of(projection) is not None:
                # Keep the name PostgreSQL gives the unaliased expression.
                projection.replace(exp.alias_(projection.copy(), pg_name(projection)))
        folded: list[exp.Column] = []

        def fold(node: exp.Expression) -> exp.Expression:
            column = _sunday_week_of(node) if own(self.inner, node) else None
            if column is None:
                return node
            folded.append(
                exp.Column(this=exp.to_identifier(f"{METRIC_TIME}__{Grain.WEEK.value}"), table=column.args.get("table"))
            )
            return folded[-1]

        self.inner.transform(fold, copy=False)
        if not folded:
            return
        self.week_start = WeekStart.SUNDAY
        mixed = "a query cannot mix weeks starting on Sunday (Metabase's week form) with weeks starting on Monday "
        for column in self.inner.find_all(exp.Column):
            if not own(self.inner, column) or any(column is f for f in folded):
                continue
            if _grain_of(_identifier_text(column.this)) is Grain.WEEK:
                raise _unsupported(mixed + f"({METRIC_TIME}__week); select one of them.")
            trunc = column.parent
            if (
                isinstance(trunc, (exp.TimestampTrunc, exp.DateTrunc))
                and trunc.args.get("unit") is not None
                and Grain.parse(trunc.args["unit"].name) is Grain.WEEK
            ):
                raise _unsupported(mixed + "(date_trunc('week', ...)); select one of them.")

    def _fold_date_trunc(self) -> None:
        """`date_trunc('month', metric_time__day)` is the `metric_time__month` slice."""

        def fold(node: exp.Expression) -> exp.Expression:
            if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)) and own(self.inner, node):
                column = node.this
                unit = node.args.get("unit")
                unit_name = (unit.name if unit is not None else "").lower()
                grain = Grain.parse(unit_name)
                if (
                    isinstance(column, exp.Column)
                    and grain is not None
                    and _grain_of(_identifier_text(column.this)) is not None
                    and grain.rank >= _grain_of(_identifier_text(column.this)).rank
                ):
                    return exp.Column(
                        this=exp.to_identifier(f"{METRIC_TIME}__{grain.value}"), table=column.args.get("table")
                    )
            return node

        for projection in self.inner.expressions:
            if isinstance(projection, (exp.TimestampTrunc, exp.DateTrunc)):
                # Keep the output name a client would expect for the unaliased expression.
                projection.replace(exp.alias_(projection.copy(), "date_trunc"))
        self.inner.transform(fold, copy=False)

    # -- translation -----------------------------------------------------------------------

    # -- merging outer queries into the metric query ---------------------------------------

    def _merge_outward(self) -> None:
        """Fold an outer query into the metric query where that is what it means:

        - over `SELECT * FROM semantic.metrics` (a BI tool's "virtual dataset"), the outer query
          is the one that names the grain;
        - an outer `SUM(m)`/`MEASURE(m)` grouped by slices over a plain selection (Metabase's
          nested questions) asks for the metric at the outer grain, which the engine computes
          from its parts rather than by adding up the inner rows.
        """
        while True:
            inner = self.inner
            subquery = inner.parent
            if not isinstance(subquery, exp.Subquery) or not isinstance(subquery.parent, exp.From):
                return
            outer = subquery.parent.parent
            if not isinstance(outer, exp.Select) or outer.args.get("joins") or outer.args.get("laterals"):
                return
            outputs = self._plain_outputs(inner)
            if outputs is None:
                return
            star = any(isinstance(p, exp.Star) for p in inner.expressions)
            alias = subquery.alias_or_name
            references = [
                c
                for c in outer.find_all(exp.Column)
                if own(outer, c) and (not c.table or c.table == alias) and not isinstance(c.this, exp.Star)
            ]
            if not star and not self._outer_recomputes(outer, references, outputs):
                return
            for column in references:
                name = _identifier_text(column.this)
                target = outputs.get(name)
                if target is None:
                    if star:
                        target = exp.Column(this=exp.to_identifier(name, quoted=column.this.quoted))
                    else:
                        continue  # an alias of the outer query's own output
                replacement = target.copy()
                if column.parent is outer:
                    replacement = exp.alias_(replacement, column.output_name or name, quoted=True)
                column.replace(replacement)
            conditions = [w.this for w in (outer.args.get("where"), inner.args.get("where")) if w is not None]
            outer.set("from_", inner.args["from_"].copy())
            outer.set("where", exp.Where(this=exp.and_(*conditions)) if conditions else None)
            self.inner = outer
            self.table = outer.args["from_"].this

    def _plain_outputs(self, inner: exp.Select) -> dict[str, exp.Expression] | None:
        """The output columns of a query that only selects columns and filters slices (a
        candidate for merging), by output name; None when it does more."""
        if any(inner.args.get(a) for a in ("group", "having", "distinct", "limit", "offset", "joins")):
            return None
        outputs = {}
        for projection in inner.expressions:
            node = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(node, exp.Star):
                continue
            if not isinstance(node, exp.Column) or isinstance(node.this, exp.Star):
                return None
            outputs[projection.alias_or_name if isinstance(projection, exp.Alias) else _identifier_text(node.this)] = (
                node
            )
        where = inner.args.get("where")
        if where is not None and any(
            not self._is_slice_name(_identifier_text(c.this)) for c in where.find_all(exp.Column)
        ):
            return None
        return outputs

    def _is_slice_name(self, name: str) -> bool:
        return name not in self.catalog.metric_types and (
            name in self.semantic.slices or name in self.catalog.slice_names
        )

    def _outer_recomputes(
        self, outer: exp.Select, references: list[exp.Column], outputs: dict[str, exp.Expression]
    ) -> bool:
        """Whether an outer query over plain rows only asks for metrics at its own grain:
        grouped, every aggregate a SUM/MEASURE of one metric, everything else slices."""
        aggregates = [n for n in outer.walk() if _is_aggregate(n) and own(outer, n)]
        if not aggregates or outer.args.get("distinct"):
            return False
        for node in aggregates:
            if function_name(node) not in ("sum", "measure"):
                return False
            argument = node.this if not isinstance(node, exp.Anonymous) else (node.expressions or [None])[0]
            if not isinstance(argument, exp.Column) or node.args.get("distinct"):
                return False
            target = outputs.get(_identifier_text(argument.this))
            if target is None or _identifier_text(target.this) not in self.catalog.metric_types:
                return False
        for column in references:
            if column.find_ancestor(exp.AggFunc, exp.Anonymous) is not None and any(
                column.find_ancestor(exp.AggFunc, exp.Anonymous) is a for a in aggregates
            ):
                continue
            target = outputs.get(_identifier_text(column.this))
            if target is not None and not self._is_slice_name(_identifier_text(target.this)):
                return False
        return True

    def answer(self) -> SqlAnswer:
        self._merge_outward()
        self._fold_sunday_weeks()
        self._fold_date_trunc()
        self._classify()
        inner = self.inner
        projections = inner.expressions
        if any(_is_star(p) for p in projections):
            if self._provably_empty():
                columns = self.semantic.preview_columns()
                return SqlAnswer(tuple(SqlColumn(c.name, c.type) for c in columns), [])
            if not self._is_preview():
                raise self._star_error()
        if self._is_preview():
            return self._preview_answer()

        aggregates = [n for n in inner.walk() if _is_aggregate(n) and own(inner, n)]
        group = inner.args.get("group")
        grouped = bool(group) or bool(aggregates) or bool(inner.args.get("having"))
        filters, kept = self._split_where()

        # The engine's grain: the slices the rows must be told apart by.
        grain: list[str] = []

        def add(name: str) -> None:
            if name not in grain:
                grain.append(name)

        group_keys = self._group_keys() if group else []
        if grouped:
            for key in group_keys:
                for column in self._columns_in(key, "slice"):
                    add(self._name(column))
            for node in aggregates:
                for column in self._columns_in(node, "slice"):
                    add(self._name(column))
            plain_keys = {
                self._name(_uncast(k))
                for k in group_keys
                if isinstance(_uncast(k), exp.Column) and self.kind.get(id(_uncast(k))) == "slice"
            }
            finer = any(name not in plain_keys for name in grain)
            for projection in projections + ([inner.args["having"]] if inner.args.get("having") else []):
                for column in self._columns_in(projection):
                    outside = column.find_ancestor(exp.AggFunc, exp.Anonymous)
                    outside = outside is None or not _is_aggregate(outside) or not own(inner, outside)
                    if not outside:
                        continue
                    name = self._name(column)
                    if self.kind[id(column)] == "slice" and name not in plain_keys and name not in grain:
                        raise SqlError(
                            "42803",
                            f'column "{name}" must appear in the GROUP BY clause or be used in an aggregate function',
                        )
                    if self.kind[id(column)] == "metric":
                        if finer:
                            raise SqlError(
                                "42803",
                                f'metric "{name}" must be used in an aggregate function, or the '
                                "query grouped by every slice it uses",
                            )
                        # One row per group: the metric at that grain.
                        wrapped = exp.AnyValue(this=self._copy(column))
                        column.replace(exp.alias_(wrapped, name) if column.parent is inner else wrapped)
            self.output_grain = plain_keys if len(plain_keys) == len(group_keys) else plain_keys | {_HIDDEN}
            if finer:
                self._check_reaggregation(aggregates, grain, plain_keys)
            for node in aggregates:
                if isinstance(node, exp.Anonymous) and node.name.lower() == "measure":
                    if len(node.expressions) != 1:
                        raise SqlError("42883", "MEASURE() takes one metric column")
                    wrapped = exp.AnyValue(this=self._copy(node.expressions[0]))
                    node.replace(exp.alias_(wrapped, "measure") if node.parent is inner else wrapped)
        else:
            for projection in projections:
                for column in self._columns_in(projection, "slice"):
                    add(self._name(column))
            self.output_grain = set(grain)
            order = inner.args.get("order")
            for ordered in order.expressions if order else []:
                for column in self._columns_in(ordered, "slice"):
                    if self._name(column) not in grain:
                        raise SqlError(
                            "42803",
                            f'ORDER BY "{self._name(column)}": order by a selected slice '
                            "(the selected slices are the grain)",
                        )
        for condition in kept:
            for column in self._columns_in(condition, "slice"):
                if self._name(column) not in grain:
                    raise _unsupported(
                        f'a condition combining metrics with the slice "{self._name(column)}" needs that '
                        "slice selected (slices that are not selected can only be compared with values)."
                    )

        if inner is not self.statement:
            # An outer query reads these columns by PostgreSQL's names (`sum`, `count`).
            for projection in list(inner.expressions):
                if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                    projection.replace(exp.alias_(projection.copy(), pg_name(projection)))
        metrics = list(self.metrics)
        carriers = False
        if not metrics and grain:
            metrics, carriers = self._carrier_metrics(grain, filters), True
        direct = None if carriers else self._direct_plan(grain, kept, aggregates, group_keys)
        if metrics:
            start, end, leftover = filters.bounds(self.week_start)
            if filters.never:
                rows = ResultSet(tuple(ResultColumn(n, self._type_of(n)) for n in grain + metrics), [])
            else:
                # `<metric>__complete` columns are answered with their metric's completeness.
                asked = list(dict.fromkeys(self._metric_of(m) for m in metrics))
                metric_query = query_from_text(
                    metrics=asked,
                    group_by=grain,
                    where=[*filters.structured, *leftover, *filters.templates],
                    start=start,
                    end=end,
                    week_start=self.week_start,
                    order_by=direct[1] if direct else [],
                    limit=direct[2] if direct else None,
                )
                try:
                    result = self.engine.query(metric_query)
                except errors.MetricsError as exc:
                    raise self._in_client_terms(exc) from exc
                rows = self._with_completeness(result, grain, metrics)
        else:
            # No metric and no slice (`SELECT COUNT(*) FROM semantic.metrics`): the table at
            # the coarsest grain, one row.
            rows = ResultSet((ResultColumn("__row", "integer"),), [] if filters.never else [(1,)])
        if direct is not None:
            return self._direct_answer(direct[0], rows, direct[3])
        return self._relational_answer(rows, kept, carriers)

    def _metric_of(self, column: str) -> str:
        """The metric a column answers: itself, or the metric of a `<metric>__complete` flag."""
        return column[: -len(COMPLETE_SUFFIX)] if column in self.semantic.completeness else column

    def _with_completeness(self, result, grain: list[str], metrics: list[str]) -> ResultSet:
        """The engine's rows as the statement's columns: the slices, then each selected metric
        column, a `<metric>__complete` one being that metric's per-row completeness flag
        (`QueryResult.complete`, the values of `completeness=columns` over HTTP)."""
        if not self.semantic.completeness.intersection(metrics):
            return ResultSet(result.columns, result.rows)
        position = {name: i for i, name in enumerate(result.metric_names)}
        columns = list(result.columns[: len(grain)])
        picks: list[tuple[bool, int]] = []  # (a completeness flag?, index)
        for name in metrics:
            flag = name in self.semantic.completeness
            index = position[self._metric_of(name)]
            picks.append((flag, index))
            columns.append(ResultColumn(name, "boolean") if flag else result.columns[len(grain) + index])
        rows = [
            row[: len(grain)] + tuple(complete[i] if flag else row[len(grain) + i] for flag, i in picks)
            for row, complete in zip(result.rows, result.complete)
        ]
        return ResultSet(tuple(columns), rows)

    def _in_client_terms(self, exc: errors.MetricsError) -> Exception:
        """An engine error about a filter template, told with the client's condition instead of
        the template (which is internal)."""
        message = exc.message
        named = [(template, source) for template, source in self.template_sources.items() if template in message]
        if not named:
            return exc
        template, source = named[0]
        if isinstance(exc, errors.InvalidFilter) and "which filters may not contain" in message:
            return SqlError(
                "0A000",
                f"the condition {source} cannot be applied before the metrics are computed: a "
                "condition on slices may compare them with values (=, <>, <, <=, >, >=, IN, BETWEEN, "
                "IS NULL, LIKE) joined by AND/OR/NOT; values may be constant expressions such as "
                "TO_DATE('2026-01-05', 'YYYY-MM-DD') or NOW() - INTERVAL '7 days'.",
                SUPPORTED,
            )
        return SqlError(_from_engine(exc).sqlstate, message.replace(template, source))

    # -- "show me the table" ---------------------------------------------------------------

    def _is_preview(self) -> bool:
        """Whether the statement asks for the table as it is: `SELECT *` or every column, not
        grouped nor aggregated, at the top level (SQL Lab's and DBeaver's previews, Superset's
        samples, Metabase's raw table view). A semantic table holds no rows of its own, so it
        answers with the rows of a table preview (`_preview_answer`)."""
        inner = self.inner
        if inner is not self.statement or any(inner.args.get(a) for a in ("group", "having", "distinct")):
            return False
        if any(_is_aggregate(n) and own(inner, n) for n in inner.walk()):
            return False
        named = set()
        for projection in inner.expressions:
            node = projection.this if isinstance(projection, exp.Alias) else projection
            if _is_star(node):
                return True
            if not isinstance(node, exp.Column) or id(node) not in self.kind:
                return False
            named.add(self._name(node))
        return named >= {c.name for c in self.semantic.preview_columns()}

    def _preview_answer(self) -> SqlAnswer:
        """One row per day: every metric of the table by `metric_time__day` (the rows `POST
        /v1/query` answers for those metrics grouped by day), the coarser `metric_time` grains
        of that day alongside, the other slices null (a row per slice value would need a
        grain no metric shares), and null for a metric that cannot be computed by day with
        the query's filters. Filters on slices, ordering and limits apply as usual."""
        definition = self.semantic.definition
        day = f"{METRIC_TIME}__{Grain.DAY.value}"
        where = self.inner.args.get("where")
        filtered = {self._name(c) for c in self._columns_in(where.this, "slice")} if where is not None else set()
        filters, kept = self._split_where()
        needed = {day} | filtered
        preview = self.semantic.preview_columns()
        metric_columns = [c.name for c in preview if c.name in self.semantic.metrics]
        catalog = self.engine.catalog()
        computable = [m for m in metric_columns if needed <= _slices_of(catalog[m])]
        values: dict[str, dict[Any, Any]] = {}
        start, end, leftover = filters.bounds(self.week_start)
        if computable and not filters.never:

            def query(names: list[str]) -> None:
                metric_query = query_from_text(
                    metrics=names,
                    group_by=[day],
                    where=[*filters.structured, *leftover, *filters.templates],
                    start=start,
                    end=end,
                    order_by=[day],
                )
                result = self.engine.query(metric_query)
                for index, name in enumerate(names, start=1):
                    values[name] = {row[0]: row[index] for row in result.rows}

            try:
                query(computable)
            except errors.MetricsError:
                # One metric the others cannot be computed with: each on its own.
                for name in computable:
                    try:
                        query([name])
                    except errors.MetricsError:
                        pass
        days = sorted(set().union(*values.values()) - {None}) if values else []
        columns, rows = [], []
        for column in preview:
            columns.append(ResultColumn(column.name, self._type_of(column.name)))
        for when in days:
            moment = dt.datetime(when.year, when.month, when.day)
            row = []
            for column in preview:
                grain = _grain_of(column.name)
                if column.name in self.semantic.metrics:
                    row.append(values.get(column.name, {}).get(when))
                elif grain is not None:
                    row.append(truncate(moment, grain, self.week_start).date())
                else:
                    row.append(None)
            rows.append(tuple(row))
        missing = [m for m in metric_columns if m not in values]
        notice = (
            f"{SEMANTIC_SCHEMA}.{definition.name} has no rows of its own: this preview has one row per day "
            f"({day}) with every metric computed by day, as POST /v1/query groups them; the other slice "
            "columns are null. Select slices and metrics (the selected slices are the grain) to break "
            "metrics down."
        )
        if missing:
            notice += (
                f" Null because they cannot be computed by day{' with these filters' if filtered else ''}: "
                + ", ".join(missing)
                + "."
            )
        self.output_grain = {day}
        answer = self._relational_answer(ResultSet(tuple(columns), rows), kept, carriers=False)
        return dataclasses.replace(answer, notices=(notice,))

    def _type_of(self, name: str) -> str:
        return (
            self.catalog.metric_types.get(name)
            or self.catalog.slice_types.get(name)
            or ("date" if _grain_of(name) else "string")
        )

    def _provably_empty(self) -> bool:
        limit = self.inner.args.get("limit")
        if limit is not None and _literal(limit.expression) == (True, 0):
            return True
        where = self.inner.args.get("where")
        if where is not None:
            condition = where.this
            while isinstance(condition, exp.Paren):
                condition = condition.this
            if isinstance(condition, exp.Boolean) and not condition.this:
                return True
            if isinstance(condition, exp.EQ):
                left, right = _literal(condition.this), _literal(condition.expression)
                if left[0] and right[0] and left[1] is not None and left[1] != right[1]:
                    return True
        return False

    def _group_keys(self) -> list[exp.Expression]:
        """GROUP BY items with positions and output aliases replaced by the expressions they name."""
        inner = self.inner
        keys = []
        by_alias = {p.alias.lower(): p.this for p in inner.expressions if isinstance(p, exp.Alias)}
        for key in inner.args["group"].expressions:
            ok, value = _literal(key)
            if ok and isinstance(key, exp.Literal) and not key.is_string and isinstance(value, int):
                if not 1 <= value <= len(inner.expressions):
                    raise SqlError("42P10", f"GROUP BY position {value} is not in select list")
                projection = inner.expressions[value - 1]
                keys.append(projection.this if isinstance(projection, exp.Alias) else projection)
            elif isinstance(key, exp.Column) and id(key) not in self.kind and key.name.lower() in by_alias:
                keys.append(by_alias[key.name.lower()])
            else:
                keys.append(key)
        return keys

    def _check_reaggregation(self, aggregates: list[exp.Expression], grain: list[str], keys: set[str]) -> None:
        finer = [g for g in grain if g not in keys]
        for node in aggregates:
            metrics = self._columns_in(node, "metric")
            if not metrics:
                continue
            name = function_name(node)
            if name in _ROW_STATISTICS:
                continue
            if name == "sum" and isinstance(node.this, exp.Column) and self._name(node.this) in self.catalog.additive:
                continue
            metric = self._name(metrics[0])
            raise _unsupported(
                f"{name.upper()}({metric}) would combine {metric} across {', '.join(finer)}, which the query "
                f"does not group by; a metric such as {metric} is not additive across rows. Group by every "
                "slice the query uses, or select the metric at the grain you want."
            )

    def _carrier_metrics(self, grain: list[str], filters: _EngineFilters) -> list[str]:
        """For a query of slices only: the simple metrics that can be sliced by all of them;
        their rows together are the slice combinations that occur in the data."""
        needed = set(grain) | {f.field for f in filters.structured} | {c for c, _, _ in filters.time}
        out = []
        for name, info in self.engine.catalog().items():
            if self.engine.manifest.metrics[name].type is not MetricType.SIMPLE:
                continue
            names = (
                set(info.dimensions)
                | set(info.qualified_dimensions)
                | {f"{METRIC_TIME}__{g}" for g in info.grains}
                | ({METRIC_TIME} if info.grains else set())
            )
            if needed <= names and (self.semantic.definition.name == METRICS_TABLE or name in self.semantic.metrics):
                out.append(name)
        if not out:
            raise _unsupported(
                "no metric can be sliced by "
                + ", ".join(sorted(needed))
                + " together, so these slices have no rows in common."
            )
        # One aggregate per semantic model is enough: they all see the same rows.
        seen_models, carriers = set(), []
        for name in out:
            model = self.catalog.metric_models[name]
            if model not in seen_models:
                seen_models.add(model)
                carriers.append(name)
        return carriers

    # -- WHERE -----------------------------------------------------------------------------

    def _split_where(self) -> tuple[_EngineFilters, list[exp.Expression]]:
        """Conditions on slices only go to the engine; the rest stay for the rows."""
        filters = _EngineFilters()
        where = self.inner.args.get("where")
        if where is None:
            return filters, []
        kept = []
        # `(a AND b) AND c` is three conditions: an outer query's WHERE merged with its
        # subquery's arrives parenthesised.
        for condition in conjuncts(where.this):
            columns = self._columns_in(condition)
            has_subquery = any(isinstance(n, (exp.Subquery, exp.Select)) for n in condition.walk())
            if columns and not has_subquery and all(self.kind[id(c)] == "slice" for c in columns):
                self._push(condition, filters)
            else:
                if not columns and not has_subquery:
                    # `WHERE 1 = 0`, as tools probe for columns: no need to ask the engine.
                    ok, value = self._value(condition)
                    if ok and not value:
                        filters.never = True
                kept.append(condition)
        if kept:
            where.set("this", exp.and_(*[c.copy() for c in kept]) if len(kept) > 1 else kept[0].copy())
        else:
            self.inner.set("where", None)
        return filters, kept

    def _push(self, condition: exp.Expression, filters: _EngineFilters) -> None:
        node = condition
        while isinstance(node, exp.Paren):
            node = node.this
        negate = False
        if isinstance(node, exp.Not):
            negate, node = True, node.this
            while isinstance(node, exp.Paren):
                node = node.this
        column_name = lambda n: self._name(n) if isinstance(n, exp.Column) and id(n) in self.kind else None  # noqa: E731
        if isinstance(node, exp.Is) and column_name(node.this) and isinstance(node.expression, exp.Null):
            is_null = not node.args.get("negate") if not negate else bool(node.args.get("negate"))
            filters.add(column_name(node.this), "is_null" if is_null else "is_not_null")
            return
        if isinstance(node, exp.In) and column_name(node.this) and not node.args.get("query"):
            values = [self._value(v) for v in node.expressions]
            if all(ok for ok, _ in values):
                filters.add(column_name(node.this), "not_in" if negate else "in", values=tuple(v for _, v in values))
                return
        if isinstance(node, exp.Between) and column_name(node.this) and not negate:
            low, high = self._value(node.args["low"]), self._value(node.args["high"])
            if low[0] and high[0]:
                filters.add(column_name(node.this), ">=", low[1])
                filters.add(column_name(node.this), "<=", high[1])
                return
        op = next((o for cls, o in _COMPARISONS.items() if type(node) is cls), None)
        listed = self._array_values(node.expression) if op in ("=", "!=") else None
        if listed is not None and column_name(node.this):
            # `x = ANY(ARRAY[...])` and `x <> ALL(ARRAY[...])`, as drivers send list parameters.
            quantifier, values = listed
            if (op, quantifier) in (("=", "any"), ("!=", "all")):
                inside = op == "="
                filters.add(column_name(node.this), "in" if inside != negate else "not_in", values=tuple(values))
                return
        if op is not None:
            left, right = node.this, node.expression
            if column_name(right) and not column_name(left):
                left, right, op = right, left, _FLIPPED[op]
            ok, value = self._value(right)
            if column_name(left) and ok:
                filters.add(column_name(left), _NEGATED[op] if negate else op, value)
                return
        alternatives = self._or_of_equalities(node)
        if alternatives is not None and not negate:
            name, values = alternatives
            filters.add(name, "in", values=tuple(values))
            return
        filters.templates.append(self._template(condition))

    def _value(self, node: exp.Expression) -> tuple[bool, Any]:
        """A literal's value, or that of a constant expression (`NOW() - INTERVAL '30 days'`,
        `TO_TIMESTAMP('2026-01-01', 'YYYY-MM-DD')`, as BI tools write relative dates), evaluated
        on its own; (False, None) when it reads columns."""
        ok, value = _literal(node)
        if ok:
            return ok, value
        if any(
            isinstance(n, (exp.Column, exp.Star, exp.Subquery, exp.Select, exp.Placeholder, exp.Parameter))
            or _is_aggregate(n)
            for n in node.walk()
        ):
            return False, None
        try:
            result = query_rows(exp.select(node.copy()), {})
        except errors.InvalidQuery as exc:
            raise SqlError("22023", f"cannot evaluate {node.sql(dialect='postgres')}: {exc.message}") from exc
        if len(result.rows) != 1 or len(result.rows[0]) != 1:
            return False, None
        return True, result.rows[0][0]

    def _array_values(self, node: exp.Expression | None) -> tuple[str, list[Any]] | None:
        """('any' | 'all', values) for `ANY(ARRAY[...])` / `ALL(ARRAY[...])` of literals."""
        if isinstance(node, exp.Any):
            quantifier, inner = "any", node.this
        elif isinstance(node, exp.All):
            quantifier, inner = "all", node.this
        elif isinstance(node, exp.Anonymous) and node.name.lower() in ("any", "all") and len(node.expressions) == 1:
            quantifier, inner = node.name.lower(), node.expressions[0]
        else:
            return None
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if not isinstance(inner, exp.Array):
            return None
        values = [self._value(v) for v in inner.expressions]
        if not all(ok for ok, _ in values):
            return None
        return quantifier, [v for _, v in values]

    def _or_of_equalities(self, node: exp.Expression) -> tuple[str, list[Any]] | None:
        """`country = 'US' OR country = 'DE'` is `country IN ('US', 'DE')`."""
        if not isinstance(node, exp.Or):
            return None
        names, values = set(), []
        for part in node.flatten():
            while isinstance(part, exp.Paren):
                part = part.this
            if not isinstance(part, exp.EQ):
                return None
            left, right = part.this, part.expression
            if not isinstance(left, exp.Column):
                left, right = right, left
            ok, value = self._value(right)
            if not (isinstance(left, exp.Column) and id(left) in self.kind and ok):
                return None
            names.add(self._name(left))
            values.append(value)
        return (names.pop(), values) if len(names) == 1 else None

    def _template(self, condition: exp.Expression) -> str:
        """A dbt-style filter string for a condition the structured filters cannot hold (OR,
        NOT, LIKE, ...). Column names are checked catalog names; values stay literals of the
        tree and become bind parameters in the engine."""
        tree = self._fold_constants(condition.copy())
        for node in tree.walk():
            if (
                isinstance(node, exp.Literal)
                and node.is_string
                and any(mark in node.this for mark in ("{{", "}}", "{%", "%}", "{#", "#}"))
            ):
                raise _unsupported(
                    "a value containing '{{', '}}', '{%' or '{#' can only be compared with "
                    "=, <>, <, >, IN or NOT IN, not inside OR/NOT/LIKE conditions."
                )
        token = secrets.token_hex(8)
        references: dict[str, str] = {}
        for column in list(tree.find_all(exp.Column)):
            name = _identifier_text(column.this)
            grain = _grain_of(name)
            marker = f"nsref_{token}_{len(references)}"
            if grain is not None and name != METRIC_TIME:
                references[marker] = f"{{{{ TimeDimension('{METRIC_TIME}', '{grain.value}') }}}}"
            else:
                references[marker] = f"{{{{ Dimension('{name}') }}}}"
            column.replace(exp.column(marker))
        text = tree.sql(dialect="duckdb")
        for marker, reference in references.items():
            text = text.replace(marker, reference)
        self.template_sources[text] = condition.sql(dialect="postgres")
        return text

    def _fold_constants(self, tree: exp.Expression) -> exp.Expression:
        """The operands of comparisons that read no column (`TO_DATE('2026-01-05', 'YYYY-MM-DD')`,
        `NOW() - INTERVAL '7 days'`) as the literal values they evaluate to, so a filter
        template holds only slices and values."""
        predicates = (exp.EQ, exp.NEQ, exp.LT, exp.LTE, exp.GT, exp.GTE, exp.In, exp.Between, exp.Like, exp.ILike)
        for predicate in [n for n in tree.walk() if isinstance(n, predicates)]:
            for operand in list(predicate.iter_expressions()):
                if isinstance(operand, (exp.Literal, exp.Null, exp.Boolean, exp.Column)) or any(
                    isinstance(n, exp.Column) for n in operand.walk()
                ):
                    continue
                plain = operand
                while isinstance(plain, exp.Paren):
                    plain = plain.this
                if isinstance(plain, exp.Cast) and isinstance(plain.this, exp.Literal):
                    continue
                ok, value = self._value(operand)
                if ok:
                    operand.replace(literal_node(value))
        return tree

    # -- the direct path: the engine's answer as it is -----------------------------------

    def _direct_plan(
        self,
        grain: list[str],
        kept: list[exp.Expression],
        aggregates: list[exp.Expression],
        group_keys: list[exp.Expression],
    ):
        """When the statement is exactly one metric query (no outer query, nothing left for
        the rows), the projection, order and limit of the engine's answer: (outputs,
        order_by, limit, offset); else None."""
        inner = self.inner
        if inner is not self.statement or kept or inner.args.get("having") or inner.args.get("distinct"):
            return None
        outputs: list[tuple[str, str]] = []  # (output name, engine column)
        for projection in inner.expressions:
            node = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(node, exp.AnyValue) or (_is_aggregate(node) and function_name(node) in _METRIC_AGGS):
                node = (
                    node.this
                    if not isinstance(node, exp.Anonymous)
                    else (node.expressions[0] if node.expressions else None)
                )
            if not isinstance(node, exp.Column) or id(node) not in self.kind:
                return None
            name = self._name(node)
            if self.kind[id(node)] == "slice" and aggregates and name not in grain:
                return None
            outputs.append((pg_name(projection), name))
        if set(grain) != {e for _, e in outputs if e in grain} or not outputs:
            return None
        if group_keys and {self._name(k) for k in group_keys if isinstance(k, exp.Column)} != set(grain):
            return None
        order_by = []
        order = inner.args.get("order")
        for ordered in order.expressions if order else []:
            default_nulls = bool(ordered.args.get("desc")) == bool(ordered.args.get("nulls_first"))
            if not default_nulls:
                return None
            target = self._output_of(ordered.this, outputs)
            if target is None or target in self.semantic.completeness:
                return None  # ordered over the rows here (the engine orders by metrics only)
            order_by.append(("-" if ordered.args.get("desc") else "") + target)
        if order_by:
            # Rows that tie on the client's order come in grain order, so answers repeat.
            named = {o.lstrip("-") for o in order_by}
            order_by += [g for g in grain if g not in named]
        limit = offset = None
        if inner.args.get("limit") is not None:
            ok, limit = _literal(inner.args["limit"].expression)
            if not ok or not isinstance(limit, int) or limit < 0:
                return None
        if inner.args.get("offset") is not None:
            ok, offset = _literal(inner.args["offset"].expression)
            if not ok or not isinstance(offset, int) or offset < 0:
                return None
        engine_limit = None if limit is None else limit + (offset or 0)
        return outputs, order_by, engine_limit, offset or 0

    def _output_of(self, node: exp.Expression, outputs: list[tuple[str, str]]) -> str | None:
        ok, value = _literal(node)
        if ok and isinstance(node, exp.Literal) and not node.is_string and isinstance(value, int):
            return outputs[value - 1][1] if 1 <= value <= len(outputs) else None
        if isinstance(node, exp.Column):
            if id(node) in self.kind:
                name = self._name(node)
                return name if name in {e for _, e in outputs} else None
            alias = node.name.lower()
            return next((e for o, e in outputs if o.lower() == alias), None)
        if isinstance(node, exp.AnyValue) and isinstance(node.this, exp.Column):
            return self._output_of(node.this, outputs)
        if _is_aggregate(node):
            inner = node.this if not isinstance(node, exp.Anonymous) else (node.expressions or [None])[0]
            return self._output_of(inner, outputs) if isinstance(inner, exp.Column) else None
        return None

    def _direct_answer(self, outputs: list[tuple[str, str]], rows: ResultSet, offset: int) -> SqlAnswer:
        index = {c.name: i for i, c in enumerate(rows.columns)}
        picks = [index[e] for _, e in outputs]
        columns = tuple(SqlColumn(o, rows.columns[i].type) for (o, _), i in zip(outputs, picks))
        return SqlAnswer(columns, [tuple(row[i] for i in picks) for row in rows.rows[offset:]])

    # -- the relational path: the rest over the engine's rows ------------------------------

    def _relational_answer(self, rows: ResultSet, kept: list[exp.Expression], carriers: bool) -> SqlAnswer:
        if carriers:
            # Carrier metrics only define which slice combinations exist.
            keep = [i for i, c in enumerate(rows.columns) if c.name not in self.engine.catalog()]
            rows = ResultSet(tuple(rows.columns[i] for i in keep), [tuple(r[i] for i in keep) for r in rows.rows])
        alias = self.table.args.get("alias")
        replacement = exp.Table(this=exp.to_identifier(_ROWS, quoted=True))
        replacement.set(
            "alias",
            alias.copy()
            if alias is not None
            else exp.TableAlias(this=exp.to_identifier(_identifier_text(self.table.this), quoted=True)),
        )
        self.table.replace(replacement)
        self._check_outer_levels()
        result = query_rows(self.statement, {_ROWS: rows})
        return _sql_answer(result.columns, result.rows, _output_names(self.statement))

    def _check_outer_levels(self) -> None:
        """Walk out from the metric query: an outer aggregate may not add a metric up across
        the rows of its subquery unless it groups by the subquery's whole grain."""
        level = self.inner
        outputs = self._inner_outputs()
        while True:
            subquery = level.parent
            if not isinstance(subquery, exp.Subquery):
                return
            outer = subquery.parent_select
            if outer is None or not isinstance(subquery.parent, exp.From):
                return  # a scalar or IN subquery: its values are read, not re-aggregated
            if outer.args.get("joins") or outer.args.get("laterals"):
                raise _unsupported("a query over semantic.metrics cannot be joined with other tables.")
            outputs = self._outer_outputs(outer, outputs)
            level = outer

    def _inner_outputs(self) -> dict[str, tuple[bool, str | None, bool]]:
        """Per output column of the metric query: (derived from a metric, the additive metric
        it is exactly, is a grain column)."""
        out = {}
        for projection in self.inner.expressions:
            node = projection.this if isinstance(projection, exp.Alias) else projection
            metrics = self._columns_in(node, "metric")
            exact = None
            core = node.this if isinstance(node, (exp.AnyValue, exp.Sum, exp.Min, exp.Max, exp.Avg)) else node
            if isinstance(core, exp.Column) and id(core) in self.kind and self._name(core) in self.catalog.additive:
                exact = self._name(core)
            is_grain = isinstance(node, exp.Column) and self.kind.get(id(node)) == "slice"
            out[pg_name(projection).lower()] = (bool(metrics), exact, is_grain)
        _mark_hidden_grain(out, self.output_grain)
        return out

    def _outer_outputs(self, outer: exp.Select, child: dict[str, tuple[bool, str | None, bool]]):
        child_grain = {n for n, (_, _, g) in child.items() if g}
        aggregates = [n for n in outer.walk() if _is_aggregate(n) and own(outer, n)]
        group = outer.args.get("group")
        keys: set[str] = set()
        if group:
            by_alias = {p.alias.lower(): p.this for p in outer.expressions if isinstance(p, exp.Alias)}
            for key in group.expressions:
                ok, value = _literal(key)
                if (
                    ok
                    and isinstance(key, exp.Literal)
                    and not key.is_string
                    and isinstance(value, int)
                    and 1 <= value <= len(outer.expressions)
                ):
                    key = outer.expressions[value - 1]
                    key = key.this if isinstance(key, exp.Alias) else key
                elif isinstance(key, exp.Column) and key.name.lower() in by_alias and key.name.lower() not in child:
                    key = by_alias[key.name.lower()]
                if isinstance(key, exp.Column):
                    keys.add(key.name.lower())
        whole_grain = child_grain <= keys
        for node in aggregates:
            used = [c for c in node.find_all(exp.Column) if c.name.lower() in child and child[c.name.lower()][0]]
            if not used or whole_grain and (group or not child_grain):
                continue
            name = function_name(node)
            if name in _ROW_STATISTICS:
                continue
            if name == "measure":
                raise _unsupported("MEASURE() applies to semantic.metrics columns, not to a subquery's columns.")
            column = node.this
            if name == "sum" and isinstance(column, exp.Column) and child.get(column.name.lower(), (0, None, 0))[1]:
                continue
            metric = used[0].name
            raise _unsupported(
                f"{name.upper()}({metric}) over the subquery would combine the metric {metric} across its rows "
                f"({', '.join(sorted(child_grain - keys - {_HIDDEN})) or 'slices it does not output'}); "
                "a metric is never re-aggregated. "
                "Select the metric at the grain you want from semantic.metrics (GROUP BY those slices) instead."
            )
        out = {}
        stars = [
            p
            for p in outer.expressions
            if isinstance(p, exp.Star) or (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
        ]
        if stars:
            out.update({n: (m, e, g and not aggregates) for n, (m, e, g) in child.items()})
        for projection in outer.expressions:
            if projection in stars:
                continue
            node = projection.this if isinstance(projection, exp.Alias) else projection
            used = [
                c
                for c in ([node] if isinstance(node, exp.Column) else []) + list(node.find_all(exp.Column))
                if c.name.lower() in child
            ]
            derived = any(child[c.name.lower()][0] for c in used)
            exact = child[node.name.lower()][1] if isinstance(node, exp.Column) and node.name.lower() in child else None
            if aggregates or group:
                is_grain = isinstance(node, exp.Column) and node.name.lower() in keys
            else:
                is_grain = isinstance(node, exp.Column) and node.name.lower() in child_grain
            out[pg_name(projection).lower()] = (derived, exact, is_grain)
        if aggregates or group:
            whole_keys = group is None or len(keys) == len(group.expressions)
            _mark_hidden_grain(out, keys if whole_keys else keys | {_HIDDEN})
        else:
            _mark_hidden_grain(out, child_grain)
        return out


_HIDDEN = "\x00grain"


def _mark_hidden_grain(outputs: dict[str, tuple[bool, str | None, bool]], grain: set[str]) -> None:
    """When rows are told apart by slices that are not among the outputs (grouped by an
    unselected slice, or a slice projected away), an outer query cannot see the whole grain;
    a marker grain column that no GROUP BY can name says so."""
    if grain - {n for n, (_, _, g) in outputs.items() if g}:
        outputs[_HIDDEN] = (False, None, True)


def _inline_ctes(statement: exp.Expression) -> exp.Expression:
    """`WITH q AS (...) SELECT ... FROM q` as `SELECT ... FROM (...) AS q`, when every CTE is
    read at most once and none is recursive, so the nesting rules apply to it."""
    with_ = statement.args.get("with_")
    if not isinstance(with_, exp.With) or with_.args.get("recursive"):
        return statement
    ctes = list(with_.expressions)
    names = [cte.alias_or_name.lower() for cte in ctes]
    uses = {
        name: [t for t in statement.find_all(exp.Table) if not t.db and _identifier_text(t.this).lower() == name]
        for name in names
    }
    if any(len(tables) > 1 for tables in uses.values()):
        return statement
    statement.set("with_", None)
    # Later CTEs may read earlier ones: inline from the last to the first.
    for cte, name in reversed(list(zip(ctes, names))):
        for table in [
            t for t in statement.find_all(exp.Table) if not t.db and _identifier_text(t.this).lower() == name
        ]:
            alias = table.alias_or_name
            table.replace(exp.Subquery(this=cte.this.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        for other in ctes:
            for table in [
                t for t in other.find_all(exp.Table) if not t.db and _identifier_text(t.this).lower() == name
            ]:
                table.replace(
                    exp.Subquery(
                        this=cte.this.copy(), alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))
                    )
                )
    return statement


def _day_shift(node: exp.Expression | None) -> int | None:
    """The whole number of days of `INTERVAL '1 day'` / `INTERVAL '-1' DAY`, else None."""
    while isinstance(node, (exp.Paren, exp.Cast)):
        node = node.this
    if not isinstance(node, exp.Interval):
        return None
    unit = node.args.get("unit")
    text = node.this.name if isinstance(node.this, exp.Literal) else None
    if text is None:
        return None
    parts = text.split()
    if unit is not None:
        parts.append(unit.name)
    if len(parts) != 2 or parts[1].lower() not in ("day", "days"):
        return None
    try:
        return int(parts[0])
    except ValueError:
        return None


def _sunday_week_of(node: exp.Expression) -> exp.Column | None:
    """The day column of `trunc_week(day + 1 day) - 1 day` (casts and parentheses anywhere),
    the Sunday-start week of that day; else None."""
    node = _uncast(node)
    if isinstance(node, exp.Add) and _day_shift(node.expression) == -1:
        truncated = _uncast(node.this)
    elif isinstance(node, exp.Sub) and _day_shift(node.expression) == 1:
        truncated = _uncast(node.this)
    else:
        return None
    if not isinstance(truncated, (exp.TimestampTrunc, exp.DateTrunc)):
        return None
    unit = truncated.args.get("unit")
    if unit is None or Grain.parse(unit.name.lower()) is not Grain.WEEK:
        return None
    shifted = _uncast(truncated.this)
    if not isinstance(shifted, exp.Add) or _day_shift(shifted.expression) != 1:
        return None
    column = _uncast(shifted.this)
    if not isinstance(column, exp.Column) or _grain_of(_identifier_text(column.this)) is not Grain.DAY:
        return None
    return column


def _is_star(node: exp.Expression) -> bool:
    """`*` or `t.*`."""
    return isinstance(node, exp.Star) or (isinstance(node, exp.Column) and isinstance(node.this, exp.Star))


def _slices_of(info) -> set[str]:
    """Every slice name a metric of the engine's catalog can be grouped or filtered by."""
    return (
        set(info.dimensions)
        | set(info.qualified_dimensions)
        | {f"{METRIC_TIME}__{g}" for g in info.grains}
        | ({METRIC_TIME} if info.grains else set())
    )


def _uncast(node: exp.Expression) -> exp.Expression:
    """The column under casts and parentheses (`CAST(metric_time__month AS DATE)`): grouping
    by it is grouping by the column."""
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return node
