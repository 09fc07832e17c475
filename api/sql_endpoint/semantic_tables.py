"""The semantic schema as clients see it: its tables and columns (one per metric and slice,
built from the engine's catalog and kept per build), the answer types, and which tables a
statement reads."""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from metrics import errors
from metrics.engine import MetricsEngine
from metrics.lru import Lru
from metrics.query.request import MetricQuery
from metrics.semantic.model import Grain, MetricType
from metrics.sql.marts import (
    cte_references,
)

SEMANTIC_SCHEMA = "semantic"
MARTS_SCHEMA = "marts"
METRICS_TABLE = "metrics"
DATABASE = "northstar"
METRIC_TIME = "metric_time"
_ROWS = "__northstar_rows"
# `<metric>__complete`: whether that metric's value on the row is complete, the flag of the HTTP
# API's `completeness=columns` (metrics.query.completeness).
COMPLETE_SUFFIX = "__complete"

SUPPORTED = (
    "Supported: SELECT <slices>, <metrics> FROM semantic.metrics [WHERE <slice> =, <>, <, <=, >, >=, IN, "
    "NOT IN, BETWEEN, IS [NOT] NULL, AND/OR ...] [GROUP BY <slices>] [ORDER BY ...] [LIMIT n [OFFSET m]], "
    "metrics optionally wrapped in SUM/MIN/MAX/AVG/MEASURE, such a query nested as a subquery with outer "
    "projections, filters, ordering, limits and COUNT(*); and read-only SELECTs over marts.<table>."
)


@dataclass(frozen=True)
class SqlColumn:
    name: str
    type: str  # date, timestamp, string, integer, number, boolean


@dataclass(frozen=True)
class SqlAnswer:
    columns: tuple[SqlColumn, ...]
    rows: list[tuple]
    # What the client should know about how the rows were made (sent as NOTICE messages).
    notices: tuple[str, ...] = ()


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
    # `<metric>__complete` columns (also in `metrics`): selectable and listed in the catalog,
    # left out of `SELECT *` previews, which stay one engine query of the metrics themselves.
    completeness: frozenset[str] = frozenset()

    def preview_columns(self) -> tuple[ColumnDef, ...]:
        return tuple(c for c in self.definition.columns if c.name not in self.completeness)


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
        return [f"{SEMANTIC_SCHEMA}.{n}" for n in sorted(self.semantic)] + [
            f"{MARTS_SCHEMA}.{n}" for n in sorted(self.marts)
        ]


# A build never changes, so its catalog is computed once per build and shared by every engine
# (or restricted view of one) that serves it; the few newest builds are kept.
_catalogs: Lru[tuple[str, str], _Catalog] = Lru(4)


def _catalog(engine: MetricsEngine) -> _Catalog:
    key = (engine.build.build_id, str(engine.build.directory))
    return _catalogs.get_or_compute(key, lambda: _build_catalog(engine))


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
    metric_columns = [
        ColumnDef(name, metric_types.get(name, "number"), info.description or info.label or None)
        for name, info in catalog.items()
    ]
    complete_columns = {
        name: ColumnDef(
            name + COMPLETE_SUFFIX,
            "boolean",
            f"Whether {name} on this row is complete: its bucket lies inside the data's reach "
            "and the start/end cut, and its window (if any) has elapsed inside the data; "
            "false where the value is partial or unknown (as completeness=columns over HTTP).",
        )
        for name in catalog
        if name + COMPLETE_SUFFIX not in catalog
    }
    for column in complete_columns.values():
        metric_types[column.name] = "boolean"

    semantic: dict[str, _SemanticTable] = {}
    all_slices = frozenset(c.name for c in slice_columns)
    semantic[METRICS_TABLE] = _SemanticTable(
        TableDef(
            SEMANTIC_SCHEMA,
            METRICS_TABLE,
            "Every governed metric and every slice; the selected slices are the grain.",
            tuple(slice_columns + metric_columns + list(complete_columns.values())),
        ),
        frozenset(catalog) | {c.name for c in complete_columns.values()},
        all_slices,
        frozenset(c.name for c in complete_columns.values()),
    )

    # One table per semantic model: its metrics and the slices all of them share.
    groups: dict[str, list[str]] = {}
    metric_models = {name: frozenset(m.semantic_model for m in engine.planner.measures_of(name)) for name in catalog}
    for name in catalog:
        models = metric_models[name]
        if len(models) == 1:
            groups.setdefault(next(iter(models)), []).append(name)
    for model, names in sorted(groups.items()):
        if model in semantic or model == METRICS_TABLE:
            continue
        shared = set.intersection(
            *(
                set(catalog[n].dimensions)
                | set(catalog[n].qualified_dimensions)
                | {f"{METRIC_TIME}__{g}" for g in catalog[n].grains}
                for n in names
            )
        )
        columns = [c for c in slice_columns if c.name in shared]
        columns += [c for c in metric_columns if c.name in names]
        completeness = [complete_columns[n] for n in names if n in complete_columns]
        columns += completeness
        description = engine.manifest.semantic_models[model].relation.table
        semantic[model] = _SemanticTable(
            TableDef(
                SEMANTIC_SCHEMA,
                model,
                f"The metrics of semantic model '{model}' (dbt model {description}).",
                tuple(columns),
            ),
            frozenset(names) | {c.name for c in completeness},
            frozenset(c.name for c in columns if c.name in shared),
            frozenset(c.name for c in completeness),
        )

    marts = {
        name: TableDef(
            MARTS_SCHEMA, name, "dbt mart (read-only).", tuple(ColumnDef(c.name, c.type, None) for c in columns)
        )
        for name, (_, columns) in engine.mart_tables().items()
    }
    return _Catalog(
        semantic,
        marts,
        frozenset(slice_names),
        slice_types,
        metric_types,
        frozenset(n for n in catalog if _is_additive(engine, n)),
        metric_models,
    )


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
    return (
        len(measures) == 1
        and measures[0].agg.is_additive
        and measures[0].non_additive is None
        and (info.measure is None or info.measure.fill_nulls_with is None)
    )


def _metric_types(engine: MetricsEngine) -> dict[str, str]:
    names = engine.metric_names()
    group_by = (f"{METRIC_TIME}__day",)
    try:
        described = engine.describe(MetricQuery(tuple(names), group_by))
        return {c.name: c.type for c in described[len(group_by) :]}
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
            types.update({c.name: c.type for c in described[: len(names)]})
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
    return [t.definition for _, t in sorted(catalog.semantic.items(), key=lambda kv: kv[0] != METRICS_TABLE)] + [
        catalog.marts[n] for n in sorted(catalog.marts)
    ]


# -- routing ------------------------------------------------------------------------------


def _identifier_text(identifier: exp.Expression | None) -> str:
    if identifier is None:
        return ""
    if isinstance(identifier, exp.Identifier) and identifier.quoted:
        return identifier.this
    return identifier.name.lower()


def _table_kind(table: exp.Table, ctes: set[int]) -> str:
    """'semantic', 'marts', 'cte' or 'other' for one table reference; `ctes` holds the ids of
    the references that read a CTE in scope (`cte_references`)."""
    if not isinstance(table.this, exp.Identifier):
        return "function"
    schema = _identifier_text(table.args.get("db"))
    name = _identifier_text(table.this)
    catalog = _identifier_text(table.args.get("catalog"))
    if catalog and catalog != DATABASE:
        return "other"
    if not schema:
        if id(table) in ctes:
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
    ctes = cte_references(statement)
    return any(_table_kind(t, ctes) in ("semantic", "marts") for t in statement.find_all(exp.Table))
