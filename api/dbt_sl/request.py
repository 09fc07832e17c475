"""A dbt Semantic Layer query (`metrics`, `group_by` with grains, `where` templates, `order_by`,
`limit`, `saved_query`) as the engine's `MetricQuery`, and its answer as an Arrow table.

Both APIs build a `SemanticLayerRequest` from what their clients send (GraphQL inputs, or the
arguments of `{{ semantic_layer.query(...) }}`); the engine resolves the names, so an unknown
metric or dimension is refused with the nearest valid names, as on `/v1/query`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from metrics.engine import QueryResult
from metrics.errors import InvalidQuery
from metrics.execution.client import ResultColumn, to_jsonable
from metrics.query.request import MetricQuery, OrderBy
from metrics.semantic.graph import METRIC_TIME
from metrics.semantic.model import GRAINS

GRAIN_NAMES = tuple(g.value for g in GRAINS)

ARROW_TYPES = {
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}


def grain_name(grain: str | None, what: str) -> str | None:
    """A client's grain (`DAY`, `month`) as the engine's, or None; refuses unknown grains."""
    if grain is None or grain == "":
        return None
    text = str(grain).strip().lower()
    if text not in GRAIN_NAMES:
        raise InvalidQuery(
            f"{what} asks for the time grain {grain!r}; northstar has {', '.join(g.upper() for g in GRAIN_NAMES)}.",
            field=what,
        )
    return text


def default_grain(engine: Any, metrics: tuple[str, ...] | list[str]) -> str:
    """The grain of `metric_time` asked for without one, as dbt's Semantic Layer (MetricFlow)
    picks it: DAY when every metric can be bucketed by day, else the finest grain they all
    have. The answer's column is then `metric_time__<grain>`, as dbt's clients expect."""
    catalog = engine.catalog()
    common: set[str] | None = None
    for name in metrics:
        info = catalog.get(name)
        if info is None:
            continue  # the engine refuses the unknown metric, naming the nearest ones
        grains = {str(g).lower() for g in info.grains}
        common = grains if common is None else common & grains
    if not common or "day" in common:
        return "day"
    return next(g for g in GRAIN_NAMES if g in common)


@dataclass(frozen=True)
class GroupBy:
    """A dimension, entity or time dimension to slice by; `grain` for time dimensions."""

    name: str
    grain: str | None = None

    @property
    def column(self) -> str:
        """The engine's name for it, which is also the answer's column: `metric_time__month`."""
        grain = grain_name(self.grain, self.name)
        if grain is None or self.name.endswith(f"__{grain}"):
            return self.name
        return f"{self.name}__{grain}"


@dataclass(frozen=True)
class Order:
    """Order by a metric (`metric=True`) or a group-by item (with an optional grain)."""

    name: str
    metric: bool = False
    grain: str | None = None
    descending: bool = False


@dataclass(frozen=True)
class SemanticLayerRequest:
    metrics: tuple[str, ...] = ()
    group_by: tuple[GroupBy, ...] = ()
    where: tuple[str, ...] = ()
    order_by: tuple[Order, ...] = ()
    limit: int | None = None
    saved_query: str | None = None
    # The result cache is keyed by build and query, and a build never changes, so a cached
    # answer is always the current one: read_cache=False changes nothing.
    read_cache: bool = True
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_query(self, engine: Any) -> MetricQuery:
        """The engine query; a saved query's metrics, group-by and filters come from the dbt
        project (this request's own filters are added to them, as on `/v1/query`)."""
        metrics, group_by, where = self.metrics, [g.column for g in self.group_by], list(self.where)
        if self.saved_query:
            if self.metrics or self.group_by:
                raise InvalidQuery(
                    "'saved_query' and 'metrics'/'group_by' are mutually exclusive: a saved "
                    "query names its own metrics and group-by items.",
                    field="saved_query",
                )
            saved = engine.saved_query(self.saved_query)
            metrics, group_by, where = saved.metrics, list(saved.group_by), list(saved.where) + where
        if METRIC_TIME in group_by:
            group_by = [f"{METRIC_TIME}__{default_grain(engine, metrics)}" if g == METRIC_TIME else g for g in group_by]
        if self.limit is not None and self.limit < 0:
            raise InvalidQuery("'limit' must be zero or positive.", field="limit")
        return MetricQuery(
            metrics=tuple(metrics),
            group_by=tuple(group_by),
            where_sql=tuple(where),
            order_by=tuple(self._order(o, group_by) for o in self.order_by),
            limit=self.limit,
        )

    @staticmethod
    def _order(order: Order, group_by: list[str]) -> OrderBy:
        if order.metric:
            return OrderBy(order.name, order.descending)
        column = GroupBy(order.name, order.grain).column
        if column not in group_by and order.grain is None:
            # `order_by=["metric_time"]` of a query grouped by metric_time at some grain.
            matches = [g for g in group_by if g.rsplit("__", 1)[0] == order.name]
            if len(matches) == 1:
                column = matches[0]
        return OrderBy(column, order.descending)

    def describe(self) -> dict[str, Any]:
        """For the audit log."""
        return {k: v for k, v in asdict(self).items() if v not in ((), None, {}) and k != "extra"}


def arrow_schema(columns: tuple[ResultColumn, ...]) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES.get(c.type, pa.string())) for c in columns])


def arrow_table(result: QueryResult) -> pa.Table:
    """The answer as a typed Arrow table (the same values `/v1/query` returns)."""
    schema = arrow_schema(result.columns)
    arrays = []
    for i, f in enumerate(schema):
        values = [row[i] for row in result.rows]
        if pa.types.is_floating(f.type):
            values = [None if v is None else float(v) for v in values]
        elif pa.types.is_string(f.type):
            values = [None if v is None else (v if isinstance(v, str) else str(to_jsonable(v))) for v in values]
        arrays.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def json_result(table: pa.Table, orient: str) -> str:
    """The rows as pandas' `DataFrame.to_json(orient=...)` lays them out (what dbt's
    `jsonResult` returns), without needing pandas."""
    names = table.column_names
    rows = [[to_jsonable(v) for v in row.values()] for row in table.to_pylist()]
    orient = orient.lower()
    if orient == "records":
        body: Any = [dict(zip(names, row)) for row in rows]
    elif orient == "split":
        body = {"columns": names, "index": list(range(len(rows))), "data": rows}
    elif orient == "index":
        body = {str(i): dict(zip(names, row)) for i, row in enumerate(rows)}
    elif orient == "columns":
        body = {name: {str(i): row[j] for i, row in enumerate(rows)} for j, name in enumerate(names)}
    elif orient == "values":
        body = rows
    else:  # table
        fields = [{"name": "index", "type": "integer"}] + [
            {"name": f.name, "type": _json_type(f.type)} for f in table.schema
        ]
        body = {
            "schema": {"fields": fields, "primaryKey": ["index"], "pandas_version": "1.4.0"},
            "data": [{"index": i, **dict(zip(names, row))} for i, row in enumerate(rows)],
        }
    return json.dumps(body, separators=(",", ":"))


def _json_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_date(arrow_type) or pa.types.is_timestamp(arrow_type):
        return "datetime"
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return "string"
