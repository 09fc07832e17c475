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
import difflib
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import pydantic
from sqlglot import exp

from api.schemas.query import FilterModel, MetricQueryRequest
from metrics import errors
from metrics.engine import MetricsEngine
from metrics.execution.client import ResultColumn, ResultSet
from metrics.execution.rowset import query_rows
from metrics.policy import PolicyDenied
from metrics.query.request import MetricQuery
from metrics.semantic.model import Grain, MetricType
from metrics.sql.marts import UnknownTable, UnsupportedSql, check_functions, check_read_only, cte_names, function_name

SEMANTIC_SCHEMA = "semantic"
MARTS_SCHEMA = "marts"
METRICS_TABLE = "metrics"
DATABASE = "northstar"
METRIC_TIME = "metric_time"
_ROWS = "__northstar_rows"

SUPPORTED = (
    "Supported: SELECT <slices>, <metrics> FROM semantic.metrics [WHERE <slice> =, <>, <, <=, >, >=, IN, "
    "NOT IN, BETWEEN, IS [NOT] NULL, AND/OR ...] [GROUP BY <slices>] [ORDER BY ...] [LIMIT n [OFFSET m]], "
    "metrics optionally wrapped in SUM/MIN/MAX/AVG/MEASURE, such a query nested as a subquery with outer "
    "projections, filters, ordering, limits and COUNT(*); and read-only SELECTs over marts.<table>."
)


class SqlEndpointError(Exception):
    """A statement the endpoint refuses, as a PostgreSQL error (SQLSTATE, message, hint)."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class SqlColumn:
    name: str
    type: str  # date, timestamp, string, integer, number, boolean


@dataclass(frozen=True)
class SqlAnswer:
    columns: tuple[SqlColumn, ...]
    rows: list[tuple]


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: str
    comment: str | None


@dataclass(frozen=True)
class TableDef:
    schema: str
    name: str
    comment: str | None
    columns: tuple[ColumnDef, ...]


# -- catalog ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _SemanticTable:
    definition: TableDef
    metrics: frozenset[str]
    slices: frozenset[str]  # column names that are slices (dimensions, metric_time grains)


@dataclass(frozen=True)
class _Catalog:
    semantic: dict[str, _SemanticTable]
    marts: dict[str, TableDef]
    # Every slice name the engine accepts (short, entity-qualified, metric_time grains, entities).
    slice_names: frozenset[str]
    slice_types: dict[str, str]
    metric_types: dict[str, str]
    # Metrics whose values over disjoint rows add up to the value over their union.
    additive: frozenset[str]
    # The semantic models each metric's measures come from.
    metric_models: dict[str, frozenset[str]]

    def table_names(self) -> list[str]:
        return ([f"{SEMANTIC_SCHEMA}.{n}" for n in sorted(self.semantic)]
                + [f"{MARTS_SCHEMA}.{n}" for n in sorted(self.marts)])


# A build never changes, so its catalog is computed once per build and shared by every engine
# (or restricted view of one) that serves it; the few newest builds are kept.
_catalogs: OrderedDict[tuple[str, str], _Catalog] = OrderedDict()
_catalog_lock = threading.Lock()
_CATALOGS_KEPT = 4


def _catalog(engine: MetricsEngine) -> _Catalog:
    key = (engine.build.build_id, str(engine.build.directory))
    with _catalog_lock:
        cached = _catalogs.get(key)
        if cached is None:
            cached = _catalogs[key] = _build_catalog(engine)
            while len(_catalogs) > _CATALOGS_KEPT:
                _catalogs.popitem(last=False)
        _catalogs.move_to_end(key)
        return cached


def _build_catalog(engine: MetricsEngine) -> _Catalog:
    catalog = engine.catalog()
    dimensions = engine.dimensions()
    metric_types = _metric_types(engine)
    slice_types = _slice_types(engine, dimensions)

    slice_names: set[str] = {METRIC_TIME}
    for source in {engine.graph.source_of(m) for m in engine.manifest.measures.values()}:
        slice_names |= engine.graph.public_names(source)

    # Slice columns: short names, plus the entity-qualified dbt names of categorical slices
    # (`user__country`), and of time slices where one short name stands for several columns
    # (`created_at` of an account or of a ticket).
    slice_columns: list[ColumnDef] = []
    for d in dimensions:
        slice_columns.append(ColumnDef(d.name, slice_types.get(d.name, "string"), d.description))
    for d in dimensions:
        if len(d.qualified_names) > 1 or d.kind == "categorical":
            for qualified in d.qualified_names:
                if qualified != d.name:
                    slice_types.setdefault(qualified, slice_types.get(d.name, "string"))
                    slice_columns.append(ColumnDef(qualified, slice_types[qualified], d.description))
    # A metric named like a slice is the metric (as in queries); each column once.
    seen: set[str] = set(catalog)
    slice_columns = [c for c in slice_columns if not (c.name in seen or seen.add(c.name))]
    slice_columns.sort(key=_column_order)
    metric_columns = [ColumnDef(name, metric_types.get(name, "number"), info.description or info.label or None)
                      for name, info in catalog.items()]

    semantic: dict[str, _SemanticTable] = {}
    all_slices = frozenset(c.name for c in slice_columns)
    semantic[METRICS_TABLE] = _SemanticTable(
        TableDef(SEMANTIC_SCHEMA, METRICS_TABLE,
                 "Every governed metric and every slice; the selected slices are the grain.",
                 tuple(slice_columns + metric_columns)),
        frozenset(catalog), all_slices)

    # One table per semantic model: its metrics and the slices all of them share.
    groups: dict[str, list[str]] = {}
    metric_models = {name: frozenset(m.semantic_model for m in engine.planner.measures_of(name))
                     for name in catalog}
    for name in catalog:
        models = metric_models[name]
        if len(models) == 1:
            groups.setdefault(next(iter(models)), []).append(name)
    for model, names in sorted(groups.items()):
        if model in semantic or model == METRICS_TABLE:
            continue
        shared = set.intersection(*(set(catalog[n].dimensions) | set(catalog[n].qualified_dimensions)
                                    | {f"{METRIC_TIME}__{g}" for g in catalog[n].grains} for n in names))
        columns = [c for c in slice_columns if c.name in shared]
        columns += [c for c in metric_columns if c.name in names]
        description = engine.manifest.semantic_models[model].relation.table
        semantic[model] = _SemanticTable(
            TableDef(SEMANTIC_SCHEMA, model, f"The metrics of semantic model '{model}' (dbt model {description}).",
                     tuple(columns)),
            frozenset(names), frozenset(c.name for c in columns if c.name in shared))

    marts = {
        name: TableDef(MARTS_SCHEMA, name, "dbt mart (read-only).",
                       tuple(ColumnDef(c.name, c.type, None) for c in columns))
        for name, (_, columns) in engine.mart_tables().items()
    }
    return _Catalog(semantic, marts, frozenset(slice_names), slice_types, metric_types,
                    frozenset(n for n in catalog if _is_additive(engine, n)), metric_models)


def _column_order(column: ColumnDef) -> tuple:
    grains = [g.value for g in Grain]
    if column.name.startswith(f"{METRIC_TIME}__"):
        return (0, grains.index(column.name.split("__")[-1]) if column.name.split("__")[-1] in grains else 9, "")
    return (1, 0, column.name)


def _is_additive(engine: MetricsEngine, metric: str) -> bool:
    info = engine.manifest.metrics[metric]
    if info.type is not MetricType.SIMPLE:
        return False
    measures = engine.planner.measures_of(metric)
    return (len(measures) == 1 and measures[0].agg.is_additive and measures[0].non_additive is None
            and (info.measure is None or info.measure.fill_nulls_with is None))


def _metric_types(engine: MetricsEngine) -> dict[str, str]:
    names = engine.metric_names()
    group_by = (f"{METRIC_TIME}__day",)
    try:
        described = engine.describe(MetricQuery(tuple(names), group_by))
        return {c.name: c.type for c in described[len(group_by):]}
    except errors.MetricsError:
        out = {}
        for name in names:
            try:
                out[name] = engine.describe(MetricQuery((name,), group_by))[-1].type
            except errors.MetricsError:
                out[name] = "number"
        return out


def _slice_types(engine: MetricsEngine, dimensions) -> dict[str, str]:
    types = {d.name: "date" for d in dimensions if d.kind == "metric_time"}
    simple = [n for n, m in engine.manifest.metrics.items() if m.type is MetricType.SIMPLE]
    by_metric: dict[str, list[str]] = {}
    for d in dimensions:
        if d.kind == "metric_time":
            continue
        carrier = next((m for m in sorted(simple) if m in d.metrics), None)
        if carrier is not None:
            by_metric.setdefault(carrier, []).append(d.name)
    for metric, names in by_metric.items():
        try:
            described = engine.describe(MetricQuery((metric,), tuple(names)))
            types.update({c.name: c.type for c in described[:len(names)]})
        except errors.MetricsError:
            for name in names:
                try:
                    types[name] = engine.describe(MetricQuery((metric,), (name,)))[0].type
                except errors.MetricsError:
                    types[name] = "string"
    return types


def visible_tables(engine: MetricsEngine) -> list[TableDef]:
    """What clients can read: `semantic.metrics`, one `semantic.<semantic model>` table per
    group of metrics, and `marts.<mart>` for each dbt mart."""
    catalog = _catalog(engine)
    return ([t.definition for _, t in sorted(catalog.semantic.items(), key=lambda kv: kv[0] != METRICS_TABLE)]
            + [catalog.marts[n] for n in sorted(catalog.marts)])


# -- routing ------------------------------------------------------------------------------


def _identifier_text(identifier: exp.Expression | None) -> str:
    if identifier is None:
        return ""
    if isinstance(identifier, exp.Identifier) and identifier.quoted:
        return identifier.this
    return identifier.name.lower()


def _table_kind(table: exp.Table, ctes: set[str]) -> str:
    """'semantic', 'marts', 'cte' or 'other' for one table reference."""
    if not isinstance(table.this, exp.Identifier):
        return "function"
    schema = _identifier_text(table.args.get("db"))
    name = _identifier_text(table.this)
    catalog = _identifier_text(table.args.get("catalog"))
    if catalog and catalog != DATABASE:
        return "other"
    if not schema:
        if name.lower() in ctes:
            return "cte"
        # With `search_path` at its default, a bare `metrics` is the semantic table.
        return "semantic" if name == METRICS_TABLE else "other"
    if schema == SEMANTIC_SCHEMA:
        return "semantic"
    if schema == MARTS_SCHEMA:
        return "marts"
    return "other"


def reads_data_tables(statement: exp.Expression) -> bool:
    """Whether the statement reads `semantic.*` or `marts.*` (and so is answered here rather
    than by the catalog emulation)."""
    ctes = cte_names(statement)
    return any(_table_kind(t, ctes) in ("semantic", "marts") for t in statement.find_all(exp.Table))


# -- errors -------------------------------------------------------------------------------

_SQLSTATES: tuple[tuple[type[errors.MetricsError], str], ...] = tuple((cls, state) for cls, state in (
    # Service guardrails, where the engine has them: too many rows, too long a query.
    (getattr(errors, "ResultTooLarge", None), "54000"),
    (getattr(errors, "QueryTimeout", None), "57014"),
    (PolicyDenied, "42501"),
    (UnknownTable, "42P01"),
    (UnsupportedSql, "0A000"),
    (getattr(errors, "UnsupportedFeature", None), "0A000"),
    (errors.UnknownMetric, "42703"),
    (errors.UnknownDimension, "42703"),
    (errors.AmbiguousDimension, "42702"),
    (errors.UnknownSavedQuery, "42P01"),
    (errors.NotFound, "42P01"),
    (errors.InvalidFilter, "22023"),
    (errors.InvalidQuery, "22023"),
    (errors.UserError, "22023"),
    (errors.WarehouseUnavailable, "57P03"),
    (errors.BuildFailed, "55000"),
    (errors.InternalError, "XX000"),
    (errors.MetricsError, "XX000"),
) if cls is not None)


def _rowset_state(exc: errors.MetricsError) -> str | None:
    """The SQLSTATE of a query the answer rows could not evaluate, by the kind of failure."""
    reason = exc.details.get("reason")
    if reason == "BinderException":
        return "42803" if "GROUP BY" in exc.message else "42703" if "column" in exc.message.lower() else "42601"
    return {"CatalogException": "42883", "ConversionException": "22P02", "ParserException": "42601",
            "OutOfRangeException": "22003", "InvalidInputException": "22023"}.get(reason or "")


def _from_engine(exc: errors.MetricsError) -> SqlEndpointError:
    state = _rowset_state(exc) or next(code for cls, code in _SQLSTATES if isinstance(exc, cls))
    hint = None
    candidates = exc.details.get("candidates") or exc.details.get("suggestions")
    if isinstance(candidates, (list, tuple)) and candidates and "Did you mean" not in exc.message:
        hint = "Valid names include: " + ", ".join(str(c) for c in list(candidates)[:12]) + "."
    if state == "0A000":
        hint = SUPPORTED
    return SqlEndpointError(state, exc.message, hint)


def _unsupported(message: str) -> SqlEndpointError:
    return SqlEndpointError("0A000", message, SUPPORTED)


def _unknown_column(name: str, table: _SemanticTable) -> SqlEndpointError:
    columns = [c.name for c in table.definition.columns]
    close = difflib.get_close_matches(name, columns, n=3, cutoff=0.6) or errors.nearest(name, columns)
    if close:
        hint = "Did you mean " + ", ".join(f'"{c}"' for c in close) + "?"
    else:
        metrics = sorted(table.metrics)
        hint = (f"Metrics: {', '.join(metrics[:12])}{', ...' if len(metrics) > 12 else ''}; slices such as "
                f"metric_time__week and {', '.join(sorted(n for n in table.slices if '__' not in n)[:8])}.")
    return SqlEndpointError("42703", f'column "{name}" does not exist in '
                                     f'{SEMANTIC_SCHEMA}.{table.definition.name}', hint)


# -- answering ----------------------------------------------------------------------------


def answer(statement: exp.Expression, engine: MetricsEngine) -> SqlAnswer:
    """Answer one SELECT (parsed from PostgreSQL, parameters bound as literals).

    Raises:
        SqlEndpointError: with the SQLSTATE of the problem (42703 unknown column, 42P01
            unknown table, 0A000 unsupported SQL, 22023 bad value, ...).
    """
    try:
        return _answer(statement, engine)
    except SqlEndpointError:
        raise
    except errors.MetricsError as exc:
        raise _from_engine(exc) from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors())
        raise SqlEndpointError("22023", f"invalid query: {problems}") from exc


def _answer(statement: exp.Expression, engine: MetricsEngine) -> SqlAnswer:
    check_read_only(statement)
    catalog = _catalog(engine)
    ctes = cte_names(statement)
    kinds: dict[str, list[exp.Table]] = {}
    for table in statement.find_all(exp.Table):
        kinds.setdefault(_table_kind(table, ctes), []).append(table)
    if "function" in kinds:
        raise _unsupported("table functions are not supported; read semantic.metrics or marts.<table>.")
    for table in kinds.get("other", []):
        raise SqlEndpointError("42P01", f'relation "{table.sql(dialect="postgres")}" does not exist',
                               "Tables: " + ", ".join(catalog.table_names()) + ".")
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
    if not isinstance(top, exp.Select) or any(isinstance(p, exp.Star) or
                                              (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))
                                              for p in top.expressions):
        return None
    return [_pg_name(p) for p in top.expressions]


_METRIC_AGGS = {"sum", "min", "max", "avg", "measure", "any_value", "arbitrary", "first", "last"}
# Aggregates whose value over rows that each hold one metric value is still meaningful
# (how many rows, the smallest, the largest); SUM is added for additive metrics.
_ROW_STATISTICS = {"count", "min", "max", "any_value", "arbitrary", "first", "last"}


def _is_aggregate(node: exp.Expression) -> bool:
    return isinstance(node, exp.AggFunc) or (isinstance(node, exp.Anonymous) and node.name.lower() == "measure")


def _own(select: exp.Select, node: exp.Expression) -> bool:
    """Whether `node` belongs to `select` itself rather than to a nested query."""
    return node.find_ancestor(exp.Select) is select


def _literal(node: exp.Expression) -> tuple[bool, Any]:
    """A literal's Python value: (True, value), or (False, None) when it is not a literal."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Null):
        return True, None
    if isinstance(node, exp.Boolean):
        return True, bool(node.this)
    if isinstance(node, exp.Literal):
        if node.is_string:
            return True, node.this
        text = node.this
        try:
            return True, int(text)
        except ValueError:
            return True, float(text)
    if isinstance(node, exp.Neg):
        ok, value = _literal(node.this)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, -value
        return False, None
    if isinstance(node, exp.Cast):
        ok, value = _literal(node.this)
        if not ok or value is None:
            return ok, value
        kind = node.to.this
        text = str(value)
        try:
            if kind == exp.DataType.Type.DATE:
                return True, dt.date.fromisoformat(text.strip()[:10]) if len(text.strip()) > 10 and \
                    text.strip()[10] in " T" else dt.date.fromisoformat(text.strip())
            if kind in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.TIMESTAMPTZ,
                        exp.DataType.Type.TIMESTAMPNTZ, exp.DataType.Type.DATETIME):
                parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
                if parsed.tzinfo is not None:
                    parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
                return True, parsed
        except ValueError:
            raise SqlEndpointError("22007", f"invalid input syntax for type {kind.value.lower()}: \"{text}\"") from None
        if kind in exp.DataType.TEXT_TYPES:
            return True, text
        if kind in exp.DataType.INTEGER_TYPES:
            try:
                return True, int(text)
            except ValueError:
                raise SqlEndpointError("22P02", f'invalid input syntax for type integer: "{text}"') from None
        if kind in exp.DataType.REAL_TYPES:
            try:
                return True, float(text)
            except ValueError:
                raise SqlEndpointError("22P02", f'invalid input syntax for type numeric: "{text}"') from None
        if kind == exp.DataType.Type.BOOLEAN and isinstance(value, (bool, str)):
            return True, value if isinstance(value, bool) else text.strip().lower() in ("t", "true", "1", "yes", "on")
        return False, None
    return False, None


def _grain_of(name: str) -> Grain | None:
    """`metric_time__week` -> WEEK; `metric_time` -> DAY (its finest grain); else None."""
    if name == METRIC_TIME:
        return Grain.DAY
    if name.startswith(f"{METRIC_TIME}__"):
        return Grain.parse(name.split("__", 1)[1])
    return None


def _as_datetime(value: Any, column: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SqlEndpointError("22007", f'invalid input syntax for type date: "{value}"',
                                   f"Compare {column} with a date such as '2026-01-05'.") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return parsed
    raise SqlEndpointError("42883", f"cannot compare {column} (a date) with {value!r}",
                           f"Compare {column} with a date such as '2026-01-05'.")


def _floor(value: dt.datetime, grain: Grain) -> dt.datetime:
    day = dt.datetime(value.year, value.month, value.day)
    if grain is Grain.DAY:
        return day
    if grain is Grain.WEEK:
        return day - dt.timedelta(days=day.weekday())
    if grain is Grain.MONTH:
        return day.replace(day=1)
    if grain is Grain.QUARTER:
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _next(bucket: dt.datetime, grain: Grain) -> dt.datetime:
    if grain is Grain.DAY:
        return bucket + dt.timedelta(days=1)
    if grain is Grain.WEEK:
        return bucket + dt.timedelta(days=7)
    months = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}[grain]
    month = bucket.month - 1 + months
    return bucket.replace(year=bucket.year + month // 12, month=month % 12 + 1)


def _ceil(value: dt.datetime, grain: Grain) -> dt.datetime:
    floor = _floor(value, grain)
    return floor if floor == value else _next(floor, grain)


def _time_range(op: str, value: dt.datetime, grain: Grain) -> tuple[dt.datetime | None, dt.datetime | None] | None:
    """The half-open range of raw metric time whose `grain` buckets satisfy `bucket op value`
    (bucket starts compared with `value`), or None when it is not a single range.

    >>> _time_range(">=", dt.datetime(2026, 1, 7), Grain.WEEK)
    (datetime.datetime(2026, 1, 12, 0, 0), None)
    >>> _time_range("<=", dt.datetime(2026, 1, 7), Grain.WEEK)
    (None, datetime.datetime(2026, 1, 12, 0, 0))
    """
    if op == ">=":
        return _ceil(value, grain), None
    if op == ">":
        return _next(_floor(value, grain), grain), None
    if op == "<":
        return None, _ceil(value, grain)
    if op == "<=":
        return None, _next(_floor(value, grain), grain)
    if op == "=" and _floor(value, grain) == value:
        return value, _next(value, grain)
    return None


_COMPARISONS = {exp.EQ: "=", exp.NEQ: "!=", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">="}
_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


@dataclass
class _EngineFilters:
    """What the WHERE clause gives the engine: structured filters, dbt-style filter strings
    (built from the tree, with checked names), and a metric-time range."""

    structured: list[FilterModel] = dataclasses.field(default_factory=list)
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
            self.structured.append(FilterModel(field=column, op=op, values=[_json_value(v) for v in kept]))
        elif op in ("is_null", "is_not_null"):
            self.structured.append(FilterModel(field=column, op=op))
        else:
            if value is None:
                self.never = True  # a comparison with NULL is never true
                return
            if grain is not None:
                value = _as_datetime(value, column)
            self.structured.append(FilterModel(field=column, op=op, value=_json_value(value)))

    def bounds(self) -> tuple[dt.datetime | None, dt.datetime | None, list[FilterModel]]:
        """`start`/`end` from the metric-time comparisons; those that do not map to a range
        (an `=` on a date that starts no bucket) stay bucket filters."""
        start: dt.datetime | None = None
        end: dt.datetime | None = None
        leftover: list[FilterModel] = []
        for column, op, value in self.time:
            if value is None:
                self.never = True
                continue
            when = _as_datetime(value, column)
            grain = _grain_of(column)
            span = _time_range(op, when, grain)
            if span is None:
                leftover.append(FilterModel(field=column, op=op, value=_json_value(value)))
                continue
            low, high = span
            if low is not None:
                start = low if start is None else max(start, low)
            if high is not None:
                end = high if end is None else min(end, high)
        if start is not None and end is not None and start >= end:
            # An empty range: keep every comparison as a bucket filter, which selects nothing.
            return None, None, leftover + [FilterModel(field=c, op=o, value=_json_value(v))
                                           for c, o, v in self.time if v is not None]
        return start, end, leftover


class _SemanticQuery:
    """One statement whose innermost query reads a semantic table."""

    def __init__(self, statement: exp.Expression, engine: MetricsEngine, catalog: _Catalog,
                 tables: list[exp.Table]) -> None:
        if len(tables) > 1:
            raise _unsupported("a query can read one semantic table once: joins, unions and self-joins of "
                               "semantic tables are not supported.")
        self.engine = engine
        self.catalog = catalog
        self.statement = _inline_ctes(statement.copy())
        self.table = next(t for t in self.statement.find_all(exp.Table)
                          if _table_kind(t, cte_names(self.statement)) == "semantic")
        name = _identifier_text(self.table.this)
        semantic = catalog.semantic.get(name)
        if semantic is None:
            raise SqlEndpointError("42P01", f'relation "{self.table.sql(dialect="postgres")}" does not exist',
                                   "Tables: " + ", ".join(catalog.table_names()) + ".")
        self.semantic = semantic
        self._check_shape()

    # -- shape checks ------------------------------------------------------------------

    def _check_shape(self) -> None:
        for node in self.statement.walk():
            if isinstance(node, exp.SetOperation):
                raise _unsupported(f"{node.key.upper()} is not supported over semantic tables; "
                                   "send one query per metric set.")
            if isinstance(node, exp.Window):
                raise _unsupported("window functions are not supported over semantic tables: a metric is "
                                   "computed at the grain of the selected slices; select a coarser grain instead.")
            if isinstance(node, exp.CTE):
                raise _unsupported("WITH is not supported over semantic tables; nest the query as a subquery.")
        parent = self.table.parent
        inner = parent.parent if isinstance(parent, exp.From) else None
        if not isinstance(inner, exp.Select):
            raise _unsupported("semantic tables can only be read in the FROM clause of a SELECT; "
                               "joins with other tables are not supported.")
        if inner.args.get("joins") or inner.args.get("laterals"):
            raise _unsupported("semantic.metrics cannot be joined with other tables: it already holds every "
                               "metric by every slice; select the slices you need instead of joining.")
        for arg in ("qualify", "connect", "prewhere", "match", "sample", "pivots"):
            if inner.args.get(arg):
                raise _unsupported(f"{arg.upper()} is not supported over semantic tables.")
        if self.table.args.get("pivots") or self.table.args.get("sample") or self.table.args.get("joins"):
            raise _unsupported("semantic.metrics cannot be sampled, pivoted or joined.")
        self.inner = inner
        check_functions(self.statement)

    # -- column resolution ---------------------------------------------------------------

    def _name(self, column: exp.Column) -> str:
        return _identifier_text(column.this)

    def _classify(self) -> None:
        """Sort the inner query's column references into metrics, slices and output aliases."""
        inner = self.inner
        aliases = {_identifier_text(p.args.get("alias")) if isinstance(p.args.get("alias"), exp.Identifier)
                   else p.alias.lower() for p in inner.expressions if isinstance(p, exp.Alias)}
        self.metrics: list[str] = []
        self.kind: dict[int, str] = {}
        table_names = {_identifier_text(self.table.this)}
        if self.table.alias:
            table_names = {_identifier_text(self.table.args["alias"].this)}
        for column in list(inner.find_all(exp.Column)):
            if not _own(inner, column):
                continue
            if isinstance(column.this, exp.Star):
                raise self._star_error()
            name = self._name(column)
            qualifier = _identifier_text(column.args.get("table"))
            if qualifier and qualifier not in table_names:
                raise SqlEndpointError("42P01", f'missing FROM-clause entry for table "{qualifier}"')
            in_output_clause = column.find_ancestor(exp.Order, exp.Group, exp.Having) is not None
            if name in self.semantic.metrics:
                kind = "metric"
                if name not in self.metrics:
                    self.metrics.append(name)
            elif name in self.semantic.slices or (self.semantic.definition.name == METRICS_TABLE
                                                  and name in self.catalog.slice_names):
                kind = "slice"
            elif in_output_clause and name in aliases and not qualifier:
                kind = "alias"
                continue
            elif name in self.catalog.metric_types and self.semantic.definition.name != METRICS_TABLE:
                raise SqlEndpointError("42703", f'column "{name}" does not exist in '
                                                f"{SEMANTIC_SCHEMA}.{self.semantic.definition.name}",
                                       f"It is in {SEMANTIC_SCHEMA}.{METRICS_TABLE}.")
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

    def _star_error(self) -> SqlEndpointError:
        return _unsupported("SELECT * over semantic.metrics is not supported: name the slices and metrics "
                            "to select (the selected slices are the grain), e.g. SELECT metric_time__week, "
                            "active_users FROM semantic.metrics.")

    def _columns_in(self, node: exp.Expression, kind: str | None = None) -> list[exp.Column]:
        found = [node] if isinstance(node, exp.Column) else []
        found += [c for c in node.find_all(exp.Column) if c is not node]
        return [c for c in found if id(c) in self.kind and (kind is None or self.kind[id(c)] == kind)]

    # -- time truncation -----------------------------------------------------------------

    def _fold_date_trunc(self) -> None:
        """`date_trunc('month', metric_time__day)` is the `metric_time__month` slice."""
        def fold(node: exp.Expression) -> exp.Expression:
            if isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)) and _own(self.inner, node):
                column = node.this
                unit = node.args.get("unit")
                unit_name = (unit.name if unit is not None else "").lower()
                grain = Grain.parse(unit_name)
                if (isinstance(column, exp.Column) and grain is not None
                        and _grain_of(_identifier_text(column.this)) is not None
                        and grain.rank >= _grain_of(_identifier_text(column.this)).rank):
                    return exp.Column(this=exp.to_identifier(f"{METRIC_TIME}__{grain.value}"),
                                      table=column.args.get("table"))
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
            references = [c for c in outer.find_all(exp.Column) if _own(outer, c)
                          and (not c.table or c.table == alias) and not isinstance(c.this, exp.Star)]
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
            outputs[projection.alias_or_name if isinstance(projection, exp.Alias) else
                    _identifier_text(node.this)] = node
        where = inner.args.get("where")
        if where is not None and any(not self._is_slice_name(_identifier_text(c.this))
                                     for c in where.find_all(exp.Column)):
            return None
        return outputs

    def _is_slice_name(self, name: str) -> bool:
        return name not in self.catalog.metric_types and (
            name in self.semantic.slices or name in self.catalog.slice_names)

    def _outer_recomputes(self, outer: exp.Select, references: list[exp.Column],
                          outputs: dict[str, exp.Expression]) -> bool:
        """Whether an outer query over plain rows only asks for metrics at its own grain:
        grouped, every aggregate a SUM/MEASURE of one metric, everything else slices."""
        aggregates = [n for n in outer.walk() if _is_aggregate(n) and _own(outer, n)]
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
                    column.find_ancestor(exp.AggFunc, exp.Anonymous) is a for a in aggregates):
                continue
            target = outputs.get(_identifier_text(column.this))
            if target is not None and not self._is_slice_name(_identifier_text(target.this)):
                return False
        return True

    def answer(self) -> SqlAnswer:
        self._merge_outward()
        self._fold_date_trunc()
        self._classify()
        inner = self.inner
        projections = inner.expressions
        if any(isinstance(p, exp.Star) for p in projections):
            if self._provably_empty():
                columns = self.semantic.definition.columns
                return SqlAnswer(tuple(SqlColumn(c.name, c.type) for c in columns), [])
            raise self._star_error()

        aggregates = [n for n in inner.walk() if _is_aggregate(n) and _own(inner, n)]
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
            plain_keys = {self._name(_uncast(k)) for k in group_keys
                          if isinstance(_uncast(k), exp.Column) and self.kind.get(id(_uncast(k))) == "slice"}
            finer = any(name not in plain_keys for name in grain)
            for projection in projections + ([inner.args["having"]] if inner.args.get("having") else []):
                for column in self._columns_in(projection):
                    outside = column.find_ancestor(exp.AggFunc, exp.Anonymous)
                    outside = outside is None or not _is_aggregate(outside) or not _own(inner, outside)
                    if not outside:
                        continue
                    name = self._name(column)
                    if self.kind[id(column)] == "slice" and name not in plain_keys and name not in grain:
                        raise SqlEndpointError(
                            "42803", f'column "{name}" must appear in the GROUP BY clause or be used in an '
                                     "aggregate function")
                    if self.kind[id(column)] == "metric":
                        if finer:
                            raise SqlEndpointError(
                                "42803", f'metric "{name}" must be used in an aggregate function, or the '
                                         "query grouped by every slice it uses")
                        # One row per group: the metric at that grain.
                        wrapped = exp.AnyValue(this=self._copy(column))
                        column.replace(exp.alias_(wrapped, name) if column.parent is inner else wrapped)
            self.output_grain = plain_keys if len(plain_keys) == len(group_keys) else plain_keys | {_HIDDEN}
            if finer:
                self._check_reaggregation(aggregates, grain, plain_keys)
            for node in aggregates:
                if isinstance(node, exp.Anonymous) and node.name.lower() == "measure":
                    if len(node.expressions) != 1:
                        raise SqlEndpointError("42883", "MEASURE() takes one metric column")
                    wrapped = exp.AnyValue(this=self._copy(node.expressions[0]))
                    node.replace(exp.alias_(wrapped, "measure") if node.parent is inner else wrapped)
        else:
            for projection in projections:
                for column in self._columns_in(projection, "slice"):
                    add(self._name(column))
            self.output_grain = set(grain)
            order = inner.args.get("order")
            for ordered in (order.expressions if order else []):
                for column in self._columns_in(ordered, "slice"):
                    if self._name(column) not in grain:
                        raise SqlEndpointError(
                            "42803", f'ORDER BY "{self._name(column)}": order by a selected slice '
                                     "(the selected slices are the grain)")
        for condition in kept:
            for column in self._columns_in(condition, "slice"):
                if self._name(column) not in grain:
                    raise _unsupported(
                        f'a condition combining metrics with the slice "{self._name(column)}" needs that '
                        "slice selected (slices that are not selected can only be compared with values).")

        if inner is not self.statement:
            # An outer query reads these columns by PostgreSQL's names (`sum`, `count`).
            for projection in list(inner.expressions):
                if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                    projection.replace(exp.alias_(projection.copy(), _pg_name(projection)))
        metrics = list(self.metrics)
        carriers = False
        if not metrics and grain:
            metrics, carriers = self._carrier_metrics(grain, filters), True
        direct = None if carriers else self._direct_plan(grain, kept, aggregates, group_keys)
        if metrics:
            start, end, leftover = filters.bounds()
            if filters.never:
                rows = ResultSet(tuple(ResultColumn(n, self._type_of(n)) for n in grain + metrics), [])
            else:
                request = MetricQueryRequest(
                    metrics=metrics, group_by=grain,
                    where=[*filters.structured, *leftover, *filters.templates],
                    start=start.isoformat() if start else None, end=end.isoformat() if end else None,
                    order_by=direct[1] if direct else [], limit=direct[2] if direct else None)
                result = self.engine.query(request.to_query())
                rows = ResultSet(result.columns, result.rows)
        else:
            # No metric and no slice (`SELECT COUNT(*) FROM semantic.metrics`): the table at
            # the coarsest grain, one row.
            rows = ResultSet((ResultColumn("__row", "integer"),), [] if filters.never else [(1,)])
        if direct is not None:
            return self._direct_answer(direct[0], rows, direct[3])
        return self._relational_answer(rows, kept, carriers)

    def _type_of(self, name: str) -> str:
        return self.catalog.metric_types.get(name) or self.catalog.slice_types.get(name) or (
            "date" if _grain_of(name) else "string")

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
                    raise SqlEndpointError("42P10", f"GROUP BY position {value} is not in select list")
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
            if (name == "sum" and isinstance(node.this, exp.Column)
                    and self._name(node.this) in self.catalog.additive):
                continue
            metric = self._name(metrics[0])
            raise _unsupported(
                f"{name.upper()}({metric}) would combine {metric} across {', '.join(finer)}, which the query "
                f"does not group by; a metric such as {metric} is not additive across rows. Group by every "
                "slice the query uses, or select the metric at the grain you want.")

    def _carrier_metrics(self, grain: list[str], filters: _EngineFilters) -> list[str]:
        """For a query of slices only: the simple metrics that can be sliced by all of them;
        their rows together are the slice combinations that occur in the data."""
        needed = set(grain) | {f.field for f in filters.structured} | {c for c, _, _ in filters.time}
        out = []
        for name, info in self.engine.catalog().items():
            if self.engine.manifest.metrics[name].type is not MetricType.SIMPLE:
                continue
            names = set(info.dimensions) | set(info.qualified_dimensions) | {
                f"{METRIC_TIME}__{g}" for g in info.grains} | ({METRIC_TIME} if info.grains else set())
            if needed <= names and (self.semantic.definition.name == METRICS_TABLE or name in self.semantic.metrics):
                out.append(name)
        if not out:
            raise _unsupported("no metric can be sliced by " + ", ".join(sorted(needed)) +
                               " together, so these slices have no rows in common.")
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
        for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
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
        if any(isinstance(n, (exp.Column, exp.Star, exp.Subquery, exp.Select, exp.Placeholder, exp.Parameter))
               or _is_aggregate(n) for n in node.walk()):
            return False, None
        try:
            result = query_rows(exp.select(node.copy()), {})
        except errors.InvalidQuery as exc:
            raise SqlEndpointError("22023", f"cannot evaluate {node.sql(dialect='postgres')}: {exc.message}") from exc
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
        tree = condition.copy()
        for node in tree.walk():
            if isinstance(node, exp.Literal) and node.is_string and any(
                    mark in node.this for mark in ("{{", "}}", "{%", "%}", "{#", "#}")):
                raise _unsupported("a value containing '{{', '}}', '{%' or '{#' can only be compared with "
                                   "=, <>, <, >, IN or NOT IN, not inside OR/NOT/LIKE conditions.")
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
        return text

    # -- the direct path: the engine's answer as it is -----------------------------------

    def _direct_plan(self, grain: list[str], kept: list[exp.Expression], aggregates: list[exp.Expression],
                     group_keys: list[exp.Expression]):
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
                node = node.this if not isinstance(node, exp.Anonymous) else (
                    node.expressions[0] if node.expressions else None)
            if not isinstance(node, exp.Column) or id(node) not in self.kind:
                return None
            name = self._name(node)
            if self.kind[id(node)] == "slice" and aggregates and name not in grain:
                return None
            outputs.append((_pg_name(projection), name))
        if set(grain) != {e for _, e in outputs if e in grain} or not outputs:
            return None
        if group_keys and {self._name(k) for k in group_keys if isinstance(k, exp.Column)} != set(grain):
            return None
        order_by = []
        order = inner.args.get("order")
        for ordered in (order.expressions if order else []):
            default_nulls = bool(ordered.args.get("desc")) == bool(ordered.args.get("nulls_first"))
            if not default_nulls:
                return None
            target = self._output_of(ordered.this, outputs)
            if target is None:
                return None
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
        replacement.set("alias", alias.copy() if alias is not None
                        else exp.TableAlias(this=exp.to_identifier(_identifier_text(self.table.this), quoted=True)))
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
            out[_pg_name(projection).lower()] = (bool(metrics), exact, is_grain)
        _mark_hidden_grain(out, self.output_grain)
        return out

    def _outer_outputs(self, outer: exp.Select, child: dict[str, tuple[bool, str | None, bool]]):
        child_grain = {n for n, (_, _, g) in child.items() if g}
        aggregates = [n for n in outer.walk() if _is_aggregate(n) and _own(outer, n)]
        group = outer.args.get("group")
        keys: set[str] = set()
        if group:
            by_alias = {p.alias.lower(): p.this for p in outer.expressions if isinstance(p, exp.Alias)}
            for key in group.expressions:
                ok, value = _literal(key)
                if ok and isinstance(key, exp.Literal) and not key.is_string and isinstance(value, int) \
                        and 1 <= value <= len(outer.expressions):
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
                "Select the metric at the grain you want from semantic.metrics (GROUP BY those slices) instead.")
        out = {}
        stars = [p for p in outer.expressions if isinstance(p, exp.Star) or
                 (isinstance(p, exp.Column) and isinstance(p.this, exp.Star))]
        if stars:
            out.update({n: (m, e, g and not aggregates) for n, (m, e, g) in child.items()})
        for projection in outer.expressions:
            if projection in stars:
                continue
            node = projection.this if isinstance(projection, exp.Alias) else projection
            used = [c for c in ([node] if isinstance(node, exp.Column) else []) + list(node.find_all(exp.Column))
                    if c.name.lower() in child]
            derived = any(child[c.name.lower()][0] for c in used)
            exact = child[node.name.lower()][1] if isinstance(node, exp.Column) and node.name.lower() in child else None
            if aggregates or group:
                is_grain = isinstance(node, exp.Column) and node.name.lower() in keys
            else:
                is_grain = isinstance(node, exp.Column) and node.name.lower() in child_grain
            out[_pg_name(projection).lower()] = (derived, exact, is_grain)
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
    uses = {name: [t for t in statement.find_all(exp.Table)
                   if not t.db and _identifier_text(t.this).lower() == name] for name in names}
    if any(len(tables) > 1 for tables in uses.values()):
        return statement
    statement.set("with_", None)
    # Later CTEs may read earlier ones: inline from the last to the first.
    for cte, name in reversed(list(zip(ctes, names))):
        for table in [t for t in statement.find_all(exp.Table)
                      if not t.db and _identifier_text(t.this).lower() == name]:
            alias = table.alias_or_name
            table.replace(exp.Subquery(this=cte.this.copy(), alias=exp.TableAlias(this=exp.to_identifier(alias))))
        for other in ctes:
            for table in [t for t in other.find_all(exp.Table)
                          if not t.db and _identifier_text(t.this).lower() == name]:
                table.replace(exp.Subquery(this=cte.this.copy(),
                                           alias=exp.TableAlias(this=exp.to_identifier(table.alias_or_name))))
    return statement


def _uncast(node: exp.Expression) -> exp.Expression:
    """The column under casts and parentheses (`CAST(metric_time__month AS DATE)`): grouping
    by it is grouping by the column."""
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return node


def _pg_name(projection: exp.Expression) -> str:
    if isinstance(projection, exp.Alias):
        return projection.alias
    node = projection
    while isinstance(node, (exp.Cast, exp.Paren)):
        if isinstance(node, exp.Cast) and not isinstance(node.this, (exp.Column, exp.Cast, exp.Paren)):
            return node.to.sql(dialect="postgres").lower()
        node = node.this
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.AnyValue):
        return _pg_name(node.this) if isinstance(node.this, exp.Column) else "any_value"
    if isinstance(node, exp.Func):
        return function_name(node)
    return "?column?"
