"""Rollups: saved queries the build materializes into its warehouse with the engine's SQL.

Declared the dbt way: a saved query's `exports` with `export_as: table` (dbt's spec; `schema`
and `alias` name the table, defaulting to the `rollups` schema and the export's name), or
`config.meta.rollup: true` to keep one only for serving (table `rollups.<saved query name>`).
The table holds the saved query's answer, computed by the same plan and renderer as
`/v1/query`, so it cannot drift from the metric definitions.

Table layout (every engine's build writes it with `metrics.sql.rollups.stored`; build.json
records `"layout": 3` for it; 2 counted every row of a group, also rows no measure reads):

- one row per group of the saved query's group-by items where any of its metrics has data;
- the group-by items, named as in the saved query (`metric_time__day`, `event__platform`);
- the metrics, named as the metrics: the saved query's answer as `/v1/query` gives it;
- hidden parts, for each plain aggregate of the plan (one semantic model with one set of
  metric filters; not cumulative, time-offset, conversion or semi-additive): `__rows__<key>`,
  the number of the model's rows in the group that count towards one of its measures (null
  where none does: the semantic models answer no such group either), and
  `__<measure>__<key>`, each measure's aggregate there. `<key>` is a hash of the semantic
  model, its time dimension and the metric's own filters (`metrics.sql.rollups.node_key`).

build.json also lists each rollup's `integer_columns`, so a re-aggregated sum keeps the
integer type the semantic models give it.

From the parts, a query is answered by re-aggregating sums, counts, minima and maxima to a
coarser grain or fewer slices, and ratios and derived metrics are recomputed from their
re-aggregated parts; distinct counts and averages only one stored row per answered row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metrics.protocols import Engine

if TYPE_CHECKING:
    from metrics.query.request import MetricQuery

from metrics.errors import MetricsError
from metrics.query.plan import (
    AggregateNode,
    DerivedExpr,
    MeasureRef,
    QueryPlan,
    RatioExpr,
)
from metrics.query.request import FilterOp, MetricQuery, WeekStart
from metrics.semantic.graph import GroupByItem, ItemKind
from metrics.semantic.model import Agg, Grain
from metrics.sql.filters import parse_filter_template
from metrics.sql.rollups import (
    REAGGREGATE,
    NodeReading,
    StoredColumn,
    aligned,
    component_column,
    decomposable,
    node_key,
    rows_column,
)

DEFAULT_SCHEMA = "rollups"


@dataclass(frozen=True)
class Rollup:
    saved_query: str
    schema: str
    table: str
    exported: bool  # under a public name (an export), or for serving only (meta.rollup)

    @property
    def public_name(self) -> str:
        """`schema.alias`, as the project declares it (a build may write it elsewhere)."""
        return f"{self.schema}.{self.table}"


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
            add(
                Rollup(
                    saved["name"],
                    config.get("schema_name") or config.get("schema") or DEFAULT_SCHEMA,
                    config.get("alias") or export["name"],
                    True,
                )
            )
    exported = {r.saved_query for r in rollups}
    for node in ((manifest or {}).get("saved_queries") or {}).values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if meta.get("rollup") is True and node["name"] not in exported:
            add(Rollup(node["name"], DEFAULT_SCHEMA, node["name"], False))
    return rollups


LAYOUT = 3  # build.json's `layout` of tables that store their parts (see the module's docstring)


@dataclass(frozen=True)
class Route:
    """Which rollup answers a query (`table`: where the build wrote it, schema-qualified;
    `name`: its public `schema.alias`) and how (`readings`: per aggregate of the plan, None
    when the stored answer is read as is), or why none can (`reasons`, by public name)."""

    table: str | None
    reasons: dict[str, str]
    readings: dict[str, NodeReading] | None = None
    name: str | None = None

    def explain(self) -> dict[str, Any]:
        if self.table is not None:
            read = "as stored" if self.readings is None else "re-aggregated from its parts"
            return {"answered_by": self.name, "read": read, **({"why_not": self.reasons} if self.reasons else {})}
        return {"answered_by": None, "why_not": self.reasons or {"": "the build has no rollups"}}


class _NotFrom(Exception):
    """Why one rollup cannot answer a query (the first failing condition)."""


@dataclass(frozen=True)
class _Stored:
    name: str
    table: str  # where the build wrote it
    public: str  # `schema.alias`, the same on every engine
    rows: int
    saved: Any
    layout: int
    parts: dict[str, dict[str, str]]  # node key -> measure name (or "" for its rows) -> column
    items: dict[Any, tuple[tuple[GroupByItem, str], ...]]  # source -> (item, column) of its group-by
    columns: tuple[str, ...]  # the group-by columns
    integer_columns: frozenset[str] = frozenset()  # as build.json records them


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
                plan = engine.planner.plan(
                    MetricQuery(
                        metrics=tuple(saved.metrics), group_by=tuple(saved.group_by), where_sql=tuple(saved.where)
                    )
                )
            except MetricsError:  # a build's rollup whose saved query is gone from the manifest
                continue
            parts: dict[str, dict[str, str]] = {}
            items: dict[Any, tuple[tuple[GroupByItem, str], ...]] = {}
            for node in plan.nodes:
                items.setdefault(node.source, tuple((g.item, saved.group_by[i]) for i, g in enumerate(node.group_by)))
                if decomposable(node):
                    key = node_key(node, plan.query)
                    parts[key] = {
                        "": rows_column(key),
                        **{m.measure.name: component_column(key, m.measure) for m in node.measures},
                    }
            self._rollups.append(
                _Stored(
                    name,
                    info["table"],
                    info.get("name") or info["table"],
                    info.get("rows") or 0,
                    saved,
                    int(info.get("layout") or 1),
                    parts,
                    items,
                    tuple(saved.group_by),
                    frozenset(info.get("integer_columns") or ()),
                )
            )

    @classmethod
    def for_build(cls, engine: Engine, directory: Path) -> RollupRouter:
        info_file = directory / "build.json"
        built: dict[str, dict[str, Any]] = {}
        if info_file.exists():
            built = json.loads(info_file.read_text()).get("rollups") or {}
        return cls(engine, built)

    def route(self, query: MetricQuery, plan: QueryPlan) -> Route:
        reasons: dict[str, str] = {}
        for stored in self._rollups:
            why = self._as_stored(stored, query)
            if why is None:
                return Route(stored.table, reasons, name=stored.public)
            try:
                return Route(stored.table, reasons, self._readings(stored, query, plan), stored.public)
            except _NotFrom as exc:
                reasons[stored.public] = str(exc)
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

    def _reading(
        self, stored: _Stored, query: MetricQuery, node: AggregateNode, metrics: str, extra: list[str]
    ) -> NodeReading:
        if not decomposable(node):
            kind = (
                "is cumulative"
                if node.cumulative
                else "is a conversion"
                if node.conversion
                else "has a time offset"
                if node.offset or node.offset_to_grain
                else "is semi-additive"
            )
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
                    why = f"its {name} buckets cannot make the {what} {asked!r}" + (
                        " (Sunday weeks)" if week_start is WeekStart.SUNDAY else ""
                    )
            raise _NotFrom(why)

        group_by = tuple(column(g.item, query.group_by[i], "group-by") for i, g in enumerate(node.group_by))
        filters = tuple((column(f.item, f.filter.field, "filter on"), f.item, f.filter) for f in node.filters)
        # One stored row per answered row: every stored column is grouped by as stored, or
        # pinned to one value by an equality filter (a dashboard's platform picker).
        pinned = {
            c.name
            for c, _, f in filters
            if c.grain is None and (f.op is FilterOp.EQ or (f.op is FilterOp.IN and len(f.values) == 1))
        }
        one_row = all(c.grain is None for c in group_by) and {c.name for c in group_by} | pinned == set(stored.columns)
        measures = []
        for m in node.measures:
            aggregate = REAGGREGATE.get(m.measure.agg)
            if aggregate is None:
                if not one_row:
                    raise _NotFrom(
                        f"{m.measure.name} ({metrics}) is a{'n' if m.measure.agg is Agg.AVERAGE else ''} "
                        f"{m.measure.agg.value.replace('_', ' ')}: read from a rollup only at its own grain "
                        f"and slices ({', '.join(stored.columns)}; a slice may be fixed by an = filter)"
                    )
                aggregate = "MAX"  # one stored row per answered row
            measures.append((m, parts[m.measure.name], aggregate))
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
                    raise _NotFrom(
                        f"the time range bound {bound.isoformat()} is not the start of a stored {grain.value}"
                    )
        return NodeReading(
            parts[""],
            group_by,
            tuple(measures),
            filters,
            tuple(templates),
            time,
            frozenset(c for _, c, _ in measures if c in stored.integer_columns),
        )


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


# -- suggestions -----------------------------------------------------------------------------

_COARSEST_FIRST = (Grain.YEAR, Grain.QUARTER, Grain.MONTH, Grain.WEEK, Grain.DAY)


@dataclass(frozen=True)
class Suggestion:
    """A rollup that would answer `queries` logged queries which took `elapsed_ms` in all."""

    name: str
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...]  # group-by items other than metric_time, filter fields among them
    grain: Grain | None  # metric_time's, None when no query needs time
    queries: int
    elapsed_ms: float
    rows: int  # estimated: the product of the group-by columns' distinct counts

    @property
    def group_by(self) -> tuple[str, ...]:
        return ((f"{METRIC_TIME_NAME}__{self.grain.value}",) if self.grain else ()) + self.dimensions

    def saved_query(self) -> dict[str, Any]:
        """The saved query with a table export, as dbt YAML takes it."""
        group_by = ([f"TimeDimension('{METRIC_TIME_NAME}', '{self.grain.value}')"] if self.grain else []) + [
            f"Dimension('{d}')" for d in self.dimensions
        ]
        return {
            "name": self.name,
            "description": (
                f"Suggested from {self.queries} logged queries ({self.elapsed_ms:.0f} ms in all); "
                f"about {self.rows} rows."
            ),
            "query_params": {"metrics": list(self.metrics), "group_by": group_by},
            "exports": [
                {"name": self.name, "config": {"export_as": "table", "schema": DEFAULT_SCHEMA, "alias": self.name}}
            ],
        }


METRIC_TIME_NAME = "metric_time"


@dataclass
class _Need:
    """What one logged query asks of a rollup's time column."""

    grains: list[tuple[Grain, WeekStart]]
    bounds: list[Any]


def _time_grain(name: str) -> Grain | None:
    """`metric_time__week` -> week, `metric_time` -> day; None for anything else."""
    if name == METRIC_TIME_NAME:
        return Grain.DAY
    prefix = METRIC_TIME_NAME + "__"
    if name.startswith(prefix):
        try:
            return Grain(name[len(prefix) :])
        except ValueError:
            return None
    return None


def suggest(engine, logged: list[tuple[MetricQuery, float]], top: int = 5) -> tuple[list[Suggestion], dict[str, int]]:
    """Rollups that would answer the logged queries (query, elapsed ms), ranked by the time
    they took. Queries are grouped by shape: the same metrics and the same dimensions (their
    group-by items and filter fields besides metric_time); each group's rollup has metric_time
    at the coarsest grain that makes every member's buckets and range bounds (its distinct
    counts, averages and windowed metrics at each member's own grain and slices only, so those
    group by grain too). Left out, and counted in the second value by reason: queries a rollup
    of the build already answers, those in a time zone, those no rollup can answer."""
    skipped: dict[str, int] = {}
    groups: dict[tuple, dict[str, Any]] = {}
    for query, elapsed in logged:
        try:
            plan = engine.plan(query)
        except MetricsError:
            skipped["not a valid query of this build"] = skipped.get("not a valid query of this build", 0) + 1
            continue
        if engine.rollups.route(query, plan).table is not None:
            skipped["already answered by a rollup"] = skipped.get("already answered by a rollup", 0) + 1
            continue
        key_need = _shape(engine, query, plan)
        if isinstance(key_need, str):
            skipped[key_need] = skipped.get(key_need, 0) + 1
            continue
        key, need = key_need
        group = groups.setdefault(key, {"queries": 0, "ms": 0.0, "needs": []})
        group["queries"] += 1
        group["ms"] += float(elapsed or 0)
        group["needs"].append(need)
    suggestions = []
    counts: dict[tuple[str, str], int] = {}
    for (metrics, dimensions, exact_grain), group in groups.items():
        grain = exact_grain or _covering_grain(group["needs"])
        if grain is False:
            skipped["no stored grain makes their buckets"] = (
                skipped.get("no stored grain makes their buckets", 0) + group["queries"]
            )
            continue
        rows = 1
        for column in ((f"{METRIC_TIME_NAME}__{grain.value}",) if grain else ()) + dimensions:
            if (metrics[0], column) not in counts:
                counts[(metrics[0], column)] = len(
                    engine.query(MetricQuery(metrics=(metrics[0],), group_by=(column,))).rows
                )
            rows *= counts[(metrics[0], column)]
        name = "_".join(
            [
                *metrics[:3],
                *(["and_more"] if len(metrics) > 3 else []),
                *(["by", *(d.split("__")[-1] for d in dimensions)] if dimensions else []),
                *([grain.value + "ly" if grain is not Grain.DAY else "daily"] if grain else []),
            ]
        )
        suggestions.append(Suggestion(name, metrics, dimensions, grain, group["queries"], round(group["ms"], 3), rows))
    suggestions.sort(key=lambda s: (-s.elapsed_ms, -s.queries, s.name))
    return suggestions[:top], skipped


def _shape(engine, query: MetricQuery, plan: QueryPlan):
    """(group key, time need) of a logged query, or why no rollup could answer it."""
    if query.timezone is not None:
        return "asked in a time zone (rollups store UTC buckets)"
    if not all(decomposable(n) for n in plan.nodes):
        return "cumulative, time-offset or conversion metrics (answered from a rollup only as saved)"
    additive = all(m.measure.agg in REAGGREGATE for n in plan.nodes for m in n.measures)
    need = _Need([], [b for b in (query.start, query.end) if b is not None])
    dimensions: set[str] = set()
    for name in query.group_by:
        grain = _time_grain(name)
        if grain is None:
            dimensions.add(name)
        else:
            need.grains.append((grain, query.week_start))
    # (field, whether the filter fixes it to one value)
    filtered = [(f.field, f.op is FilterOp.EQ or (f.op is FilterOp.IN and len(f.values) == 1)) for f in query.where]
    for template in query.where_sql:
        filtered += [(name, False) for name in parse_filter_template(template).references]
    for name, fixed in filtered:
        grain = _time_grain(name)
        if grain is None:
            if not additive and name not in query.group_by and not fixed:
                return "a distinct count filtered on a dimension it is not grouped by, other than by ="
            dimensions.add(name)
        else:
            need.grains.append((grain, query.week_start))
    exact = None
    if not additive:
        grains = {g for g, _ in need.grains}
        if len(grains) > 1 or any(ws is WeekStart.SUNDAY and g is Grain.WEEK for g, ws in need.grains):
            return "a distinct count at mixed or Sunday-week grains"
        exact = grains.pop() if grains else None
        if exact is None and need.bounds:
            return "a distinct count over a time range without a time group-by"
        if exact is not None and not all(aligned(b, exact) for b in need.bounds):
            return "a distinct count over a range inside its buckets"
    return (tuple(sorted(query.metrics)), tuple(sorted(dimensions)), exact), need


def _covering_grain(needs: list[_Need]):
    """The coarsest grain whose buckets make every need's buckets and bounds; None if no
    query needs time, False if no grain can (a range bound inside a day)."""
    if not any(n.grains or n.bounds for n in needs):
        return None
    for grain in _COARSEST_FIRST:
        if all(_makes(grain, g, ws) for n in needs for g, ws in n.grains) and all(
            aligned(b, grain) for n in needs for b in n.bounds
        ):
            return grain
    return False
