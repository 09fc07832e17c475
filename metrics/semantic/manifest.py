"""Load dbt's `semantic_manifest.json` into the engine's frozen definitions.

The manifest is read once per warehouse build; every query after that works on the
in-memory `SemanticManifest`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from metrics.errors import InternalError
from metrics.semantic.model import (
    Agg,
    ConversionParams,
    Dimension,
    Entity,
    EntityType,
    Grain,
    Measure,
    MeasureInput,
    Metric,
    MetricInput,
    MetricType,
    NonAdditive,
    PeriodAgg,
    Relation,
    SavedQuery,
    SemanticModel,
    Window,
)

_Input = TypeVar("_Input", MeasureInput, MetricInput)


@dataclass(frozen=True)
class TimeSpine:
    """The project's day-grain time spine table (one row per day), for series with every
    bucket and for cumulative windows."""

    relation: Relation
    column: str


@dataclass(frozen=True)
class SemanticManifest:
    semantic_models: dict[str, SemanticModel]
    metrics: dict[str, Metric]
    saved_queries: dict[str, SavedQuery]
    time_spine: TimeSpine | None = None
    # Custom granularities the project's time spines declare (fiscal_quarter, ...).
    custom_granularities: frozenset[str] = frozenset()

    @property
    def measures(self) -> dict[str, Measure]:
        return {m.name: m for sm in self.semantic_models.values() for m in sm.measures}


def load_semantic_manifest(path: Path) -> SemanticManifest:
    """Read a `semantic_manifest.json` written by `dbt parse` / `dbt build`."""
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InternalError(f"cannot read the semantic manifest at {path}: {exc}") from exc
    return parse_semantic_manifest(raw)


def parse_semantic_manifest(raw: dict[str, Any]) -> SemanticManifest:
    models = [_semantic_model(sm) for sm in raw.get("semantic_models", [])]
    metrics = [_metric(m) for m in raw.get("metrics", [])]
    saved = [_saved_query(q) for q in raw.get("saved_queries", []) or []]
    return SemanticManifest(
        semantic_models={m.name: m for m in models},
        metrics={m.name: m for m in metrics},
        saved_queries={q.name: q for q in saved},
        time_spine=_time_spine(raw.get("project_configuration") or {}),
        custom_granularities=frozenset(
            (c.get("name") or "").lower()
            for spine in (raw.get("project_configuration") or {}).get("time_spines") or []
            for c in spine.get("custom_granularities") or ()
        ),
    )


def _time_spine(config: dict[str, Any]) -> TimeSpine | None:
    for spine in config.get("time_spines") or []:
        column = spine.get("primary_column") or {}
        if (column.get("time_granularity") or "day") == "day":
            relation = spine["node_relation"]
            return TimeSpine(Relation(relation.get("schema_name") or "main", relation["alias"]), column["name"])
    for legacy in config.get("time_spine_table_configurations") or []:
        if (legacy.get("grain") or "day") == "day":
            schema, _, table = legacy["location"].rpartition(".")
            return TimeSpine(Relation(schema.rpartition(".")[2] or "main", table), legacy["column_name"])
    return None


def _semantic_model(raw: dict[str, Any]) -> SemanticModel:
    relation = raw["node_relation"]
    defaults = raw.get("defaults") or {}
    default_time = defaults.get("agg_time_dimension")
    entities = tuple(
        Entity(name=e["name"], type=EntityType(e["type"]), expr=e.get("expr") or e["name"])
        for e in raw.get("entities", [])
    )
    dimensions = tuple(_dimension(d) for d in raw.get("dimensions", []))
    measures = tuple(
        Measure(
            name=m["name"],
            agg=Agg(m["agg"]),
            expr=str(m.get("expr") or m["name"]),
            semantic_model=raw["name"],
            agg_time_dimension=m.get("agg_time_dimension") or default_time or "",
            percentile=(m.get("agg_params") or {}).get("percentile"),
            use_discrete_percentile=bool((m.get("agg_params") or {}).get("use_discrete_percentile")),
            description=m.get("description"),
            non_additive=_non_additive(m.get("non_additive_dimension")),
        )
        for m in raw.get("measures", [])
    )
    primary = raw.get("primary_entity") or next((e.name for e in entities if e.type is EntityType.PRIMARY), None)
    return SemanticModel(
        name=raw["name"],
        relation=Relation(schema=relation.get("schema_name") or "main", table=relation["alias"]),
        entities=entities,
        dimensions=dimensions,
        measures=measures,
        primary_entity=primary,
        default_agg_time_dimension=default_time,
        description=raw.get("description"),
        label=raw.get("label"),
        dbt_model=_model_name(raw.get("node_relation") or {}),
    )


def _non_additive(raw: dict[str, Any] | None) -> NonAdditive | None:
    if not raw:
        return None
    return NonAdditive(
        raw["name"], (raw.get("window_choice") or "max").lower(), tuple(raw.get("window_groupings") or ())
    )


def _model_name(relation: dict[str, Any]) -> str | None:
    return relation.get("alias")


def _dimension(raw: dict[str, Any]) -> Dimension:
    is_time = raw["type"] == "time"
    params = raw.get("type_params") or {}
    grain = Grain.parse(params.get("time_granularity") or "day") if is_time else None
    validity = params.get("validity_params") or {}
    return Dimension(
        name=raw["name"],
        is_time=is_time,
        expr=str(raw.get("expr") or raw["name"]),
        time_granularity=grain,
        label=raw.get("label"),
        description=raw.get("description"),
        validity="start" if validity.get("is_start") else "end" if validity.get("is_end") else None,
    )


def _filters(raw: dict[str, Any] | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(f["where_sql_template"] for f in raw.get("where_filters", []))


def _window(raw: dict[str, Any] | None) -> Window | None:
    if not raw:
        return None
    return Window.parse(raw["count"], raw["granularity"])


def _grain(text: str | None) -> Grain | None:
    return Grain.parse(text) if text else None


def _measure_input(raw: dict[str, Any] | None) -> MeasureInput | None:
    if not raw:
        return None
    return MeasureInput(
        name=raw["name"],
        filters=_filters(raw.get("filter")),
        alias=raw.get("alias"),
        fill_nulls_with=raw.get("fill_nulls_with"),
        join_to_timespine=bool(raw.get("join_to_timespine")),
    )


def _metric_input(raw: dict[str, Any] | None) -> MetricInput | None:
    if not raw:
        return None
    return MetricInput(
        name=raw["name"],
        filters=_filters(raw.get("filter")),
        alias=raw.get("alias"),
        offset_window=_window(raw.get("offset_window")),
        offset_to_grain=_grain(raw.get("offset_to_grain")),
    )


def _required(item: _Input | None, what: str) -> _Input:
    # An input the metric cannot do without: an empty one is a manifest this engine cannot
    # read, and `_metric` lists the metric as unsupported.
    if item is None:
        raise ValueError(f"{what} is empty")
    return item


def _metric(raw: dict[str, Any]) -> Metric:
    try:
        return _read_metric(raw)
    except (ValueError, KeyError) as exc:
        # A granularity or option this engine does not know (a custom granularity in a
        # window, a sub-daily grain): the metric is listed, and a query of it is refused.
        reason = str(exc.args[0]) if isinstance(exc, ValueError) and exc.args else repr(exc)
        return Metric(
            name=raw["name"],
            type=MetricType(raw["type"]),
            label=raw.get("label") or raw["name"],
            description=raw.get("description") or "",
            unsupported=f"metric {raw['name']!r} uses what northstar cannot answer yet: {reason}",
        )


def _read_metric(raw: dict[str, Any]) -> Metric:
    params = raw.get("type_params") or {}
    cumulative = params.get("cumulative_type_params") or {}
    meta = dict((raw.get("config") or {}).get("meta") or {})
    meta.update(raw.get("meta") or {})
    return Metric(
        name=raw["name"],
        type=MetricType(raw["type"]),
        label=raw.get("label") or raw["name"],
        description=raw.get("description") or "",
        filters=_filters(raw.get("filter")),
        measure=_measure_input(params.get("measure")),
        numerator=_metric_input(params.get("numerator")),
        denominator=_metric_input(params.get("denominator")),
        expr=params.get("expr"),
        inputs=tuple(_required(_metric_input(m), "an input metric") for m in params.get("metrics") or []),
        window=_window(cumulative.get("window") or params.get("window")),
        grain_to_date=_grain(cumulative.get("grain_to_date") or params.get("grain_to_date")),
        period_agg=PeriodAgg(cumulative.get("period_agg") or "first"),
        conversion=_conversion(params.get("conversion_type_params")),
        meta=meta,
    )


def _conversion(raw: dict[str, Any] | None) -> ConversionParams | None:
    if not raw:
        return None
    return ConversionParams(
        base_measure=_required(_measure_input(raw["base_measure"]), "the base measure"),
        conversion_measure=_required(_measure_input(raw["conversion_measure"]), "the conversion measure"),
        entity=raw["entity"],
        calculation=raw.get("calculation") or "conversion_rate",
        window=_window(raw.get("window")),
        constant_properties=tuple(
            (p["base_property"], p["conversion_property"]) for p in raw.get("constant_properties") or ()
        ),
    )


_CALL = re.compile(r"^\s*(?:TimeDimension|Dimension|Entity)\(\s*'([^']+)'(?:\s*,\s*'([^']+)')?\s*\)")


def _group_by_item(text: str) -> str:
    """`TimeDimension('metric_time', 'week')` -> `metric_time__week`, `Dimension('user__country')`
    -> `user__country`; a plain name passes through."""
    stripped = text.replace("{{", "").replace("}}", "").strip()
    match = _CALL.match(stripped)
    if not match:
        return stripped
    name, grain = match.groups()
    return f"{name}__{grain}" if grain else name


def _saved_query(raw: dict[str, Any]) -> SavedQuery:
    params = raw.get("query_params") or {}
    return SavedQuery(
        name=raw["name"],
        description=raw.get("description"),
        label=raw.get("label"),
        metrics=tuple(params.get("metrics") or ()),
        group_by=tuple(_group_by_item(g) for g in params.get("group_by") or ()),
        where=_filters(params.get("where")),
    )
