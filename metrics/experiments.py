"""Experiments over the semantic layer: which metrics can be read out per user, the
experiments in the warehouse, and per-variant sufficient statistics (computed in SQL).

A metric is per-user computable when it is a simple metric whose measure lives in a semantic
model with a `user` entity (each user's value is that measure over the user's rows), or a
ratio of two such metrics (analysed with the delta method). The governed names of the HTTP
contract (`conversion`, `revenue_per_user`, `sessions_per_user`, `crashed`) are metrics that
carry `meta: {experiment_metric: <name>}` in the dbt project; `lower_is_better: true` marks
guardrails.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from metrics.errors import (
    InternalError,
    InvalidQuery,
    MetricsError,
    NotFound,
    UnknownMetric,
    WarehouseUnavailable,
    did_you_mean,
    nearest,
)
from metrics.experiment_design import (
    decide,
    guardrail_fails,
    read_settings_meta,
    resolve_settings,
    users_per_arm_for,
)
from metrics.lru import Lru
from metrics.query.request import Filter
from metrics.semantic.graph import ItemKind
from metrics.semantic.model import Agg, Metric, MetricType, Relation
from metrics.sql.experiments import (
    ExperimentSql,
    ExperimentTables,
    PerUserMeasure,
    Population,
)
from metrics.sql.trees import RenderedQuery
from metrics.stats.comparison import compare_variant
from metrics.stats.correction import CorrectionMethod, adjust_p_values
from metrics.stats.srm import check_srm
from metrics.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)

if TYPE_CHECKING:
    from metrics.engine import MetricsEngine

USER_ENTITY = "user"
# A build materializes every experiment's per-user values here (see `per_user_table_sql`),
# with the CUPED pre-period of the default length; readouts that fit sum this table.
PER_USER_TABLE = Relation("northstar", "experiment_user_values")
PER_USER_PRE_DAYS = 14
_PER_USER_AGGS = (Agg.SUM, Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM_BOOLEAN, Agg.MIN, Agg.MAX)


@dataclass(frozen=True)
class ExperimentMetric:
    """A metric as experiments read it: one per-user value, or a ratio of two."""

    name: str
    metric: str
    description: str
    values: tuple[PerUserMeasure, ...]
    lower_is_better: bool = False
    nonnegative: bool = False  # meta `nonnegative: true`: per-user values are never below 0

    @property
    def is_ratio(self) -> bool:
        return len(self.values) == 2


@dataclass(frozen=True)
class Variant:
    name: str
    users: int
    users_in_several_variants: int


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    control_variant: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    variants: tuple[Variant, ...]
    feature_key: str | None = None

    @property
    def status(self) -> str:
        return "running" if self.ended_at is None else "ended"

    @property
    def users(self) -> int:
        return sum(v.users for v in self.variants)


@dataclass(frozen=True)
class StatisticsPlan:
    """The per-user values one statistics statement computes for a list of metrics.

    Attributes:
        values: Distinct per-user values; column `x{i}` is `values[i]`.
        positions: For each metric, the indices of its values (one, or numerator and
            denominator of a ratio).
        pre: Indices whose pre-assignment twin `pre{i}` is computed (CUPED).
        products: Index pairs whose cross-product sum `x{a}_x{b}_sum` is computed (ratios).
    """

    values: tuple[PerUserMeasure, ...]
    positions: tuple[tuple[int, ...], ...]
    pre: tuple[int, ...]
    products: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class VariantStatistics:
    """Sufficient statistics of one variant (and slice): `sums` holds the columns of
    `ExperimentSql.sufficient_statistics` (`x{i}_sum`, `x{i}_sum_sq`, `pre{i}_sum`, ...) for
    the per-user values of a `StatisticsPlan`."""

    variant: str
    slice: tuple[Any, ...]
    n: int
    sums: dict[str, float]


class Experiments:
    """Experiment catalog and sufficient statistics for one engine (one build)."""

    def __init__(self, engine: MetricsEngine, cache_size: int = 256, population: Population | None = None) -> None:
        self.engine = engine
        # Only these users count (a caller's row-level policy); None: every assigned user.
        self.population = population
        self._restricted: dict[tuple[Filter, ...], Experiments] = {}
        self.sql = ExperimentSql(engine.renderer, ExperimentTables.in_schema(engine.schema("marts")))
        self._metrics: dict[str, ExperimentMetric] | None = None
        # A build never changes, so its experiment catalog is read once and a readout, once
        # computed, is the answer for as long as this engine (this build) is served.
        self._catalog: list[Experiment] | None = None
        self._readouts: Lru[tuple, Readout] = Lru(cache_size)
        self._statistics: Lru[tuple, list[VariantStatistics]] = Lru(cache_size)
        self._lock = threading.Lock()
        self._materialized: frozenset[str] | None = None
        self._settings_meta: dict[str, Any] | None = None

    # -- metrics -------------------------------------------------------------------------

    def metrics(self) -> dict[str, ExperimentMetric]:
        if self._metrics is None:
            found: dict[str, ExperimentMetric] = {}
            for metric in self.engine.manifest.metrics.values():
                resolved = self._resolve(metric)
                if resolved is not None:
                    found[resolved.name] = resolved
                    if resolved.name != metric.name:
                        found.setdefault(metric.name, resolved)
            self._metrics = dict(sorted(found.items()))
        return self._metrics

    def metric(self, name: str) -> ExperimentMetric:
        metrics = self.metrics()
        if name not in metrics:
            raise UnknownMetric(
                f"{name!r} cannot be analysed per user in experiments." + did_you_mean(name, metrics),
                metric=name,
                suggestions=nearest(name, metrics) or sorted(metrics),
            )
        return metrics[name]

    def _resolve(self, metric: Metric) -> ExperimentMetric | None:
        alias = metric.meta.get("experiment_metric") or metric.name
        lower = bool(metric.meta.get("lower_is_better"))
        nonnegative = bool(metric.meta.get("nonnegative"))
        if metric.type is MetricType.SIMPLE:
            value = self._per_user(metric)
            return (
                ExperimentMetric(alias, metric.name, metric.description, (value,), lower, nonnegative)
                if value
                else None
            )
        numerator, denominator = metric.numerator, metric.denominator
        if metric.type is MetricType.RATIO and not metric.filters and numerator and denominator:
            parts = [self.engine.manifest.metrics.get(m.name) for m in (numerator, denominator)]
            values = [
                v
                for p in parts
                if p is not None and p.type is MetricType.SIMPLE and (v := self._per_user(p)) is not None
            ]
            if len(values) == 2 and not numerator.filters and not denominator.filters:
                return ExperimentMetric(alias, metric.name, metric.description, tuple(values), lower, nonnegative)
        return None

    def _per_user(self, metric: Metric) -> PerUserMeasure | None:
        if metric.filters or metric.measure is None or metric.measure.filters:
            return None
        measure = self.engine.graph.measures.get(metric.measure.name)
        if measure is None or measure.agg not in _PER_USER_AGGS:
            return None
        model = self.engine.graph.models[measure.semantic_model]
        user = model.entity(USER_ENTITY)
        time_dim = model.dimension(measure.agg_time_dimension)
        if user is None or time_dim is None:
            return None
        return PerUserMeasure(measure, model, user.expr, time_dim.expr)

    def entry_measure(self, model) -> PerUserMeasure | None:
        """A per-user measure of `model` (any of its measures, at the model's default time):
        where a plan's eligible users are first seen."""
        user = model.entity(USER_ENTITY)
        measure = next(iter(model.measures), None)
        time_name = (measure.agg_time_dimension if measure else None) or model.default_agg_time_dimension
        time_dim = model.dimension(time_name) if time_name else None
        if user is None or time_dim is None or measure is None:
            return None
        measure = self.engine.graph.measures.get(measure.name, measure)
        return PerUserMeasure(measure, model, user.expr, time_dim.expr)

    # -- governed settings (metric roles, guardrails, planned size) -------------------------------

    def settings_meta(self) -> dict[str, Any]:
        if self._settings_meta is None:
            self._settings_meta = read_settings_meta(self.engine.build.directory)
        return self._settings_meta

    def settings(self, experiment_id: str):
        """The experiment's settings from the dbt project (metric roles, guardrails, plan)."""
        experiment = self.experiment(experiment_id)
        return resolve_settings(self.settings_meta(), experiment_id, experiment.feature_key, self.metrics())

    # -- experiments -----------------------------------------------------------------------

    def experiments(self) -> list[Experiment]:
        if self._catalog is None:
            self._catalog = self._read_catalog()
        return self._catalog

    def restricted(self, filters: tuple[Filter, ...]) -> Experiments:
        """These experiments as a caller restricted to the users passing `filters` sees them:
        catalog counts and readouts over those users only, with caches of their own.

        Raises:
            UnknownDimension, AmbiguousDimension: a filter is not an attribute of the user.
        """
        with self._lock:
            hit = self._restricted.get(filters)
        if hit is not None:
            return hit
        users = self._users_model()
        source = self._users_source(users)
        population = Population(
            users,
            tuple(
                (
                    self.engine.graph.resolve(
                        source, f.field, metric="experiment readouts", context="a user in experiment readouts"
                    ),
                    f,
                )
                for f in filters
            ),
        )
        restricted = Experiments(self.engine, self._readouts.size, population)
        with self._lock:
            return self._restricted.setdefault(filters, restricted)

    def _read_catalog(self) -> list[Experiment]:
        rendered = self.sql.catalog(self.population)
        try:
            rows = self.engine.client.query(rendered.sql, rendered.params).rows
        except WarehouseUnavailable:
            raise
        except InternalError as exc:  # the warehouse refused the statement: it has no experiment marts
            raise NotFound("this warehouse has no experiments.", internal=exc.internal or exc.message) from None
        by_id: dict[str, dict[str, Any]] = {}
        for experiment_id, name, control, started, ended, feature, variant, users, multi in rows:
            entry = by_id.setdefault(
                experiment_id,
                {
                    "name": name,
                    "control": control,
                    "started": started,
                    "ended": ended,
                    "feature": feature,
                    "variants": [],
                },
            )
            if variant is not None:
                entry["variants"].append(Variant(variant, int(users), int(multi or 0)))
        return [
            Experiment(i, e["name"], e["control"], e["started"], e["ended"], tuple(e["variants"]), e["feature"])
            for i, e in by_id.items()
        ]

    def experiment(self, experiment_id: str) -> Experiment:
        experiments = {e.experiment_id: e for e in self.experiments()}
        if experiment_id not in experiments:
            raise NotFound(
                f"unknown experiment {experiment_id!r}." + did_you_mean(experiment_id, experiments),
                experiment_id=experiment_id,
                suggestions=sorted(experiments),
            )
        return experiments[experiment_id]

    def plan(self, metrics: list[ExperimentMetric], *, cuped: bool) -> StatisticsPlan:
        """The distinct per-user values `metrics` need (a value shared by two metrics, such as
        revenue in `revenue_per_user` and `arpu`, is computed once)."""
        values: list[PerUserMeasure] = []
        index: dict[tuple[str, str], int] = {}
        positions = []
        for metric in metrics:
            at = []
            for value in metric.values:
                key = (value.model.name, value.measure.name)
                if key not in index:
                    index[key] = len(values)
                    values.append(value)
                at.append(index[key])
            positions.append(tuple(at))
        pre = tuple(sorted({p[0] for m, p in zip(metrics, positions) if cuped and not m.is_ratio}))
        products = tuple(sorted({(p[0], p[1]) for m, p in zip(metrics, positions) if m.is_ratio}))
        return StatisticsPlan(tuple(values), tuple(positions), pre, products)

    def statistics_sql(
        self,
        experiment: Experiment,
        metrics: list[ExperimentMetric],
        *,
        pre_days: int | None = None,
        group_by: tuple[str, ...] = (),
    ) -> RenderedQuery:
        """The one statement that returns every sufficient statistic of `metrics`."""
        plan = self.plan(metrics, cuped=bool(pre_days))
        return self.sql.sufficient_statistics(
            experiment.experiment_id,
            list(plan.values),
            [self._data_end(v) for v in plan.values],
            pre_days,
            self._slices(group_by),
            pre_values=plan.pre,
            products=plan.products,
            population=self.population,
        )

    def statistics(
        self,
        experiment: Experiment,
        metrics: list[ExperimentMetric],
        *,
        pre_days: int | None = None,
        group_by: tuple[str, ...] = (),
        use_cache: bool = True,
    ) -> tuple[StatisticsPlan, list[VariantStatistics]]:
        """Per-variant (and per-slice) sufficient statistics of every metric, from one SQL
        statement (one pass over each semantic model's table)."""
        plan = self.plan(metrics, cuped=bool(pre_days))
        # Readouts that differ only in how they analyse (alpha, correction, sequential) share
        # their sufficient statistics; the statement is the expensive part.
        key = (
            experiment.experiment_id,
            tuple((v.model.name, v.measure.name) for v in plan.values),
            plan.pre,
            plan.products,
            pre_days if plan.pre else None,
            tuple(group_by),
        )
        hit = self._statistics.get(key) if use_cache else None
        if hit is not None:
            return plan, hit
        rendered = self._statistics_from_table(experiment, plan, pre_days, group_by) or self.statistics_sql(
            experiment, metrics, pre_days=pre_days, group_by=group_by
        )
        result = self.engine.client.query(rendered.sql, rendered.params)
        names = [c.name for c in result.columns]
        out = []
        width = 1 + len(group_by)
        for row in result.rows:
            values = dict(zip(names, row))
            sums = {k: float(v or 0) for k, v in values.items() if k not in names[:width] and k != "n"}
            out.append(VariantStatistics(row[0], tuple(row[1:width]), int(values["n"]), sums))
        self._statistics.put(key, out)
        return plan, out

    # -- per-user values materialized by the build ----------------------------------------------

    def per_user_table_sql(self) -> RenderedQuery | None:
        """The SELECT of every experiment's per-user values for every analysable metric (with
        their pre-period twins), which `northstar build` stores as `PER_USER_TABLE`: the join of
        assignments to events is paid once per build instead of once per readout."""
        values: dict[tuple[str, str], PerUserMeasure] = {}
        for metric in self.metrics().values():
            for value in metric.values:
                values.setdefault((value.model.name, value.measure.name), value)
        if not values:
            return None
        ordered = list(values.values())
        slices = self._table_slices()
        return self.sql.per_user_table(
            ordered,
            [_value_column("x", v) for v in ordered],
            [_value_column("pre", v) for v in ordered],
            [self._data_end(v) for v in ordered],
            PER_USER_PRE_DAYS,
            slices,
            [_slice_column(item) for item, _, _ in slices],
        )

    def _table_slices(self):
        """The user attributes the per-user table carries as columns: every `readout_slices` of
        the experiment settings (defaults, features, experiments) and every categorical
        dimension of the users model itself, so a readout sliced by any of them sums the table
        (at 10M assignments a join to the users model costs seconds, a stored column 0.3 s).
        Attributes reached through another model (`account__industry`) are joined at readout
        time. Names that do not resolve to a user attribute are left to the readouts, which say
        what is wrong."""
        meta = self.settings_meta()
        layers = [
            meta.get("defaults") or {},
            *(meta.get("features") or {}).values(),
            *(meta.get("experiments") or {}).values(),
        ]
        names = list(dict.fromkeys(str(n) for layer in layers for n in layer.get("readout_slices") or ()))
        resolved = []
        for name in names:
            try:
                resolved.append(self._slices((name,))[0])
            except MetricsError:
                continue
        try:
            users = self._users_model()
            source = self._users_source(users)
        except MetricsError:  # no users model: nothing to slice by
            users = None
        if users is not None:
            resolved += [
                (item, users, "")
                for item in self.engine.graph.items(source).values()
                if item.kind is ItemKind.CATEGORICAL and item.model == users.name and not item.path
            ]
        unique = {_slice_column(item): (item, users) for item, users, _ in resolved}
        return [(item, users, f"s{i}") for i, (item, users) in enumerate(unique.values())]

    def _materialized_columns(self) -> frozenset[str]:
        if self._materialized is None:
            rendered = self.sql.table_columns(PER_USER_TABLE)
            try:
                rows = self.engine.client.query(rendered.sql, rendered.params).rows
            except Exception:  # a warehouse without it answers from the assignments directly
                rows = []
            self._materialized = frozenset(r[0] for r in rows)
        return self._materialized

    def _statistics_from_table(
        self, experiment: Experiment, plan: StatisticsPlan, pre_days: int | None, group_by: tuple[str, ...]
    ) -> RenderedQuery | None:
        """The statistics statement over the build's per-user table, when it holds what the
        readout needs (the values, and their pre-period of the same length); else None. A slice
        the table has no column for (not a `readout_slices` of the settings) is read from the
        users model, joined on the user id as the direct statement does: at 10M assignments the
        direct statement runs out of memory where this sums the table."""
        available = self._materialized_columns()
        if not available or (plan.pre and pre_days != PER_USER_PRE_DAYS):
            return None
        columns = [_value_column("x", v) for v in plan.values]
        pre_columns = {i: _value_column("pre", plan.values[i]) for i in plan.pre}
        if not set(columns) | set(pre_columns.values()) <= available:
            return None
        slices = self._slices(group_by)
        stored = [_slice_column(item) if _slice_column(item) in available else None for item, _, _ in slices]
        return self.sql.statistics_from_table(
            PER_USER_TABLE,
            experiment.experiment_id,
            columns,
            pre_columns,
            plan.products,
            self.population,
            stored,
            [s for s, column in zip(slices, stored) if column is None],
        )

    # -- readout cache -------------------------------------------------------------------------

    def cached_readout(self, key: tuple) -> Readout | None:
        return self._readouts.get(key)

    def remember_readout(self, key: tuple, readout: Readout) -> None:
        self._readouts.put(key, readout)

    def _data_end(self, value: PerUserMeasure) -> dt.datetime | None:
        """The end of the data, for running experiments: just after the newest time of the
        value's input."""
        latest = self.engine._newest_time(self.engine.graph.source_of(value.measure))
        if latest is None:
            return None
        if isinstance(latest, dt.datetime):
            return latest + dt.timedelta(microseconds=1)
        return dt.datetime.combine(latest, dt.time()) + dt.timedelta(days=1)

    def _users_model(self):
        """The semantic model whose primary entity is the user: where user attributes live."""
        users = next(
            (
                m
                for m in self.engine.graph.models.values()
                if m.primary_entity == USER_ENTITY
                or any(e.name == USER_ENTITY and e.type.value == "primary" for e in m.entities)
            ),
            None,
        )
        if users is None:
            raise InvalidQuery(
                "readouts can only be sliced or restricted by user attributes when a semantic "
                "model has the user as primary entity."
            )
        return users

    def _users_source(self, users):
        source = next((self.engine.graph.source_of(m) for m in users.measures), None)
        if source is None:
            raise InvalidQuery(f"semantic model {users.name!r} has no measure to slice readouts by.")
        return source

    def _slices(self, group_by: tuple[str, ...]):
        if not group_by:
            return []
        users = self._users_model()
        source = self._users_source(users)
        return [
            (self.engine.graph.resolve(source, name, metric="experiment readouts"), users, f"s{i}")
            for i, name in enumerate(group_by)
        ]


def _slice_column(item) -> str:
    """`slice__<item>`: a user attribute's column in `PER_USER_TABLE`."""
    return re.sub(r"\W", "_", f"slice__{item.name}").lower()


def _value_column(prefix: str, value: PerUserMeasure) -> str:
    """`x__<model>__<measure>` (or `pre__...`): a per-user value's column in `PER_USER_TABLE`."""
    return re.sub(r"\W", "_", f"{prefix}__{value.model.name}__{value.measure.name}").lower()


# -- readouts --------------------------------------------------------------------------------

MIN_USERS_PER_VARIANT = 100
# More slices than this are refused: each adds a test, and the correction across them leaves
# little power to any (and the answer would be a wall of rows nobody reads).
MAX_SLICES = 200
SLICE_CORRECTION: CorrectionMethod = "holm-bonferroni"


@dataclass(frozen=True)
class ReadoutOptions:
    cuped: bool = True
    pre_days: int = 14
    correction: CorrectionMethod | None = None
    sequential: bool = False
    alpha: float = 0.05


@dataclass(frozen=True)
class ReadoutRow:
    """One metric x variant (x slice). `comparison` is the contract's test on the plain
    per-user values; `cuped` the same test regression-adjusted on the pre-period, when asked."""

    metric: str
    variant: str
    slice: dict[str, Any]
    comparison: Any  # metrics.stats.results.VariantComparison
    adjusted_p_value: float | None
    verdict: str
    flags: tuple[str, ...]
    cuped: Any = None  # metrics.stats.results.VariantComparison | None
    withheld: str | None = None  # why no verdict is given (too few users, SRM), in words
    role: str | None = None  # goal | secondary | guardrail (the experiment's settings), or None
    slice_adjusted_p_value: float | None = None  # corrected across the slices of its metric and variant


@dataclass(frozen=True)
class Readout:
    experiment: Experiment
    srm: Any  # metrics.stats.results.SrmResult
    rows: tuple[ReadoutRow, ...]
    options: ReadoutOptions
    group_by: tuple[str, ...]
    build_id: str = ""
    cached: bool = False
    elapsed_ms: float = 0.0
    decisions: tuple = ()  # metrics.experiment_design.Decision per variant
    settings: Any = None  # metrics.experiment_design.ExperimentSettings


def _statistic(kind: str, n: int, total: float, squares: float):
    if kind == "binomial":
        return ProportionStatistic(n=n, sum=total)
    return SampleMeanStatistic(n=n, sum=total, sum_squares=squares)


def metric_kind(metric: ExperimentMetric) -> str:
    """`binomial` for 0/1 per-user values (a distinct count of the user itself), else `mean`."""
    value = metric.values[0]
    if not metric.is_ratio and value.measure.agg is Agg.COUNT_DISTINCT and value.user_expr in value.measure.expr:
        return "binomial"
    return "ratio" if metric.is_ratio else "mean"


# Aggregations whose per-user value cannot be negative (a sum can: revenue nets refunds).
_NONNEGATIVE_AGGS = (Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM_BOOLEAN)


def is_nonnegative(metric: ExperimentMetric) -> bool:
    """Whether every per-user value of the metric is >= 0, so that its relative lift cannot be
    below -100%: counts, distinct counts and 0/1 outcomes (and ratios of them), or a metric
    whose meta says `nonnegative: true`."""
    return all(value.measure.agg in _NONNEGATIVE_AGGS for value in metric.values) or metric.nonnegative


def readout_flags(
    comparison, cuped, srm, control_users: int, variant_users: int, control_name: str, variant_name: str
) -> tuple[list[str], str | None]:
    """The flags of one readout row and, when its verdict must be withheld, why (in words).

    A row is not judged when a variant of the slice has fewer than `MIN_USERS_PER_VARIANT`
    users (`too_few_users`) or the experiment's assignment fails the sample ratio check
    (`srm`): its numbers are still given, but no "significant" is said of them. The error code
    of a test that could not run goes here in lower case (the verdict says it in words);
    `relative_ci_bounded`, `tests_disagree` and `cuped_differs` name what the reader should
    know about the intervals; `guardrail_regression` a judged, significant rise of a metric
    where lower is better.
    """
    flags: list[str] = []
    reasons: list[str] = []
    if srm.mismatch:
        flags.append("srm")
        reasons.append(
            f"users did not split between the variants as planned (sample ratio mismatch, p = {srm.p_value:.2g})"
        )
    if min(control_users, variant_users) < MIN_USERS_PER_VARIANT:
        flags.append("too_few_users")
        reasons.append(
            f"only {control_users} users in {control_name} and {variant_users} in {variant_name}, "
            f"fewer than {MIN_USERS_PER_VARIANT} per variant"
        )
    if comparison.error is not None:
        flags.append(comparison.error.lower())
    if comparison.relative_ci_bounded:
        flags.append("relative_ci_bounded")
    if comparison.tests_disagree:
        flags.append("tests_disagree")
    if cuped is not None and cuped.conclusion != comparison.conclusion:
        flags.append("cuped_differs")
    if (
        comparison.lower_is_better
        and not reasons
        and comparison.conclusion == "significant"
        and (comparison.relative_lift or 0) > 0
    ):
        flags.append("guardrail_regression")
    return flags, ("; ".join(reasons) or None)


def readout_key(
    experiments: Experiments,
    experiment_id: str,
    metric_names: tuple[str, ...],
    group_by: tuple[str, ...],
    options: ReadoutOptions,
) -> tuple:
    """The cache key of a readout: the request with names resolved (an alias and its metric
    give the same key) and options that do not change the answer dropped (`pre_days`
    without CUPED)."""
    metrics = tuple(experiments.metric(name).name for name in metric_names)
    if not options.cuped:
        options = replace(options, pre_days=0)
    return experiment_id, metrics, tuple(group_by), options


def build_readout(
    experiments: Experiments,
    experiment_id: str,
    metric_names: tuple[str, ...],
    group_by: tuple[str, ...] = (),
    options: ReadoutOptions = ReadoutOptions(),
    *,
    use_cache: bool = True,
) -> Readout:
    """Read out an experiment: per metric, variant and slice, every statistic of the contract.

    Readouts are cached per build (an `Experiments` belongs to one engine, i.e. one build); a
    cached answer comes back with `cached=True`.
    """
    started = time.perf_counter()
    experiment = experiments.experiment(experiment_id)
    if not metric_names:
        raise InvalidQuery(
            "a readout needs at least one metric; choose from " + ", ".join(sorted(experiments.metrics())) + "."
        )
    key = readout_key(experiments, experiment_id, metric_names, group_by, options)
    if use_cache:
        hit = experiments.cached_readout(key)
        if hit is not None:
            return replace(hit, cached=True, elapsed_ms=(time.perf_counter() - started) * 1000)
    variants = [v for v in experiment.variants if v.name == experiment.control_variant]
    variants += [v for v in experiment.variants if v.name != experiment.control_variant]
    if not variants or variants[0].name != experiment.control_variant:
        raise InvalidQuery(
            f"experiment {experiment_id!r} has no users in its control arm {experiment.control_variant!r}."
        )
    srm = check_srm([v.users for v in variants])
    metrics = [experiments.metric(name) for name in metric_names]
    settings = experiments.settings(experiment_id)
    plan, stats = experiments.statistics(
        experiment,
        metrics,
        pre_days=options.pre_days if options.cuped else None,
        group_by=group_by,
        use_cache=use_cache,
    )
    by_slice: dict[tuple, dict[str, VariantStatistics]] = {}
    # Slices in one order on every engine: by value, nulls last (Spark sorts nulls first).
    for stat in sorted(stats, key=lambda s: tuple((v is None, v if v is not None else "") for v in s.slice)):
        by_slice.setdefault(stat.slice, {})[stat.variant] = stat
    if group_by and len(by_slice) > MAX_SLICES:
        raise InvalidQuery(
            f"group_by {','.join(group_by)} splits experiment {experiment_id!r} into {len(by_slice)} slices, more "
            f"than the {MAX_SLICES} a readout compares (each slice is one more test, and the correction across them "
            "leaves little power to any); slice by fewer or coarser user attributes.",
            field="group_by",
            slices=len(by_slice),
            limit=MAX_SLICES,
        )
    rows: list[ReadoutRow] = []
    for metric, at in zip(metrics, plan.positions):
        kind = metric_kind(metric)
        nonnegative = is_nonnegative(metric)
        guardrail = settings.guardrail(metric.name)
        lower_is_better = guardrail.lower_is_better if guardrail else metric.lower_is_better
        use_cuped = at[0] in plan.pre
        for slice_values, arms in by_slice.items():
            control = arms.get(experiment.control_variant)
            if control is None:
                continue
            for variant in variants[1:]:
                treated = arms.get(variant.name)
                if treated is None:
                    continue
                plain, adjusted = [], []
                for arm in (control, treated):
                    s = arm.sums
                    if metric.is_ratio:
                        a, b = at
                        plain.append(
                            RatioStatistic(
                                m_statistic=SampleMeanStatistic(
                                    n=arm.n, sum=s[f"x{a}_sum"], sum_squares=s[f"x{a}_sum_sq"]
                                ),
                                d_statistic=SampleMeanStatistic(
                                    n=arm.n, sum=s[f"x{b}_sum"], sum_squares=s[f"x{b}_sum_sq"]
                                ),
                                m_d_sum_of_products=s[f"x{a}_x{b}_sum"],
                                n=arm.n,
                            )
                        )
                        continue
                    i = at[0]
                    plain.append(_statistic(kind, arm.n, s[f"x{i}_sum"], s[f"x{i}_sum_sq"]))
                    if use_cuped:
                        adjusted.append(
                            RegressionAdjustedStatistic(
                                post_statistic=_statistic(kind, arm.n, s[f"x{i}_sum"], s[f"x{i}_sum_sq"]),
                                pre_statistic=SampleMeanStatistic(
                                    n=arm.n, sum=s[f"pre{i}_sum"], sum_squares=s[f"pre{i}_sum_sq"]
                                ),
                                post_pre_sum_of_products=s[f"x{i}_pre{i}_sum"],
                                n=arm.n,
                            )
                        )

                def compare(pair):
                    return compare_variant(
                        pair[0],
                        pair[1],
                        alpha=options.alpha,
                        lower_is_better=lower_is_better,
                        sequential=options.sequential,
                        nonnegative=nonnegative,
                    )

                # The contract's numbers are the plain test; CUPED rides beside it.
                comparison = compare(plain)
                cuped = compare(adjusted) if adjusted else None
                flags, withheld = readout_flags(
                    comparison, cuped, srm, control.n, treated.n, experiment.control_variant, variant.name
                )
                if guardrail is not None and not withheld and _guardrail_fails(comparison, guardrail):
                    flags.append("guardrail_harm")
                rows.append(
                    ReadoutRow(
                        metric.name,
                        variant.name,
                        dict(zip(group_by, slice_values)),
                        comparison,
                        None,
                        comparison.verdict(metric.name, variant.name, withheld),
                        tuple(flags),
                        cuped,
                        withheld,
                        settings.role(metric.name),
                    )
                )
    if options.correction and rows:
        tested = [i for i, r in enumerate(rows) if r.comparison.p_value is not None]
        adjusted_p = adjust_p_values([rows[i].comparison.p_value for i in tested], options.correction)
        for i, p in zip(tested, adjusted_p):
            rows[i] = replace(rows[i], adjusted_p_value=p)
    if group_by:
        rows = _correct_across_slices(rows, options)
    lower = {
        m.name: (settings.guardrail(m.name).lower_is_better if settings.guardrail(m.name) else m.lower_is_better)
        for m in metrics
    }
    decisions = (
        ()
        if group_by
        else decide(
            rows,
            settings,
            lower,
            [v.name for v in variants[1:]],
            _planned_reached(experiments, experiment, settings),
            experiment.status,
        )
    )
    readout = Readout(
        experiment,
        srm,
        tuple(rows),
        options,
        group_by,
        experiments.engine.build.build_id,
        False,
        (time.perf_counter() - started) * 1000,
        tuple(decisions),
        settings,
    )
    if use_cache:
        experiments.remember_readout(key, readout)
    return readout


def _correct_across_slices(rows: list[ReadoutRow], options: ReadoutOptions) -> list[ReadoutRow]:
    """Correct each metric and variant's p-values across its slices (the caller's correction,
    Holm-Bonferroni by default): a slice significant on its own but not after the correction is
    not judged, and says so, because among many slices some differ by chance alone."""
    method = options.correction or SLICE_CORRECTION
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        if row.comparison.p_value is not None:
            groups.setdefault((row.metric, row.variant), []).append(i)
    rows = list(rows)
    for indices in groups.values():
        adjusted = adjust_p_values([rows[i].comparison.p_value for i in indices], method)
        for i, p in zip(indices, adjusted):
            row = replace(rows[i], slice_adjusted_p_value=p)
            if not row.withheld and row.comparison.p_value < options.alpha <= p:
                reason = (
                    f"significant in this slice alone (p = {row.comparison.p_value:.2g}) but not after "
                    f"{method} correction across the {len(indices)} slices (adjusted p = {p:.2g})"
                )
                row = replace(
                    row,
                    withheld=reason,
                    flags=row.flags + ("not_significant_across_slices",),
                    verdict=row.comparison.verdict(row.metric, row.variant, reason),
                )
            rows[i] = row
    return rows


def _planned_reached(experiments: Experiments, experiment: Experiment, settings) -> bool | None:
    """Whether a running experiment's smallest arm has its planned users (None: none planned,
    or it ended, when the plan no longer changes the decision)."""
    if experiment.status != "running":
        return None
    planned = settings.planned_users_per_variant
    if planned is None and settings.plan.get("metric") and settings.plan.get("mde"):
        planning = experiments.settings_meta().get("planning") or {}
        planned = users_per_arm_for(experiments, {**planning, **settings.plan}, len(experiment.variants))
    if planned is None:
        return None
    return min((v.users for v in experiment.variants), default=0) >= planned


def _guardrail_fails(comparison, guardrail) -> bool:
    return guardrail_fails(ReadoutRow("", "", {}, comparison, None, "", ()), guardrail)
