"""Rollups: saved queries the build materializes into its warehouse with the engine's SQL.

Declared the dbt way: a saved query's `exports` with `export_as: table` (dbt's spec; `schema`
and `alias` name the table, defaulting to the `rollups` schema and the export's name), or
`config.meta.rollup: true` to keep one only for serving (table `rollups.<saved query name>`).
The table holds the saved query's answer, computed by the same plan and renderer as
`/v1/query`, so it cannot drift from the metric definitions.

Table layout (every engine's build writes it with `metrics.sql.rollups.stored`; build.json
records `"layout": 2` for it):

- one row per group of the saved query's group-by items where any of its metrics has data;
- the group-by items, named as in the saved query (`metric_time__day`, `event__platform`);
- the metrics, named as the metrics: the saved query's answer as `/v1/query` gives it;
- hidden parts, for each plain aggregate of the plan (one semantic model with one set of
  metric filters; not cumulative, time-offset, conversion or semi-additive): `__rows__<key>`,
  the number of the model's rows in the group (null where it has none), and
  `__<measure>__<key>`, each measure's aggregate there. `<key>` is a hash of the semantic
  model, its time dimension and the metric's own filters (`metrics.sql.rollups.node_key`).

From the parts, a query is answered by re-aggregating sums, counts, minima and maxima to a
coarser grain or fewer slices, and ratios and derived metrics are recomputed from their
re-aggregated parts; distinct counts and averages only one stored row per answered row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metrics.errors import MetricsError
from metrics.query.plan import AggregateNode, DerivedExpr, MeasureRef, QueryPlan, RatioExpr
from metrics.query.request import MetricQuery, WeekStart
from metrics.semantic.graph import GroupByItem, ItemKind
from metrics.semantic.model import Agg, Grain
from metrics.sql.filters import parse_filter_template
from metrics.sql.rollups import (REAGGREGATE, NodeReading, StoredColumn, aligned, component_column, decomposable,
                                 node_key, rows_column)

DEFAULT_SCHEMA = "rollups"


@dataclass(frozen=True)
class Rollup:
    saved_query: str
    schema: str
    table: str
    exported: bool  # under a public name (an export), or for serving only (meta.rollup)


def declared_rollups(semantic_manifest: dict[str, Any], manifest: dict[str, Any] | None = None) -> list[Rollup]:
    """Every rollup the project declares: its saved queries' table exports (from the semantic
    manifest) and those with `config.meta.rollup: true` (from dbt's manifest, which keeps
    the config)."""
    rollups: list[Rollup] = []
    seen: set[tuple[str, str]] = set()

    def add(rollup: Rollup) -> None:
        key = (rollup.schema, rollup.table)
        if key in seen:
            raise ValueError(f"two rollups write {rollup.schema}.{rollup.table}; give one another alias.")
        seen.add(key)
        rollups.append(rollup)

    for saved in semantic_manifest.get("saved_queries") or []:
        for export in saved.get("exports") or []:
            config = export.get("config") or {}
            if str(config.get("export_as", "")).lower() != "table":
                continue
            add(Rollup(saved["name"], config.get("schema_name") or config.get("schema") or DEFAULT_SCHEMA,
                       config.get("alias") or export["name"], True))
    exported = {r.saved_query for r in rollups}
    for node in ((manifest or {}).get("saved_queries") or {}).values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if meta.get("rollup") is True and node["name"] not in exported:
            add(Rollup(node["name"], DEFAULT_SCHEMA, node["name"], False))
    return rollups


LAYOUT = 2  # build.json's `layout` of tables that store their parts (see the module's docstring)


@dataclass(frozen=True)
class Route:
    """Which rollup answers a query (`table`, schema-qualified) and how (`readings`: per
    aggregate of the plan, None when the stored answer is read as is), or why none can."""

    table: str | None
    reasons: dict[str, str]
    readings: dict[str, NodeReading] | None = None

    def explain(self) -> dict[str, Any]:
        if self.table is not None:
            read = "as stored" if self.readings is None else "re-aggregated from its parts"
            return {"answered_by": self.table, "read": read,
                    **({"why_not": self.reasons} if self.reasons else {})}
        return {"answered_by": None, "why_not": self.reasons or {"": "the build has no rollups"}}


class _NotFrom(Exception):
    """Why one rollup cannot answer a query (the first failing condition)."""


@dataclass(frozen=True)
class _Stored:
    name: str
    table: str
    rows: int
    saved: Any
    layout: int
    parts: dict[str, dict[str, str]]  # node key -> measure name (or "" for its rows) -> column
    items: dict[Any, tuple[tuple[GroupByItem, str], ...]]  # source -> (item, column) of its group-by
    columns: tuple[str, ...]  # the group-by columns


def _same_place(a: GroupByItem, b: GroupByItem) -> bool:
    return (a.kind, a.model, a.expr, a.path) == (b.kind, b.model, b.expr, b.path)


def _makes(stored: Grain, wanted: Grain, week_start: WeekStart) -> bool:
    """Whether buckets of `wanted` are unions of stored buckets (weeks straddle months)."""
    if stored is Grain.WEEK:
        return wanted is Grain.WEEK and week_start is WeekStart.MONDAY
    if stored is Grain.DAY:
        return True
    order = (Grain.MONTH, Grain.QUARTER, Grain.YEAR)
    return wanted in order and order.index(wanted) >= order.index(stored)


class RollupRouter:
    """Answers a query from a rollup of the served build only when that is exact.

    As stored: the query is the rollup's saved query up to order (same metrics, group-by and
    filters, UTC buckets, ISO weeks, no time range). Re-aggregated from its parts: every
    aggregate the query needs is stored (its metrics are among the rollup's, or read the same
    measures), each group-by item and filter field is a rollup column (a time one at a grain
    the stored one makes: days make every grain and Sunday weeks, months make quarters and
    years), the rollup's own filters are among the query's, a time range starts and ends on
    stored bucket boundaries, no time zone is asked for, and a distinct count (or average)
    is read only at the rollup's own grain and slices. A row policy's filters are filters
    like any other: answered from a rollup only if it has the policy's column. The smallest
    rollup that can answer does.
    """

    def __init__(self, engine, built: dict[str, dict[str, Any]]) -> None:
        self._graph = engine.graph
        self._rollups: list[_Stored] = []
        for name, info in sorted(built.items(), key=lambda kv: (kv[1].get("rows") or 0, kv[0])):
            try:
                saved = engine.saved_query(name)
                plan = engine.planner.plan(MetricQuery(metrics=tuple(saved.metrics), group_by=tuple(saved.group_by),
                                                       where_sql=tuple(saved.where)))
            except MetricsError:  # a build's rollup whose saved query is gone from the manifest
                continue
            parts: dict[str, dict[str, str]] = {}
            items: dict[Any, tuple[tuple[GroupByItem, str], ...]] = {}
            for node in plan.nodes:
                items.setdefault(node.source, tuple((g.item, saved.group_by[i]) for i, g in enumerate(node.group_by)))
                if decomposable(node):
                    key = node_key(node, plan.query)
                    parts[key] = {"": rows_column(key),
                                  **{m.measure.name: component_column(key, m.measure) for m in node.measures}}
            self._rollups.append(_Stored(name, info["table"], info.get("rows") or 0, saved,
                                         int(info.get("layout") or 1), parts, items, tuple(saved.group_by)))

    @classmethod
    def for_build(cls, engine, directory: Path) -> RollupRouter:
        info_file = directory / "build.json"
        built = {}
        if info_file.exists():
            built = json.loads(info_file.read_text()).get("rollups") or {}
        return cls(engine, built)

    def route(self, query: MetricQuery, plan: QueryPlan) -> Route:
        reasons: dict[str, str] = {}
        for stored in self._rollups:
            why = self._as_stored(stored, query)
            if why is None:
                return Route(stored.table, reasons)
            try:
                return Route(stored.table, reasons, self._readings(stored, query, plan))
            except _NotFrom as exc:
                reasons[stored.table] = str(exc)
        return Route(None, reasons)

    @staticmethod
    def _as_stored(stored: _Stored, query: MetricQuery) -> str | None:
        saved = stored.saved
        if set(query.metrics) != set(saved.metrics):
            return f"its metrics are {sorted(saved.metrics)}"
        if set(query.group_by) != set(saved.group_by):
            return f"its group-by is {sorted(saved.group_by)}"
        if query.where or set(query.where_sql) != set(saved.where):
            return f"its filters are {list(saved.where)}"
        if query.start is not None or query.end is not None:
            return "it is not filtered by time"
        if query.timezone is not None or query.week_start is not WeekStart.MONDAY:
            return "its buckets are UTC days and ISO weeks"
        if query.limit is not None and not query.order_by:
            return "a limit without an order picks arbitrary rows"
        return None

    def _readings(self, stored: _Stored, query: MetricQuery, plan: QueryPlan) -> dict[str, NodeReading]:
        """How each aggregate of `plan` is read from `stored`; raises _NotFrom with the first
        condition that fails."""
        if stored.layout < LAYOUT:
            raise _NotFrom("it was built without its parts (an older build): only its own query is answered")
        if query.timezone is not None:
            raise _NotFrom(f"its buckets are UTC days; the query reads time in {query.timezone}")
        missing = [w for w in stored.saved.where if w not in query.where_sql]
        if missing:
            raise _NotFrom(f"its rows are filtered by {missing}, the query's are not")
        extra = [w for w in query.where_sql if w not in stored.saved.where]
        users = _metrics_by_node(plan)
        readings = {}
        for node in plan.nodes:
            metrics = ", ".join(users.get(node.alias, ())) or "the query"
            readings[node.alias] = self._reading(stored, query, node, metrics, extra)
        return readings

    def _reading(self, stored: _Stored, query: MetricQuery, node: AggregateNode, metrics: str,
                 extra: list[str]) -> NodeReading:
        if not decomposable(node):
            kind = ("is cumulative" if node.cumulative else "is a conversion" if node.conversion
                    else "has a time offset" if node.offset or node.offset_to_grain else "is semi-additive")
            raise _NotFrom(f"{metrics} {kind}: computed over rows outside each group, answered from raw")
        parts = stored.parts.get(node_key(node, query))
        if parts is None or any(m.measure.name not in parts for m in node.measures):
            raise _NotFrom(f"it does not store the parts of {metrics}")
        items = stored.items.get(node.source, ())
        week_start = query.week_start

        def column(item: GroupByItem, asked: str, what: str) -> StoredColumn:
            why = f"it has no column for the {what} {asked!r}"
            for have, name in items:
                if not _same_place(have, item):
                    continue
                if have.grain == item.grain and not (have.grain is Grain.WEEK and week_start is WeekStart.SUNDAY):
                    return StoredColumn(name)
                if item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME):
                    if _makes(have.grain or Grain.DAY, item.grain or Grain.DAY, week_start):
                        return StoredColumn(name, item.grain or Grain.DAY)
                    why = (f"its {name} buckets cannot make the {what} {asked!r}"
                           + (" (Sunday weeks)" if week_start is WeekStart.SUNDAY else ""))
            raise _NotFrom(why)

        group_by = tuple(column(g.item, query.group_by[i], "group-by") for i, g in enumerate(node.group_by))
        one_row = all(c.grain is None for c in group_by) and {c.name for c in group_by} == set(stored.columns)
        measures = []
        for m in node.measures:
            aggregate = REAGGREGATE.get(m.measure.agg)
            if aggregate is None:
                if not one_row:
                    raise _NotFrom(f"{m.measure.name} ({metrics}) is a{'n' if m.measure.agg is Agg.AVERAGE else ''} "
                                   f"{m.measure.agg.value.replace('_', ' ')}: read from a rollup only at its own grain "
                                   f"and slices ({', '.join(stored.columns)})")
                aggregate = "MAX"  # one stored row per answered row
            measures.append((m, parts[m.measure.name], aggregate))
        filters = tuple((column(f.item, f.filter.field, "filter on"), f.item, f.filter) for f in node.filters)
        templates = []
        for template in extra:
            parsed = parse_filter_template(template)
            if parsed.metrics:
                raise _NotFrom(f"the filter {template!r} reads a metric per entity")
            references = []
            for ref in parsed.references:
                try:
                    item = self._graph.resolve(node.source, ref, metric=metrics)
                except MetricsError:
                    raise _NotFrom(f"it has no column for the filter on {ref!r}") from None
                references.append(column(item, ref, "filter on"))
            templates.append((template, tuple(references)))
        time = None
        if query.start is not None or query.end is not None:
            stamps = [(have, name) for have, name in items if have.kind is ItemKind.METRIC_TIME]
            if not stamps:
                raise _NotFrom("it has no metric_time column to apply the time range to")
            have, time = stamps[0]
            grain = have.grain or Grain.DAY
            for bound in (query.start, query.end):
                if bound is not None and not aligned(bound, grain):
                    raise _NotFrom(f"the time range bound {bound.isoformat()} is not the start of a stored "
                                   f"{grain.value}")
        return NodeReading(parts[""], group_by, tuple(measures), filters, tuple(templates), time)


def _metrics_by_node(plan: QueryPlan) -> dict[str, list[str]]:
    """The query's metrics each aggregate of the plan feeds (for reasons)."""
    out: dict[str, list[str]] = {}

    def walk(expr, name: str) -> None:
        if isinstance(expr, MeasureRef):
            if name not in out.setdefault(expr.node, []):
                out[expr.node].append(name)
        elif isinstance(expr, RatioExpr):
            walk(expr.numerator, name)
            walk(expr.denominator, name)
        elif isinstance(expr, DerivedExpr):
            for _, child in expr.inputs:
                walk(child, name)

    for metric in plan.metrics:
        walk(metric.expr, metric.name)
    return out
