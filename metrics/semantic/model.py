"""Frozen dataclasses for the dbt semantic-layer definitions the engine answers from.

They mirror dbt's `semantic_manifest.json` (semantic models, measures, metrics, saved
queries) but keep only what query planning needs, already normalised: lower-case enum
strings, expressions defaulted to the column of the same name, filters as raw templates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Grain(enum.Enum):
    """Time granularities a time dimension can be bucketed at, finest first."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def rank(self) -> int:
        return _GRAIN_ORDER.index(self)

    @classmethod
    def parse(cls, text: str) -> Grain | None:
        try:
            return cls(text.lower())
        except ValueError:
            return None


_GRAIN_ORDER = [Grain.DAY, Grain.WEEK, Grain.MONTH, Grain.QUARTER, Grain.YEAR]
GRAINS: tuple[Grain, ...] = tuple(_GRAIN_ORDER)


class EntityType(enum.Enum):
    PRIMARY = "primary"
    UNIQUE = "unique"
    FOREIGN = "foreign"
    NATURAL = "natural"


class Agg(enum.Enum):
    SUM = "sum"
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    SUM_BOOLEAN = "sum_boolean"
    AVERAGE = "average"
    MIN = "min"
    MAX = "max"
    MEDIAN = "median"
    PERCENTILE = "percentile"

    @property
    def is_additive(self) -> bool:
        """Whether partial aggregates of this kind can be summed into a total."""
        return self in (Agg.SUM, Agg.COUNT, Agg.SUM_BOOLEAN)


class MetricType(enum.Enum):
    SIMPLE = "simple"
    RATIO = "ratio"
    DERIVED = "derived"
    CUMULATIVE = "cumulative"
    CONVERSION = "conversion"


@dataclass(frozen=True)
class Entity:
    name: str
    type: EntityType
    expr: str


@dataclass(frozen=True)
class Dimension:
    name: str
    is_time: bool
    expr: str
    time_granularity: Grain | None = None
    label: str | None = None
    description: str | None = None
    # "start" or "end" for the validity window of a slowly changing dimension (SCD type II).
    validity: str | None = None


@dataclass(frozen=True)
class NonAdditive:
    """A semi-additive measure (a balance, a headcount): within each bucket only the rows at
    the latest (`max`) or earliest (`min`) value of `dimension` count, per `groupings`."""

    dimension: str
    window_choice: str
    groupings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measure:
    name: str
    agg: Agg
    expr: str
    semantic_model: str
    agg_time_dimension: str
    percentile: float | None = None
    use_discrete_percentile: bool = False
    description: str | None = None
    non_additive: NonAdditive | None = None


@dataclass(frozen=True)
class Relation:
    """Where a semantic model's rows live in the warehouse (the database is left out on
    purpose: a DuckDB build is opened under whatever file name it was swapped in as)."""

    schema: str
    table: str


@dataclass(frozen=True)
class SemanticModel:
    name: str
    relation: Relation
    entities: tuple[Entity, ...]
    dimensions: tuple[Dimension, ...]
    measures: tuple[Measure, ...]
    primary_entity: str | None
    default_agg_time_dimension: str | None
    description: str | None = None
    label: str | None = None
    dbt_model: str | None = None

    def entity(self, name: str) -> Entity | None:
        return next((e for e in self.entities if e.name == name), None)

    def dimension(self, name: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.name == name), None)

    def property_expr(self, name: str) -> str | None:
        """The column expression of a dimension or entity named `name` (a conversion metric's
        constant property), optionally prefixed by the model's primary entity."""
        prefix = f"{self.primary_entity}__" if self.primary_entity else None
        bare = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        found = self.dimension(bare) or self.entity(bare)
        return found.expr if found is not None else None

    @property
    def validity(self) -> tuple[Dimension, Dimension] | None:
        """The (start, end) dimensions of an SCD type II model's validity window."""
        start = next((d for d in self.dimensions if d.validity == "start"), None)
        end = next((d for d in self.dimensions if d.validity == "end"), None)
        return (start, end) if start and end else None

    @property
    def identity_entities(self) -> tuple[Entity, ...]:
        """Entities with at most one row per value here (a natural key of an SCD model has at
        most one row per value at any instant): safe join targets (no fan-out)."""
        kinds = (EntityType.PRIMARY, EntityType.UNIQUE) + ((EntityType.NATURAL,) if self.validity else ())
        return tuple(e for e in self.entities if e.type in kinds)


@dataclass(frozen=True)
class Window:
    """A span of time such as `7 days` or `1 month` (cumulative windows, offsets)."""

    count: int
    grain: Grain

    def __str__(self) -> str:
        return f"{self.count} {self.grain.value}{'s' if self.count != 1 else ''}"

    @classmethod
    def parse(cls, count: int, granularity: str) -> Window:
        """`Window.parse(7, "days")` -> 7 days.

        >>> str(Window.parse(7, "days"))
        '7 days'
        """
        text = granularity.lower().strip()
        grain = Grain.parse(text) or Grain.parse(text.removesuffix("s"))
        if grain is None:
            raise ValueError(
                f"a window or offset of granularity {granularity!r} (custom and sub-daily "
                "granularities are not supported yet)"
            )
        return cls(int(count), grain)


class PeriodAgg(enum.Enum):
    """How a cumulative metric's daily values become one value per coarser bucket."""

    FIRST = "first"
    LAST = "last"
    AVERAGE = "average"


@dataclass(frozen=True)
class MeasureInput:
    """A metric's use of a measure, with the options dbt lets a metric set on it."""

    name: str
    filters: tuple[str, ...] = ()
    alias: str | None = None
    fill_nulls_with: int | None = None
    join_to_timespine: bool = False


@dataclass(frozen=True)
class MetricInput:
    """A ratio's or derived metric's use of another metric."""

    name: str
    filters: tuple[str, ...] = ()
    alias: str | None = None
    offset_window: Window | None = None
    offset_to_grain: Grain | None = None


@dataclass(frozen=True)
class ConversionParams:
    """A conversion metric: base events converting into conversion events of the same
    entity within a window (`conversion_rate` = conversions / base, or `conversions`)."""

    base_measure: MeasureInput
    conversion_measure: MeasureInput
    entity: str
    calculation: str = "conversion_rate"
    window: Window | None = None
    constant_properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Metric:
    name: str
    type: MetricType
    label: str
    description: str
    filters: tuple[str, ...] = ()
    measure: MeasureInput | None = None
    numerator: MetricInput | None = None
    denominator: MetricInput | None = None
    expr: str | None = None
    inputs: tuple[MetricInput, ...] = ()
    window: Window | None = None
    grain_to_date: Grain | None = None
    period_agg: PeriodAgg = PeriodAgg.FIRST
    conversion: ConversionParams | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # A dbt semantic-layer feature the metric uses that northstar cannot answer yet.
    unsupported: str | None = None


@dataclass(frozen=True)
class SavedQuery:
    name: str
    description: str | None
    metrics: tuple[str, ...]
    group_by: tuple[str, ...]
    where: tuple[str, ...]
    label: str | None = None
