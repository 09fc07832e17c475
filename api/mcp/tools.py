"""What each MCP tool answers, given an engine: small, JSON-ready results for a model's context.

The functions here take the engine a caller may use (a `RestrictedEngine` for a token with a
row policy) and the tool's arguments, and return plain JSON values. Authentication, scopes,
limits, auditing and error mapping are the gate's (`api/mcp/gate.py`); the transports are in
`api/mcp/server.py`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.query import BuildWarning
from metrics.engine import QueryResult
from metrics.errors import InvalidQuery, UnknownDimension, did_you_mean, nearest
from metrics.execution.client import to_jsonable
from metrics.query.request import MetricQuery, OrderBy, parse_time_bound
from metrics.semantic.graph import METRIC_TIME, ItemKind

#: Rows one tool answer carries unless the service says otherwise (NORTHSTAR_MCP_MAX_ROWS).
DEFAULT_MAX_ROWS = 200
DEFAULT_DIMENSION_VALUES = 100


class GroupByParam(BaseModel):
    """dbt MCP's group-by item: `{"name": "metric_time", "type": "time_dimension", "grain": "week"}`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A dimension, entity or `metric_time`, as get_dimensions / get_entities list it.")
    type: Literal["dimension", "time_dimension", "entity"] = Field(
        default="dimension", description="dimension, time_dimension or entity."
    )
    grain: str | None = Field(default=None, description="For time dimensions: day, week, month, quarter or year.")

    def column(self) -> str:
        """The column name northstar answers under (`metric_time__week`).

        >>> GroupByParam(name="metric_time", type="time_dimension", grain="WEEK").column()
        'metric_time__week'
        """
        if self.grain and not self.name.lower().endswith("__" + self.grain.lower()):
            return f"{self.name}__{self.grain.lower()}"
        return self.name


class OrderByParam(BaseModel):
    """dbt MCP's order-by item: `{"name": "active_users", "descending": true}`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="A metric or a group_by item of the same query.")
    descending: bool = False
    grain: str | None = Field(default=None, description="For a time dimension: the grain it is grouped by.")


def _columns(group_by: list[GroupByParam | str] | None) -> list[str]:
    return [g if isinstance(g, str) else g.column() for g in group_by or ()]


def _order(order_by: list[OrderByParam | str] | None, group_by: list[str]) -> list[OrderBy]:
    out = []
    for item in order_by or ():
        if isinstance(item, str):
            out.append(OrderBy.parse(item))
            continue
        name = item.name if not item.grain else GroupByParam(name=item.name, grain=item.grain).column()
        if not item.grain and name not in group_by:
            # `metric_time` ordering a query grouped by `metric_time__week` means that column
            name = next((g for g in group_by if g.startswith(name + "__")), name)
        out.append(OrderBy(name, item.descending))
    return out


def metric_query(
    metrics: list[str],
    group_by: list[GroupByParam | str] | None = None,
    order_by: list[OrderByParam | str] | None = None,
    where: str | list[str] | None = None,
    limit: int | None = None,
    start: str | None = None,
    end: str | None = None,
) -> MetricQuery:
    """The engine query for dbt MCP's query arguments.

    >>> q = metric_query(["active_users"], [GroupByParam(name="metric_time", type="time_dimension", grain="month")],
    ...                  [OrderByParam(name="metric_time", descending=True)], limit=3)
    >>> q.group_by, q.order_by, q.limit
    (('metric_time__month',), (OrderBy(name='metric_time__month', descending=True),), 3)
    """
    if not metrics:
        raise InvalidQuery("name at least one metric (list_metrics lists them).", field="metrics")
    columns = _columns(group_by)
    templates = [where] if isinstance(where, str) else list(where or ())
    return MetricQuery(
        metrics=tuple(metrics),
        group_by=tuple(columns),
        where_sql=tuple(t for t in templates if t.strip()),
        order_by=tuple(_order(order_by, columns)),
        limit=limit,
        start=parse_time_bound(start, "start"),
        end=parse_time_bound(end, "end"),
    )


def result_body(result: QueryResult, max_rows: int) -> dict[str, Any]:
    """A query answer as the tools return it: at most `max_rows` rows, and a note on how to
    narrow the query when there were more."""
    total = len(result.rows)
    shown = result.rows[:max_rows]
    body: dict[str, Any] = {
        "columns": [{"name": c.name, "type": c.type} for c in result.columns],
        "rows": [[to_jsonable(v) for v in row] for row in shown],
        "row_count": total,
        "truncated": total > len(shown),
        "meta": {
            "build_id": result.build.build_id,
            "built_at": result.build.built_at,
            "tests_passed": result.freshness.tests_passed,
            "newest_metric_time": to_jsonable(result.freshness.newest_metric_time),
            "warnings": [BuildWarning.of(w).message for w in result.freshness.warnings],
        },
    }
    if body["truncated"]:
        body["note"] = (
            f"the answer has {total:,} rows; only the first {len(shown):,} are shown. Narrow the query: "
            "add a where filter, a coarser time grain, fewer group_by items, or order_by with a limit."
        )
    return body


# -- definitions -------------------------------------------------------------------------


def _matches(search: str | list[str] | None, *texts: str | None) -> bool:
    if not search:
        return True
    terms = [search] if isinstance(search, str) else search
    haystack = " ".join(t.lower() for t in texts if t)
    return any(term.lower() in haystack for term in terms)


def list_metrics(engine, search: str | list[str] | None = None) -> list[dict[str, Any]]:
    return [
        {
            "name": m.name,
            "type": m.type,
            "label": m.label,
            "description": m.description,
            "dimensions": list(m.dimensions),
            "grains": list(m.grains),
            "owner": m.owner,
        }
        for m in engine.catalog().values()
        if _matches(search, m.name, m.label, m.description)
    ]


def list_saved_queries(engine, search: str | None = None) -> list[dict[str, Any]]:
    return [
        {
            "name": q.name,
            "label": q.label,
            "description": q.description,
            "metrics": list(q.metrics),
            "group_by": list(q.group_by),
            "where": list(q.where),
        }
        for q in engine.saved_queries()
        if _matches(search, q.name, q.label, q.description)
    ]


def _items(engine, metrics: list[str]) -> dict[str, Any]:
    """The group-by items every one of `metrics` can be sliced by, by full name."""
    if not metrics:
        raise InvalidQuery("name at least one metric (list_metrics lists them).", field="metrics")
    common: dict[str, Any] | None = None
    for metric in metrics:
        engine.metric(metric)  # an unknown name is an error naming the nearest ones
        reachable: dict[str, Any] = {}
        for measure in engine.planner.measures_of(metric):
            for name, item in engine.graph.items(engine.graph.source_of(measure)).items():
                reachable.setdefault(name, item)
        common = reachable if common is None else {n: i for n, i in common.items() if n in reachable}
    return common or {}


def get_dimensions(engine, metrics: list[str], search: str | None = None) -> list[dict[str, Any]]:
    items = _items(engine, metrics)
    grains = None
    for metric in metrics:
        mine = set(engine.metric(metric).grains)
        grains = mine if grains is None else grains & mine
    out = [
        {
            "name": METRIC_TIME,
            "type": "time_dimension",
            "description": "The metric's own time (UTC unless a query says otherwise).",
            "granularities": [g for g in engine.metric(metrics[0]).grains if g in (grains or ())],
        }
    ]
    times: dict[str, dict[str, Any]] = {}
    for name, item in sorted(items.items()):
        if item.kind is ItemKind.CATEGORICAL:
            out.append({"name": name, "type": "dimension", "description": item.description or item.label})
        elif item.kind is ItemKind.TIME:
            # `event__event_ts__day` is `event__event_ts` at the day grain: one entry per column
            grain = item.grain.value if item.grain else None
            base = name[: -len(grain) - 2] if grain and name.endswith("__" + grain) else name
            entry = times.setdefault(
                base,
                {
                    "name": base,
                    "type": "time_dimension",
                    "description": item.description or item.label,
                    "granularities": [],
                },
            )
            if grain and grain not in entry["granularities"]:
                entry["granularities"].append(grain)
            if base not in [d["name"] for d in out]:
                out.append(entry)
    return [d for d in out if _matches(search, d["name"], d.get("description"))]


def get_entities(engine, metrics: list[str], search: str | None = None) -> list[dict[str, Any]]:
    items = _items(engine, metrics)
    return [
        {"name": name, "type": "entity", "description": item.description or item.label}
        for name, item in sorted(items.items())
        if item.kind is ItemKind.ENTITY and _matches(search, name, item.description)
    ]


def get_dimension_values(
    engine, definitions, dimension: str, metrics: list[str] | None = None, limit: int = DEFAULT_DIMENSION_VALUES
) -> dict[str, Any]:
    """Distinct values of a dimension, read as a metric query grouped by it (so a row policy
    applies); `definitions` is the engine to read the catalog from."""
    if limit < 1:
        raise InvalidQuery("'limit' must be at least 1.", field="limit")
    if not metrics:
        short = dimension.split("__")[-1]
        candidates = [
            m.name
            for m in definitions.catalog().values()
            if dimension in m.qualified_dimensions or short in m.dimensions
        ]
        if not candidates:
            known = {d for m in definitions.catalog().values() for d in (*m.dimensions, *m.qualified_dimensions)}
            raise UnknownDimension(
                f"no metric can be grouped by {dimension!r}." + did_you_mean(dimension, known),
                field=dimension,
                suggestions=nearest(dimension, known),
            )
        metrics = candidates[:1]
    query = MetricQuery(
        metrics=tuple(metrics[:1]), group_by=(dimension,), order_by=(OrderBy(dimension),), limit=limit + 1
    )
    result = engine.query(query)
    values = [to_jsonable(row[0]) for row in result.rows]
    return {"dimension": dimension, "values": values[:limit], "truncated": len(values) > limit}
