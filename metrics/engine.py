"""The engine facade: catalog, compile and query over one warehouse build.

A `MetricsEngine` is bound to one build (a warehouse file plus the semantic manifest dbt wrote
with it); `EngineProvider` hands out the engine of the newest build and swaps to a new one
when a build is published, without interrupting queries in flight on the old one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metrics.dry_run import BUILD_INFO_KEY as UNSERVABLE_KEY
from metrics.dry_run import Unservable, dry_run, refuse_unservable
from metrics.errors import (
    InternalError,
    InvalidQuery,
    MetricsError,
    ResultTooLarge,
    WarehouseUnavailable,
)
from metrics.execution.client import DuckDBClient, ResultColumn, ResultSet, SqlClient
from metrics.execution.client import _column_type as column_type
from metrics.lru import Lru
from metrics.query.completeness import Incomplete, Needs, Reach, assess, metric_needs
from metrics.query.plan import Planner, QueryPlan
from metrics.query.request import MetricQuery
from metrics.semantic.graph import METRIC_TIME, ItemKind, SemanticGraph, SourceKey
from metrics.semantic.manifest import SemanticManifest, load_semantic_manifest
from metrics.semantic.model import GRAINS, Metric, MetricType, SavedQuery
from metrics.sql.marts import (
    Condition,
    MartTable,
    mart_columns_sql,
    mart_query_error,
    rewrite_mart_query,
    select_sql,
)
from metrics.sql.render import Renderer
from metrics.sql.trees import RenderedQuery

if TYPE_CHECKING:
    from metrics.experiments import Experiments
    from metrics.rollups import RollupRouter, Route

log = logging.getLogger("northstar.metrics")

MANIFEST_FILE = "semantic_manifest.json"
BUILD_INFO_FILE = "build.json"


@dataclass(frozen=True)
class BuildWarning:
    """A `warn`-severity dbt test that found rows in a build, which published anyway (the
    landing contract does not forbid what it checks: a plausible range, an event order...)."""

    test: str  # the test's node name
    test_type: str  # the generic test: expression_is_true, relationships, accepted_values...
    model: str
    column: str | None
    failing_rows: int
    sample_rows: list[dict[str, Any]]  # a few of the rows the test's query returned
    message: str

    def describe(self) -> str:
        where = f"{self.model}.{self.column}" if self.column else self.model
        sample = "; ".join(", ".join(f"{k}={v!r}" for k, v in row.items()) for row in self.sample_rows)
        return (
            f"test {self.test_type} on {where}: {self.failing_rows} failing row"
            f"{'' if self.failing_rows == 1 else 's'}" + (f"; sample rows: {sample}" if sample else "")
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildWarning:
        fields: dict[str, Any] = {f.name: data.get(f.name) for f in dataclasses.fields(cls)}
        return cls(**fields)


@dataclass(frozen=True)
class BuildInfo:
    """What a served warehouse was built from, for freshness reporting."""

    build_id: str
    built_at: str | None
    tests_passed: bool | None
    directory: Path
    # dbt model -> {"tests": n, "failed": k}, for the tests of the models a query reads.
    model_tests: dict[str, dict[str, int]] = field(default_factory=dict, compare=False, hash=False)
    warnings: tuple[BuildWarning, ...] = field(default=(), compare=False, hash=False)
    # Metrics the build's dry run found unservable; None: the build was not checked.
    unservable: tuple[Unservable, ...] | None = field(default=None, compare=False, hash=False)

    def models_warnings(self, models: tuple[str, ...]) -> tuple[BuildWarning, ...]:
        """The build's warnings on the given models."""
        return tuple(w for w in self.warnings if w.model in models)

    def models_passed(self, models: tuple[str, ...]) -> bool | None:
        known = [self.model_tests[m] for m in models if m in self.model_tests]
        if not known:
            return self.tests_passed
        return all(t["failed"] == 0 for t in known)

    @classmethod
    def read(cls, directory: Path) -> BuildInfo:
        info_path = directory / BUILD_INFO_FILE
        data: dict[str, Any] = {}
        if info_path.exists():
            data = json.loads(info_path.read_text())
        return cls(
            build_id=data.get("build_id") or directory.name,
            built_at=data.get("built_at"),
            tests_passed=data.get("tests_passed"),
            directory=directory,
            model_tests=data.get("model_tests") or {},
            warnings=tuple(BuildWarning.from_json(w) for w in data.get("warnings") or ()),
            unservable=(
                tuple(Unservable.from_json(u) for u in data[UNSERVABLE_KEY])
                if isinstance(data.get(UNSERVABLE_KEY), list)
                else None
            ),
        )


@dataclass(frozen=True)
class MetricInfo:
    name: str
    label: str
    description: str
    type: str
    dimensions: tuple[str, ...]
    qualified_dimensions: tuple[str, ...]
    grains: tuple[str, ...]
    owner: str | None
    models: tuple[str, ...]
    definition: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    # Why the build cannot serve the metric (group_by None), or not by some group-by item.
    unavailable: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DimensionInfo:
    name: str
    kind: str
    description: str | None
    metrics: tuple[str, ...]
    qualified_names: tuple[str, ...]


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    params: dict[str, Any]
    inline_sql: str
    explanation: dict[str, Any]


@dataclass(frozen=True)
class Freshness:
    """How fresh an answer is: the build it came from and the newest data it read."""

    build: BuildInfo
    models: tuple[str, ...]
    newest_metric_time: Any

    @property
    def tests_passed(self) -> bool | None:
        """Whether every dbt test on the models this answer read passed in its build."""
        return self.build.models_passed(self.models)

    @property
    def warnings(self) -> tuple[BuildWarning, ...]:
        """Warnings (warn-severity tests that found rows) on the models this answer read."""
        return self.build.models_warnings(self.models)


@dataclass(frozen=True)
class QueryResult:
    columns: tuple[ResultColumn, ...]
    rows: list[tuple[Any, ...]]
    freshness: Freshness
    cached: bool
    elapsed_ms: float
    # Per row, whether each metric's value is complete (see metrics.query.completeness), and
    # each (metric, bucket) that is not, with the reason.
    complete: list[tuple[bool, ...]] = field(default_factory=list)
    incomplete: tuple[Incomplete, ...] = ()
    metric_names: tuple[str, ...] = ()  # the metric columns, after the group-by ones

    @property
    def build(self) -> BuildInfo:
        return self.freshness.build

    def page(self, offset: int, size: int) -> QueryResult:
        """`size` rows from `offset`, with their completeness."""
        return dataclasses.replace(
            self, rows=self.rows[offset : offset + size], complete=self.complete[offset : offset + size]
        )


@dataclass(frozen=True)
class Limits:
    """Guardrails for a shared service: a query stops after `query_timeout_s`, and a result
    has at most `max_result_rows` rows (callers page through them)."""

    query_timeout_s: float | None = 30.0
    max_result_rows: int = 1_000_000
    # Per warehouse instance (DuckDB): what its queries may hold in memory together, and how
    # many threads they share; None leaves DuckDB's default (the server passes its settings,
    # NORTHSTAR_QUERY_MEMORY_LIMIT and NORTHSTAR_QUERY_THREADS).
    memory_limit: str | None = None
    threads: int | None = None


class MetricsEngine:
    """Answers metric queries for one build; thread-safe."""

    def __init__(
        self,
        manifest: SemanticManifest,
        client: SqlClient,
        build: BuildInfo,
        cache_size: int = 1024,
        limits: Limits = Limits(),
    ) -> None:
        self.limits = limits
        self.manifest = manifest
        self.client = client
        self.build = build
        self.graph = SemanticGraph(manifest)
        self.planner = Planner(self.graph)
        self.renderer = Renderer(self.graph, client.dialect)
        # Logical schema (marts, staging) -> where this build keeps it; a PostgreSQL build
        # writes schemas of its own (marts__<build>), a DuckDB file the plain names.
        self.schemas: dict[str, str] = {}
        self._cache: Lru[tuple, QueryResult] = Lru(cache_size)
        self._router: RollupRouter | None = None  # the build's rollups, read on first use
        self._catalog: dict[str, MetricInfo] | None = None
        # A build never changes, so the newest time of each input is read once, and so is the
        # reach (first and last metric time) of each source a completeness check needs.
        self._newest: dict[SourceKey, Any] = {}
        self._reach: dict[SourceKey, Reach] = {}
        self._needs: dict[str, list[Needs]] = {}
        self._marts: dict[str, tuple[MartTable, tuple[ResultColumn, ...]]] | None = None
        self.unservable: tuple[Unservable, ...] = build.unservable or ()

    @classmethod
    def open(
        cls,
        warehouse: Path,
        manifest_path: Path | None = None,
        limits: Limits = Limits(),
        postgres_dsn: str | None = None,
        check: bool = True,
    ) -> MetricsEngine:
        """Open the build a warehouse path points at (a symlink published by `northstar build`,
        or any DuckDB file with a `semantic_manifest.json` beside it). A PostgreSQL build's
        path points at its `warehouse.postgres` file; its tables are read through `postgres_dsn`
        (default: the NORTHSTAR_POSTGRES_DSN environment variable). A Spark build's path points
        at its `warehouse.spark` file, read by a Spark session on NORTHSTAR_SPARK_MASTER.

        A build whose build.json does not say which metrics it can serve (made elsewhere, or
        a PostgreSQL or Spark build) is dry-run here (see metrics.dry_run) unless `check` is
        false."""
        real = Path(os.path.realpath(warehouse))
        if not real.exists():
            raise WarehouseUnavailable(f"no warehouse at {warehouse}; run `northstar build` first.")
        manifest_path = manifest_path or real.parent / MANIFEST_FILE
        if not manifest_path.exists():
            raise WarehouseUnavailable(f"no {MANIFEST_FILE} beside {real}; the build is incomplete.")
        manifest = load_semantic_manifest(manifest_path)
        client: SqlClient
        if real.suffix == ".postgres":
            from metrics.execution.postgres import PostgresClient

            dsn = postgres_dsn or os.environ.get("NORTHSTAR_POSTGRES_DSN")
            if not dsn:
                raise WarehouseUnavailable(f"{real} is a PostgreSQL build; set NORTHSTAR_POSTGRES_DSN to reach it.")
            client = PostgresClient(dsn, timeout_s=limits.query_timeout_s)
            schemas = json.loads(real.read_text()).get("schemas") or {}
        elif real.suffix == ".spark":
            from metrics.execution.spark import SparkClient

            client = SparkClient(real, timeout_s=limits.query_timeout_s)
            schemas = client.schemas
        else:
            client = DuckDBClient(
                real, timeout_s=limits.query_timeout_s, memory_limit=limits.memory_limit, threads=limits.threads
            )
            schemas = {}
        engine = cls(manifest, client, BuildInfo.read(real.parent), limits=limits)
        engine.schemas = schemas
        if check and engine.build.unservable is None:
            # Built elsewhere (or before builds were checked): check it once, now.
            engine.unservable = dry_run(engine).unservable
        return engine

    def schema(self, logical: str = "marts") -> str:
        """Where this build keeps a schema of the dbt project (`marts` unless renamed)."""
        return self.schemas.get(logical, logical)

    # -- catalog -------------------------------------------------------------------------

    def metric_names(self) -> list[str]:
        return sorted(self.manifest.metrics)

    def catalog(self) -> dict[str, MetricInfo]:
        if self._catalog is None:
            self._catalog = {name: self._safe_metric_info(m) for name, m in sorted(self.manifest.metrics.items())}
        return self._catalog

    def metric(self, name: str) -> MetricInfo:
        self.planner.metric(name)  # raises UnknownMetric with suggestions
        return self.catalog()[name]

    def _safe_metric_info(self, metric: Metric) -> MetricInfo:
        """A metric whose definition cannot be read (a measure no model defines) is still
        listed, as unavailable with the reason, rather than failing the whole catalog."""
        try:
            return self._metric_info(metric)
        except MetricsError as exc:
            return MetricInfo(
                metric.name,
                metric.label,
                metric.description,
                metric.type.value,
                (),
                (),
                (),
                metric.meta.get("owner"),
                (),
                {},
                metric.meta,
                ({"reason": exc.message, "group_by": None},),
            )

    def _metric_info(self, metric: Metric) -> MetricInfo:
        measures = self.planner.measures_of(metric.name)
        sources = {self.graph.source_of(m) for m in measures}
        short: set[str] | None = None
        full: set[str] | None = None
        grains: set[str] | None = None
        for source in sources:
            names = {n for n, item in self.graph.short_names(source).items()}
            items = self.graph.items(source)
            qualified = {
                n for n, item in items.items() if item.kind in (ItemKind.CATEGORICAL, ItemKind.TIME, ItemKind.ENTITY)
            }
            time_grains = {
                item.grain.value
                for item in items.values()
                if item.kind is ItemKind.METRIC_TIME and item.name != METRIC_TIME and item.grain is not None
            }
            short = names if short is None else short & names
            full = qualified if full is None else full & qualified
            grains = time_grains if grains is None else grains & time_grains
        models = sorted({self.graph.models[s.model].dbt_model or s.model for s in sources})
        return MetricInfo(
            name=metric.name,
            label=metric.label,
            description=metric.description,
            type=metric.type.value,
            dimensions=tuple(sorted(short or ())),
            qualified_dimensions=tuple(sorted(full or ())),
            grains=tuple(g.value for g in GRAINS if g.value in (grains or ())),
            owner=metric.meta.get("owner"),
            models=tuple(models),
            definition=_definition(metric, self.manifest),
            meta=metric.meta,
            unavailable=tuple(
                {"reason": u.reason, "group_by": u.group_by} for u in self.unservable if u.metric == metric.name
            ),
        )

    def dimensions(self) -> list[DimensionInfo]:
        by_name: dict[str, dict[str, Any]] = {}
        for info in self.catalog().values():
            measures = self.planner.measures_of(info.name)
            for name in info.dimensions:
                entry = by_name.setdefault(
                    name, {"metrics": set(), "qualified": set(), "kind": None, "description": None}
                )
                entry["metrics"].add(info.name)
                for measure in measures:
                    item = self.graph.short_names(self.graph.source_of(measure)).get(name)
                    if item is not None:
                        entry["qualified"].add(item.name)
                        entry["kind"] = entry["kind"] or item.kind.value
                        entry["description"] = entry["description"] or item.description or item.label
            # Entities (`listing`, `listing__host`) group and filter too, by their full names.
            for source in {self.graph.source_of(m) for m in measures}:
                for item in self.graph.items(source).values():
                    if item.kind is ItemKind.ENTITY and item.name in info.qualified_dimensions:
                        entry = by_name.setdefault(
                            item.name,
                            {"metrics": set(), "qualified": {item.name}, "kind": "entity", "description": None},
                        )
                        entry["metrics"].add(info.name)
        for grain in GRAINS:
            name = f"{METRIC_TIME}__{grain.value}"
            metrics = [m.name for m in self.catalog().values() if grain.value in m.grains]
            by_name[name] = {
                "metrics": set(metrics),
                "qualified": {name},
                "kind": "metric_time",
                "description": f"The metric's own time, bucketed by {grain.value} (UTC).",
            }
        return [
            DimensionInfo(
                name,
                e["kind"] or "categorical",
                e["description"],
                tuple(sorted(e["metrics"])),
                tuple(sorted(e["qualified"])),
            )
            for name, e in sorted(by_name.items())
        ]

    @cached_property
    def experiments(self) -> Experiments:
        """The experiments in this build's warehouse (catalog, per-user metrics, readouts)."""
        from metrics.experiments import Experiments

        return Experiments(self)

    def saved_queries(self) -> list[SavedQuery]:
        return list(self.manifest.saved_queries.values())

    def saved_query(self, name: str) -> SavedQuery:
        return self.planner.saved_query(name)

    # -- queries -------------------------------------------------------------------------

    def plan(self, query: MetricQuery) -> QueryPlan:
        refuse_unservable(self.unservable, query, self.manifest)
        return self.planner.plan(query)

    def compile(self, query: MetricQuery) -> CompiledQuery:
        plan = self.plan(query)
        rendered, route = self._rendered(query, plan)
        return CompiledQuery(
            rendered.sql,
            rendered.params,
            rendered.inline_sql(),
            {**_explain(plan, self.graph), "rollup": route.explain()},
        )

    @property
    def rollups(self) -> RollupRouter:
        """The router over this build's rollups (metrics/rollups.py), read on first use."""
        from metrics.rollups import RollupRouter

        if self._router is None:
            self._router = RollupRouter.for_build(self, self.build.directory)
        return self._router

    def _rendered(self, query: MetricQuery, plan: QueryPlan) -> tuple[RenderedQuery, Route]:
        """The statement for `plan`: from a rollup of this build when one answers `query`
        exactly (as stored or re-aggregated, metrics/rollups.py), else from the semantic models."""
        from metrics.sql.rollups import from_rollup, reaggregated

        route = self.rollups.route(query, plan)
        if route.table is None:
            return self.renderer.render(plan), route
        if route.readings is not None:
            return reaggregated(self.renderer, plan, route.table, route.readings), route
        schema, table = route.table.split(".", 1)
        return from_rollup(self.renderer, plan, schema, table), route

    def query(self, query: MetricQuery) -> QueryResult:
        key = query.cache_key()
        hit = self._cache.get(key)
        if hit is not None:
            return dataclasses.replace(hit, cached=True, elapsed_ms=0.0)
        started = time.perf_counter()
        cap = self.limits.max_result_rows
        # Ask for one row more than allowed: enough to know the answer is too large, without
        # ever fetching all of it.
        capped = query.limit is None or query.limit > cap
        plan = self.plan(dataclasses.replace(query, limit=cap + 1) if capped else query)
        rendered, _ = self._rendered(query, plan)
        result = self.client.query(rendered.sql, rendered.params)
        if capped and len(result.rows) > cap:
            raise ResultTooLarge(
                f"the answer has more than {cap:,} rows, the most one result may have; "
                "add filters, fewer or coarser group-by items, or a limit.",
                max_rows=cap,
            )
        columns = tuple(ResultColumn(name, col.type) for name, col in zip(plan.columns, result.columns))
        rows, complete, incomplete = self.completeness(plan, result.rows)
        answer = QueryResult(
            columns,
            rows,
            self.freshness(plan),
            False,
            (time.perf_counter() - started) * 1000,
            complete,
            incomplete,
            tuple(m.name for m in plan.metrics),
        )
        self._cache.put(key, answer)
        return answer

    def describe(self, query: MetricQuery) -> tuple[ResultColumn, ...]:
        """The typed columns `query` would answer, from the warehouse's own typing, without
        running it (for catalogs that list metrics as typed columns)."""
        plan = self.plan(query)
        rendered = self.renderer.render(plan)
        if self.client.dialect != "duckdb":
            # No DESCRIBE elsewhere: the driver types the columns of an empty answer.
            empty = self.client.query(f"SELECT * FROM ({rendered.sql}) AS described LIMIT 0", rendered.params)
            return tuple(ResultColumn(name, col.type) for name, col in zip(plan.columns, empty.columns))
        described = self.client.query(f"DESCRIBE {rendered.sql}", rendered.params)
        return tuple(ResultColumn(name, column_type(row[1])) for name, row in zip(plan.columns, described.rows))

    # -- marts ---------------------------------------------------------------------------

    def mart_tables(self) -> dict[str, tuple[MartTable, tuple[ResultColumn, ...]]]:
        """The dbt marts (the tables of the schemas the semantic models read), by name."""
        if self._marts is None:
            schemas = sorted({m.relation.schema for m in self.manifest.semantic_models.values()})
            marts: dict[str, tuple[MartTable, list[ResultColumn]]] = {}
            if schemas:
                typed: Callable[[Any], str] = column_type
                if self.client.dialect == "postgres":
                    from metrics.execution.postgres import column_type as typed
                if self.client.dialect == "spark":  # no information_schema in Spark 3
                    from metrics.execution.spark import column_type as typed

                    rows = self.client.mart_columns(schemas)  # type: ignore[attr-defined]
                else:
                    rows = self.client.query(mart_columns_sql(self.client.dialect), {"schemas": schemas}).rows
                for schema, table, column, data_type in rows:
                    entry = marts.setdefault(table, (MartTable(table, schema, table), []))
                    if entry[0].schema == schema:
                        entry[1].append(ResultColumn(column, typed(data_type)))
            self._marts = {name: (mart, tuple(columns)) for name, (mart, columns) in marts.items()}
        return self._marts

    def read_mart(self, statement: Any, marts: dict[str, MartTable] | None = None) -> ResultSet:
        """Run a client's read-only SELECT over `marts.*` (a sqlglot tree); see
        `metrics.sql.marts` for what is allowed. `marts` (default: all, unrestricted) is what the
        statement may read."""
        if marts is None:
            marts = {name: mart for name, (mart, _) in self.mart_tables().items()}
        sql = rewrite_mart_query(statement, marts, self.client.dialect)
        try:
            # The row cap of every other answer applies here too: a bigger read is refused, not served.
            return self.client.query(sql, max_rows=self.limits.max_result_rows)
        except WarehouseUnavailable:
            raise
        except InternalError as exc:
            # The warehouse's message quotes the rebuilt SQL; the client is told of its own.
            raise mart_query_error(exc, statement, marts) from None

    def mart_rows(
        self,
        table: str,
        columns: Sequence[str],
        where: Sequence[Condition] = (),
        order_by: Sequence[str] = (),
        distinct: bool = False,
        mart: MartTable | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of one mart (the scorecards' reads), keyed by column; values bound."""
        if mart is None:
            entry = self.mart_tables().get(table)
            if entry is None:
                raise WarehouseUnavailable(
                    f"this warehouse has no marts.{table} mart; rebuild it with `northstar build`."
                )
            mart = entry[0]
        sql, params = select_sql(mart, columns, where, order_by, self.client.dialect, distinct)
        return [dict(zip(columns, row)) for row in self.client.query(sql, params).rows]

    def freshness(self, plan: QueryPlan) -> Freshness:
        sources = [node.source for node in plan.nodes]
        newest = [self._newest_time(source) for source in sources]
        models = sorted({self.graph.models[s.model].dbt_model or s.model for s in sources})
        return Freshness(self.build, tuple(models), max((t for t in newest if t is not None), default=None))

    def completeness(self, plan: QueryPlan, rows: list[tuple[Any, ...]]):
        """The one place the completeness rule (metrics.query.completeness) is applied: rows with
        uncovered windows nulled, per-row flags, and the incomplete (metric, bucket) pairs."""
        needs = {m.name: self.needs(m.name) for m in plan.metrics}
        reach = {n.source: self.reach(n.source) for ns in needs.values() for n in ns}
        return assess(plan, rows, needs, reach)

    def needs(self, metric: str) -> list[Needs]:
        """What a metric reads, and over which windows (cached per build)."""
        if metric not in self._needs:

            def model_source(model: str) -> SourceKey:
                semantic = self.graph.models.get(model)
                if semantic is None or not semantic.default_agg_time_dimension:
                    raise InvalidQuery(
                        f"metric {metric!r}: meta.cohort_window names semantic model {model!r}, "
                        "which has no default metric time.",
                        metric=metric,
                    )
                return SourceKey(model, semantic.default_agg_time_dimension)

            self._needs[metric] = metric_needs(
                metric,
                self.manifest.metrics,
                lambda measure: self.graph.source_of(self.graph.measures[measure]),
                model_source,
            )
        return self._needs[metric]

    def reach(self, source: SourceKey) -> Reach:
        """The first and last metric time with data in a source (one min/max query per build)."""
        if source not in self._reach:
            sql = self.renderer.reach_sql(source)
            first, last = self.client.query(sql).rows[0] if sql else (None, None)
            self._reach[source] = Reach(_as_datetime(first), _as_datetime(last))
        return self._reach[source]

    def _newest_time(self, source: SourceKey) -> Any:
        if source not in self._newest:
            sql = self.renderer.newest_time_sql(source)
            self._newest[source] = self.client.query(sql).rows[0][0] if sql else None
        return self._newest[source]

    def close(self) -> None:
        self.client.close()


def _as_datetime(value: Any) -> Any:
    import datetime as dt

    if value is None or isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value))


def _definition(metric: Metric, manifest: SemanticManifest) -> dict[str, Any]:
    out: dict[str, Any] = {"type": metric.type.value}
    if metric.filters:
        out["filters"] = list(metric.filters)
    if metric.type is MetricType.SIMPLE and metric.measure:
        measure = manifest.measures.get(metric.measure.name)
        out["measure"] = metric.measure.name
        if measure is not None:
            out["agg"] = measure.agg.value
            out["expr"] = measure.expr
            out["semantic_model"] = measure.semantic_model
            out["metric_time"] = measure.agg_time_dimension
        if metric.measure.fill_nulls_with is not None:
            out["fill_nulls_with"] = metric.measure.fill_nulls_with
    elif metric.type is MetricType.RATIO:
        out["numerator"] = metric.numerator.name if metric.numerator else None
        out["denominator"] = metric.denominator.name if metric.denominator else None
    elif metric.type is MetricType.DERIVED:
        out["expr"] = metric.expr
        out["metrics"] = [i.name for i in metric.inputs]
        offsets = {i.alias or i.name: str(i.offset_window) for i in metric.inputs if i.offset_window}
        if offsets:
            out["offsets"] = offsets
    if metric.type is MetricType.CUMULATIVE:
        out["measure"] = metric.measure.name if metric.measure else None
        out["window"] = str(metric.window) if metric.window else None
        out["grain_to_date"] = metric.grain_to_date.value if metric.grain_to_date else None
        out["period_agg"] = metric.period_agg.value
    if metric.type is MetricType.CONVERSION and metric.conversion:
        conversion = metric.conversion
        out.update(
            base_measure=conversion.base_measure.name,
            conversion_measure=conversion.conversion_measure.name,
            entity=conversion.entity,
            calculation=conversion.calculation,
            window=str(conversion.window) if conversion.window else None,
        )
    return out


def _explain(plan: QueryPlan, graph: SemanticGraph) -> dict[str, Any]:
    nodes = []
    for node in plan.nodes:
        model = graph.models[node.source.model]
        nodes.append(
            {
                "cte": node.alias,
                "semantic_model": model.name,
                "table": f"{model.relation.schema}.{model.relation.table}",
                "metric_time": node.source.agg_time_dimension,
                "measures": [m.measure.name for m in node.measures],
                "joins": sorted(
                    {f"{step.model} on {step.entity} (many-to-one)" for g in node.group_by for step in g.item.path}
                    | {f"{step.model} on {step.entity} (many-to-one)" for f in node.filters for step in f.item.path}
                ),
                "filters": list(node.template_filters),
            }
        )
    return {
        "grain": list(plan.group_by),
        "inputs": nodes,
        "group_by": [{"name": n, "metric": m, "resolved_to": r} for n, m, r in plan.resolutions],
        "fan_out": "none: every join goes to a semantic model where the entity is primary or unique",
        "combine": (
            "one aggregate"
            if len(plan.nodes) == 1
            else "aggregates joined on the group-by keys (null-safe), so a bucket present in any input appears"
        ),
        "null_policy": "ratios and divisions return null on a zero or missing denominator; "
        "fill_nulls_with from the metric definition is applied where set",
    }


def _file_identity(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# Counts can come from metadata alone, so a file cut short may still answer them: its length is
# checked against the blocks its header lists too.
_PROBE = """
import os, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute("select count(*) from information_schema.columns").fetchall()
block_size, total_blocks = con.execute("pragma database_size").fetchone()[2:4]
size = os.path.getsize(sys.argv[1])
if size < block_size * total_blocks:
    sys.exit(f"the file is {size} bytes, shorter than the {total_blocks} blocks of {block_size} bytes it lists")
for schema, table in con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'").fetchall():
    con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()
"""


def _probe_warehouse(path: str, timeout: float = 60) -> str | None:
    """Open a warehouse file in a fresh process and read every table; the error, or None."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, path], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"opening it took longer than {timeout:g} s"
    if proc.returncode == 0:
        return None
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {proc.returncode}"


class EngineProvider:
    """Serves the engine of the build a warehouse path points at, swapping on publish.

    `northstar build` publishes a new build by atomically re-pointing the warehouse symlink;
    the provider notices on the next request (a cheap `readlink`), opens the new build, and
    closes the old one once the queries still running on it have finished.
    """

    def __init__(
        self,
        warehouse: Path,
        manifest_path: Path | None = None,
        check_interval: float = 0.0,
        limits: Limits = Limits(),
        postgres_dsn: str | None = None,
    ) -> None:
        self.limits = limits
        self.postgres_dsn = postgres_dsn
        self.warehouse = Path(warehouse)
        self.manifest_path = manifest_path
        self.check_interval = check_interval
        self._lock = threading.Lock()
        self._engine: MetricsEngine | None = None
        self._target: str | None = None
        self._users: dict[int, int] = {}
        self._retired: list[MetricsEngine] = []
        self._checked_at = 0.0
        self.last_error: str | None = None
        self._identity: tuple | None = None  # the served file as it was when opened
        self._probed: tuple[tuple, str | None] | None = None  # (identity, error) of the last probe

    def _current_target(self) -> str:
        return os.path.realpath(self.warehouse)

    def is_current(self) -> bool:
        """Whether the engine being served is the published build's (a `readlink`, no
        opening): when not, `refresh` has a build to open, which may take seconds."""
        return self._engine is not None and self._current_target() == self._target

    @property
    def served_build_id(self) -> str | None:
        """The build id of the engine being served (None before one is open)."""
        engine = self._engine
        return engine.build.build_id if engine is not None else None

    def refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and self._engine is not None and now - self._checked_at < self.check_interval:
            return
        self._checked_at = now
        target = self._current_target()
        if target == self._target and self._engine is not None:
            return
        with self._lock:
            if target == self._target and self._engine is not None:
                return
            try:
                engine = MetricsEngine.open(self.warehouse, self.manifest_path, self.limits, self.postgres_dsn)
            except Exception as exc:  # keep serving the old build, report why
                if str(exc) != self.last_error:  # once per failure, not on every check
                    log.warning(
                        "cannot open the build at %s (%s); %s",
                        target,
                        exc,
                        "still serving the previous build" if self._engine is not None else "no build to serve",
                    )
                self.last_error = str(exc)
                if self._engine is None:
                    raise
                return
            old, self._engine, self._target = self._engine, engine, target
            self._identity = _file_identity(target)
            self.last_error = None
            if old is not None:
                self._retired.append(old)
            self._close_idle_retired()

    def check_published(self) -> BuildInfo:
        """The build being served, if the published warehouse is sound; for readiness probes.

        Raises:
            WarehouseUnavailable: naming the cause: the published file is missing, cannot be
                opened, or changed after it was published and no longer opens.
        """
        self.refresh()
        target = self._current_target()
        with self._lock:
            engine, served, opened_as = self._engine, self._target, self._identity
        if engine is None:
            raise WarehouseUnavailable(self.last_error or "no warehouse is loaded.")
        if target != served:
            raise WarehouseUnavailable(
                f"the published warehouse {target} cannot be opened ({self.last_error}); still answering "
                f"from build {engine.build.build_id}; publish a good build with `northstar build`."
            )
        identity = _file_identity(target)
        if identity is None:
            raise WarehouseUnavailable(
                f"the published warehouse file {target} is gone; still answering from the copy open in "
                f"memory (build {engine.build.build_id}); publish a good build with `northstar build`."
            )
        if identity != opened_as:
            # A published build is never written again, so a changed file is suspect; the open
            # instance cannot tell (DuckDB shares one instance per file within a process),
            # so a separate process opens it afresh. Probed once per change.
            if self._probed is None or self._probed[0] != identity:
                self._probed = (identity, _probe_warehouse(target))
            if self._probed[1] is not None:
                raise WarehouseUnavailable(
                    f"the published warehouse file {target} changed after it was published and no longer "
                    f"opens: {self._probed[1]}; publish a good build with `northstar build`."
                )
        with self.engine() as current:  # counted as a user, so a swap cannot close it mid-probe
            current.client.query("select 1")
            return current.build

    def _close_idle_retired(self) -> None:
        still = []
        for engine in self._retired:
            if self._users.get(id(engine), 0) == 0:
                engine.close()
                self._users.pop(id(engine), None)
            else:
                still.append(engine)
        self._retired = still

    @contextmanager
    def engine(self, refresh: bool = True) -> Iterator[MetricsEngine]:
        """The served engine, held until the block ends (a build published meanwhile does not
        close it); first switched to a newly published build unless `refresh` is false (the
        caller has just done so)."""
        if refresh:
            self.refresh()
        with self._lock:
            engine = self._engine
            if engine is None:
                raise WarehouseUnavailable(self.last_error or "no warehouse is loaded.")
            self._users[id(engine)] = self._users.get(id(engine), 0) + 1
        try:
            yield engine
        finally:
            with self._lock:
                self._users[id(engine)] -= 1
                if engine in self._retired:
                    self._close_idle_retired()

    def close(self) -> None:
        with self._lock:
            for engine in [self._engine, *self._retired]:
                if engine is not None:
                    engine.close()
            self._engine = None
            self._retired = []
