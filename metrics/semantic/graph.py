"""What each measure can be grouped and filtered by, and how a requested name resolves.

Joins follow entities the way the dbt semantic layer defines them: from a measure's semantic
model, across an entity, into another semantic model where that entity is `primary` or
`unique` (at most one row per key), up to two hops. Only such many-to-one (or one-to-one)
joins are ever taken, so a join can never fan out and double-count a measure.

Group-by names follow the dbt convention (`metric_time__week`, `user__country`,
`user__account__plan`, `event__event_ts__month`) and may be shortened to any trailing part
(`country`, `account__plan`) as long as one candidate is nearer (fewer joins) than every
other; otherwise the name is ambiguous and refused with the candidates listed.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from metrics.errors import (
    AmbiguousDimension,
    InternalError,
    UnknownDimension,
    UnsupportedFeature,
    did_you_mean,
)
from metrics.semantic.manifest import SemanticManifest
from metrics.semantic.model import GRAINS, Grain, Measure, SemanticModel

MAX_JOIN_HOPS = 2
_SUB_DAILY = ("hour", "minute", "second", "millisecond", "microsecond", "nanosecond")
METRIC_TIME = "metric_time"


class ItemKind(enum.Enum):
    METRIC_TIME = "metric_time"
    TIME = "time"
    CATEGORICAL = "categorical"
    ENTITY = "entity"


@dataclass(frozen=True)
class JoinStep:
    """Join the current model to `model` where `left_expr` (current side) = `right_expr`."""

    entity: str
    model: str
    left_expr: str
    right_expr: str
    # Joining an SCD type II model: the row valid at the measure's time,
    # start_expr <= time_expr < end_expr (an open end is null).
    time_expr: str | None = None
    start_expr: str | None = None
    end_expr: str | None = None


@dataclass(frozen=True)
class GroupByItem:
    """A column a measure can be sliced by, with the joins needed to reach it."""

    name: str
    kind: ItemKind
    model: str
    expr: str
    path: tuple[JoinStep, ...] = ()
    grain: Grain | None = None
    description: str | None = None
    label: str | None = None

    @property
    def hops(self) -> int:
        return len(self.path)

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.name.split("__"))

    @property
    def dimension_name(self) -> str:
        """The name without entity path or grain: `user__account__plan` -> `plan`."""
        parts = self.parts
        if self.has_grain_suffix:
            return parts[-2]
        return parts[-1]

    @property
    def has_grain_suffix(self) -> bool:
        return (
            self.kind in (ItemKind.TIME, ItemKind.METRIC_TIME)
            and self.grain is not None
            and len(self.parts) > 1
            and self.parts[-1] == self.grain.value
        )


@dataclass(frozen=True)
class SourceKey:
    """A measure's home: its semantic model and the time dimension metric_time maps to."""

    model: str
    agg_time_dimension: str


class SemanticGraph:
    """Indexes a `SemanticManifest` for fast resolution of group-by names per measure."""

    def __init__(self, manifest: SemanticManifest) -> None:
        self.manifest = manifest
        self.models = manifest.semantic_models
        self.measures: dict[str, Measure] = manifest.measures
        self._identity_models: dict[str, list[SemanticModel]] = {}
        for model in self.models.values():
            for entity in model.identity_entities:
                self._identity_models.setdefault(entity.name, []).append(model)
        self._items_cache: dict[SourceKey, dict[str, GroupByItem]] = {}
        self._resolve_cache: dict[tuple[SourceKey, str], GroupByItem] = {}

    def source_of(self, measure: Measure) -> SourceKey:
        return SourceKey(measure.semantic_model, measure.agg_time_dimension)

    # -- enumeration -------------------------------------------------------------------

    def items(self, source: SourceKey) -> dict[str, GroupByItem]:
        """Every group-by item reachable from a source, by its full dbt-style name."""
        cached = self._items_cache.get(source)
        if cached is None:
            cached = self._items_cache[source] = self._enumerate(source)
        return cached

    def _enumerate(self, source: SourceKey) -> dict[str, GroupByItem]:
        home = self.models[source.model]
        items: dict[str, GroupByItem] = {}

        def add(item: GroupByItem) -> None:
            # Keep the nearest way to reach a name (fewest joins).
            if item.name not in items or items[item.name].hops > item.hops:
                items[item.name] = item

        time_dim = home.dimension(source.agg_time_dimension)
        if time_dim is not None:
            finest = time_dim.time_granularity or Grain.DAY
            add(
                GroupByItem(
                    METRIC_TIME,
                    ItemKind.METRIC_TIME,
                    home.name,
                    time_dim.expr,
                    grain=finest,
                    description="The metric's own time, bucketed in UTC.",
                )
            )
            for grain in GRAINS:
                if grain.rank >= finest.rank:
                    add(
                        GroupByItem(
                            f"{METRIC_TIME}__{grain.value}",
                            ItemKind.METRIC_TIME,
                            home.name,
                            time_dim.expr,
                            grain=grain,
                            description=f"The metric's own time, by {grain.value} (UTC).",
                        )
                    )
        for entity in home.entities:
            add(GroupByItem(entity.name, ItemKind.ENTITY, home.name, entity.expr))

        local_prefix = home.primary_entity or home.name
        frontier: list[tuple[SemanticModel, tuple[JoinStep, ...], tuple[str, ...]]] = [(home, (), (local_prefix,))]
        visited = {home.name}
        for depth in range(MAX_JOIN_HOPS + 1):
            next_frontier = []
            for model, path, prefix in frontier:
                for item in self._dimension_items(model, path, prefix):
                    add(item)
                if depth == MAX_JOIN_HOPS:
                    continue
                for entity in model.entities:
                    for target in self._identity_models.get(entity.name, []):
                        if target.name in visited or target.name == model.name:
                            continue
                        right = target.entity(entity.name)
                        if right is None:  # _identity_models lists models by their own entities
                            raise InternalError(f"model {target.name!r} lost entity {entity.name!r}")
                        step = JoinStep(entity.name, target.name, entity.expr, right.expr)
                        if target.validity:
                            time_dim = home.dimension(source.agg_time_dimension)
                            if path or time_dim is None:
                                continue  # an SCD is joined at the measure's own time, directly
                            start, end = target.validity
                            step = JoinStep(
                                entity.name, target.name, entity.expr, right.expr, time_dim.expr, start.expr, end.expr
                            )
                        entity_prefix = prefix + (entity.name,) if path else (entity.name,)
                        next_frontier.append((target, path + (step,), entity_prefix))
            for model, _, _ in next_frontier:
                visited.add(model.name)
            frontier = next_frontier
        return items

    @staticmethod
    def _dimension_items(
        model: SemanticModel, path: tuple[JoinStep, ...], prefix: tuple[str, ...]
    ) -> Iterator[GroupByItem]:
        base = "__".join(prefix)
        if path:
            # The entities of a joined model (`listing__host`: the host of the booking's
            # listing), except the one it was joined on (that is the prefix itself).
            for entity in model.entities:
                if entity.name != path[-1].entity:
                    yield GroupByItem(f"{base}__{entity.name}", ItemKind.ENTITY, model.name, entity.expr, path)
        for dim in model.dimensions:
            if dim.is_time:
                finest = dim.time_granularity or Grain.DAY
                yield GroupByItem(
                    f"{base}__{dim.name}",
                    ItemKind.TIME,
                    model.name,
                    dim.expr,
                    path,
                    grain=finest,
                    description=dim.description,
                    label=dim.label,
                )
                for grain in GRAINS:
                    if grain.rank >= finest.rank:
                        yield GroupByItem(
                            f"{base}__{dim.name}__{grain.value}",
                            ItemKind.TIME,
                            model.name,
                            dim.expr,
                            path,
                            grain=grain,
                            description=dim.description,
                            label=dim.label,
                        )
            else:
                yield GroupByItem(
                    f"{base}__{dim.name}",
                    ItemKind.CATEGORICAL,
                    model.name,
                    dim.expr,
                    path,
                    description=dim.description,
                    label=dim.label,
                )

    # -- resolution --------------------------------------------------------------------

    def resolve(self, source: SourceKey, requested: str, *, metric: str, context: str | None = None) -> GroupByItem:
        """Resolve a requested group-by/filter name for one measure source.

        Raises:
            UnknownDimension: nothing reachable matches.
            AmbiguousDimension: two or more equally near items match.
        """
        key = (source, requested)
        context = context or f"metric '{metric}'"
        hit = self._resolve_cache.get(key)
        if hit is not None:
            return hit
        items = self.items(source)
        exact = items.get(requested)
        if exact is not None:
            self._resolve_cache[key] = exact
            return exact
        wanted = tuple(requested.split("__"))
        matches = [
            item for item in items.values() if item.parts[-len(wanted) :] == wanted and len(item.parts) > len(wanted)
        ]
        if not matches:
            self._refuse_unsupported(requested, metric)
            fan_out = self._fan_out_reason(source, wanted[-1])
            raise UnknownDimension(
                f"'{requested}' is not a dimension that {context} can be grouped or filtered by."
                + (fan_out or did_you_mean(requested, self.public_names(source))),
                field=requested,
                metric=metric,
                suggestions=sorted(self.public_names(source))[:50],
            )
        nearest_hops = min(m.hops for m in matches)
        nearest = [m for m in matches if m.hops == nearest_hops]
        if len(nearest) > 1:
            names = sorted(m.name for m in nearest)
            raise AmbiguousDimension(
                f"'{requested}' is ambiguous for {context}: it could be "
                + ", ".join(repr(n) for n in names)
                + ". Use one of the qualified names.",
                field=requested,
                metric=metric,
                candidates=names,
            )
        self._resolve_cache[key] = nearest[0]
        return nearest[0]

    def _refuse_unsupported(self, requested: str, metric: str) -> None:
        """Group-by names dbt's semantic layer accepts and northstar cannot answer yet."""
        parts = requested.split("__")
        last = parts[-1].lower()
        feature = None
        if len(parts) > 1 and last.startswith("extract_"):
            feature = f"date parts ('{last}')"
        elif len(parts) > 1 and last in self.manifest.custom_granularities:
            feature = f"custom granularities of the time spine ('{last}')"
        elif len(parts) > 1 and last in _SUB_DAILY:
            feature = f"sub-daily granularities ('{last}')"
        if feature:
            raise UnsupportedFeature(f"'{requested}': {feature} are not supported yet.", field=requested, metric=metric)

    def _fan_out_reason(self, source: SourceKey, dimension: str) -> str:
        """Explain when a dimension exists but only across a one-to-many join."""
        home = self.models[source.model]
        owners = [m for m in self.models.values() if m.name != home.name and m.dimension(dimension)]
        for owner in owners:
            shared = [e.name for e in home.entities if owner.entity(e.name) is not None]
            if shared:
                return (
                    f" It lives in semantic model '{owner.name}', which can have many rows per "
                    f"'{shared[0]}': joining it would fan out and count '{home.name}' rows more than once, "
                    "so northstar refuses it."
                )
        return ""

    def public_names(self, source: SourceKey) -> set[str]:
        """Full names plus every unambiguous short name, for catalogs and suggestions."""
        return set(self.short_names(source)) | set(self.items(source))

    def short_names(self, source: SourceKey) -> dict[str, GroupByItem]:
        """The shortest unambiguous name of each slice (`country` for `user__country`)."""
        return self._short_names(source)

    @cached_property
    def _short_cache(self) -> dict[SourceKey, dict[str, GroupByItem]]:
        return {}

    def _short_names(self, source: SourceKey) -> dict[str, GroupByItem]:
        cached = self._short_cache.get(source)
        if cached is not None:
            return cached
        by_short: dict[str, list[GroupByItem]] = {}
        for item in self.items(source).values():
            if item.kind in (ItemKind.CATEGORICAL, ItemKind.TIME):
                if item.has_grain_suffix and item.grain is not None:
                    short = f"{item.dimension_name}__{item.grain.value}"
                else:
                    short = item.dimension_name
                by_short.setdefault(short, []).append(item)
        result: dict[str, GroupByItem] = {}
        for short, candidates in by_short.items():
            best = min(c.hops for c in candidates)
            nearest = [c for c in candidates if c.hops == best]
            if len(nearest) == 1:
                result[short] = nearest[0]
        self._short_cache[source] = result
        return result
