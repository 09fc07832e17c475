"""The semantic layer's definitions as the dbt Semantic Layer APIs describe them: metrics,
dimensions, entities and measures (for a set of metrics: the ones every metric of the set can
use), saved queries. Keys are the GraphQL field names; Flight SQL lays the same out as tables.

Definitions are not data: they are read from the engine of the current build whatever a
caller's row-level policy is (as `/v1/metrics` does).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from metrics.errors import UnknownMetric, did_you_mean
from metrics.semantic.graph import GroupByItem, ItemKind
from metrics.semantic.model import GRAINS

GRAINS_UPPER = [g.value.upper() for g in GRAINS]
GRAINS_LOWER = {g.value for g in GRAINS}


def _grains_from(finest: Any) -> list[str]:
    rank = finest.rank if finest is not None else 0
    return [g.value.upper() for g in GRAINS if g.rank >= rank]


def _check_metrics(engine: Any, names: Sequence[str]) -> list[str]:
    known = engine.metric_names()
    for name in names:
        if name not in known:
            raise UnknownMetric(f"unknown metric {name!r}.{did_you_mean(name, known)}", metric=name)
    return list(names)


def _sources(engine: Any, metric: str):
    return {engine.graph.source_of(m) for m in engine.planner.measures_of(metric)}


def _items(engine: Any, metrics: Sequence[str]) -> dict[str, GroupByItem]:
    """The group-by items (by full name, without grain-suffixed copies) every metric can use."""
    common: dict[str, GroupByItem] | None = None
    for metric in metrics:
        for source in _sources(engine, metric):
            items = {name: item for name, item in engine.graph.items(source).items() if not item.has_grain_suffix}
            common = items if common is None else {n: i for n, i in common.items() if n in items}
    return common or {}


def dimension(item: GroupByItem) -> dict[str, Any]:
    is_time = item.kind in (ItemKind.TIME, ItemKind.METRIC_TIME)
    grains = _grains_from(item.grain) if is_time else []
    return {
        "name": item.name,
        "qualifiedName": item.name,
        "description": item.description,
        "type": "TIME" if is_time else "CATEGORICAL",
        "label": item.label,
        "isPartition": False,
        "expr": item.expr,
        "queryableGranularities": grains,
        "queryableTimeGranularities": grains,
    }


def dimensions(engine: Any, metrics: Sequence[str]) -> list[dict[str, Any]]:
    items = _items(engine, _check_metrics(engine, metrics))
    return [
        dimension(i)
        for _, i in sorted(items.items())
        if i.kind in (ItemKind.CATEGORICAL, ItemKind.TIME, ItemKind.METRIC_TIME)
    ]


def entities(engine: Any, metrics: Sequence[str]) -> list[dict[str, Any]]:
    items = _items(engine, _check_metrics(engine, metrics))
    out = []
    for name, item in sorted(items.items()):
        if item.kind is not ItemKind.ENTITY:
            continue
        entity = engine.graph.models[item.model].entity(name)
        out.append(
            {
                "name": name,
                "description": None,
                "type": entity.type.value.upper() if entity else "FOREIGN",
                "role": name,
                "expr": item.expr,
            }
        )
    return out


def measures(engine: Any, metrics: Sequence[str]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for metric in _check_metrics(engine, metrics):
        for measure in engine.planner.measures_of(metric):
            seen.setdefault(
                measure.name,
                {
                    "name": measure.name,
                    "aggTimeDimension": measure.agg_time_dimension,
                    "agg": measure.agg.value.upper(),
                    "expr": measure.expr,
                },
            )
    return [seen[name] for name in sorted(seen)]


def metric(engine: Any, name: str) -> dict[str, Any]:
    info = engine.catalog()[name]
    grains = [g.upper() for g in info.grains]
    return {
        "name": info.name,
        "description": info.description,
        "type": info.type.upper(),
        "queryableGranularities": grains,
        "queryableTimeGranularities": grains,
        "label": info.label or info.name,
        # northstar answers every metric without metric_time in the group-by.
        "requiresMetricTime": False,
        # Resolved on demand (the GraphQL resolvers call these only when the client asks).
        "dimensions": lambda *_, **__: dimensions(engine, [name]),
        "measures": lambda *_, **__: measures(engine, [name]),
        "entities": lambda *_, **__: entities(engine, [name]),
    }


def metrics(engine: Any, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    wanted = engine.metric_names() if names is None else _check_metrics(engine, list(names))
    return [metric(engine, n) for n in wanted]


def metrics_for_dimensions(engine: Any, group_by: Sequence[str]) -> list[dict[str, Any]]:
    """The metrics that can be grouped by every one of `group_by` (full or short names)."""
    out = []
    for name in engine.metric_names():
        sources = _sources(engine, name)
        if all(any(_reachable(engine, s, g, name) for s in sources) for g in group_by) and sources:
            out.append(metric(engine, name))
    return out


def _reachable(engine: Any, source: Any, name: str, metric_name: str) -> bool:
    try:
        engine.graph.resolve(source, name, metric=metric_name)
    except Exception:  # unknown or ambiguous: not a dimension of this metric
        return False
    return True


def queryable_granularities(engine: Any, metrics: Sequence[str]) -> list[str]:
    common: set[str] | None = None
    for name in _check_metrics(engine, metrics):
        grains = {g.upper() for g in engine.catalog()[name].grains}
        common = grains if common is None else common & grains
    return [g for g in GRAINS_UPPER if g in (common or set())]


def saved_queries(engine: Any) -> list[dict[str, Any]]:
    out = []
    for saved in engine.saved_queries():
        group_by = []
        for name in saved.group_by:
            base, _, last = name.rpartition("__")
            grain = last.upper() if base and last in GRAINS_LOWER else None
            group_by.append(
                {"name": base if grain else name, "grain": grain, "timeGranularity": grain, "datePart": None}
            )
        where = " AND ".join(f"({w})" if len(saved.where) > 1 else w for w in saved.where)
        out.append(
            {
                "name": saved.name,
                "description": saved.description,
                "label": saved.label,
                "queryParams": {
                    "metrics": [{"name": m} for m in saved.metrics],
                    "groupBy": group_by,
                    "where": {"whereSqlTemplate": where} if where else None,
                },
                "exports": [],
            }
        )
    return out


def search(items: list[dict[str, Any]], text: str | None) -> list[dict[str, Any]]:
    """Items whose name, label or description contains `text` (any case)."""
    if not text:
        return items
    needle = text.lower()
    return [i for i in items if any(needle in (i.get(k) or "").lower() for k in ("name", "label", "description"))]


def page(items: list[Any], page_num: int | None, page_size: int | None) -> dict[str, Any]:
    size = page_size if page_size and page_size > 0 else max(len(items), 1)
    number = page_num if page_num and page_num > 0 else 1
    total_pages = max(1, -(-len(items) // size))
    return {
        "items": items[(number - 1) * size : number * size],
        "pageNum": number,
        "pageSize": size,
        "totalItems": len(items),
        "totalPages": total_pages,
    }
