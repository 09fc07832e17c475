"""Which metrics a build can serve: every metric compiled and dry-run before anyone asks.

A metric is compiled and run under `EXPLAIN` (the warehouse plans the statement and reads no
rows) once by metric_time at its default grain (or without a group-by when it has no time)
and once by each of its dimensions. A compile error (a dbt semantic-layer feature northstar
cannot answer yet) or a statement the warehouse refuses (a measure `expr` naming a column
the model does not have, a function the dialect lacks) marks the metric, or the metric by
that dimension, as unservable with the reason (on Spark, where each EXPLAIN is a planning job,
the statements are only compiled). `northstar build` runs the check and writes
the result into `build.json`; an engine opening a build without it (built elsewhere, or by
an older northstar) runs it once on open. A query of an unservable metric is then a 422
naming the reason (`MetricUnavailable`), never a 500 from the warehouse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metrics.errors import MetricsError, MetricUnavailable, UserError
from metrics.query.request import MetricQuery

if TYPE_CHECKING:
    from metrics.engine import MetricsEngine

BUILD_INFO_KEY = "unservable_metrics"


@dataclass(frozen=True)
class Unservable:
    """A metric that cannot be served (`group_by` None), or not by one group-by item."""

    metric: str
    reason: str
    group_by: str | None = None

    def describe(self) -> str:
        by = f" by {self.group_by}" if self.group_by else ""
        return f"{self.metric}{by}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "reason": self.reason, "group_by": self.group_by}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Unservable:
        return cls(data["metric"], data["reason"], data.get("group_by"))


@dataclass(frozen=True)
class DryRunReport:
    unservable: tuple[Unservable, ...]
    statements: int
    seconds: float


def dry_run(engine: MetricsEngine) -> DryRunReport:
    """Compile and EXPLAIN every metric at its default grain and by each of its dimensions."""
    started = time.perf_counter()
    found: list[Unservable] = []
    statements = 0
    for name in engine.metric_names():
        try:
            info = engine._metric_info(engine.manifest.metrics[name])
        except MetricsError as exc:
            found.append(Unservable(name, _reason(exc)))
            continue
        grain = f"metric_time__{info.grains[0]}" if info.grains else None
        base = _check(engine, name, (grain,) if grain else ())
        statements += 1
        if base is not None:
            found.append(Unservable(name, base))
            continue
        for dimension in info.dimensions:
            reason = _check(engine, name, (dimension,) + ((grain,) if _needs_time(engine, name) and grain else ()))
            statements += 1
            if reason is not None:
                found.append(Unservable(name, reason, dimension))
    return DryRunReport(tuple(found), statements, time.perf_counter() - started)


def _needs_time(engine: MetricsEngine, name: str) -> bool:
    """Cumulative and time-offset metrics are only answered by metric_time."""
    from metrics.semantic.model import MetricType

    metric = engine.manifest.metrics[name]
    if metric.type is MetricType.CUMULATIVE:
        return True
    return any(i.offset_window or i.offset_to_grain for i in metric.inputs)


def _check(engine: MetricsEngine, name: str, group_by: tuple[str, ...]) -> str | None:
    # A Spark EXPLAIN is a planning job in the session (0.1-0.5 s each, hundreds per build):
    # there the statements are compiled, not explained.
    explain = engine.client.dialect != "spark"
    query = MetricQuery(metrics=(name,), group_by=group_by)
    try:
        plan = engine.planner.plan(query)
        rendered = engine.renderer.render(plan)
    except MetricsError as exc:
        return _reason(exc)
    except Exception as exc:  # a defect in compiling is still a reason, never a crash of the build
        return f"northstar could not compile it ({type(exc).__name__}: {exc})"
    if not explain:
        return None
    try:
        engine.client.query("EXPLAIN " + rendered.sql, rendered.params)
    except Exception as exc:
        # The warehouse's own words (which column or function the definition names wrongly) are
        # what the project's owner needs here; the client wraps them as `internal`.
        text = getattr(exc, "internal", None) or getattr(exc, "message", None) or str(exc)
        message = text.strip().splitlines()[0][:300]
        prefix = "the warehouse rejected generated SQL: "
        return prefix + message.removeprefix(prefix)
    return None


def _reason(exc: MetricsError) -> str:
    return exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc.message}"


def depends_on(manifest, name: str) -> set[str]:
    """The metric and every metric it is computed from (ratios, derived metrics)."""
    out, todo = set(), [name]
    while todo:
        current = todo.pop()
        metric = manifest.metrics.get(current)
        if current in out or metric is None:
            continue
        out.add(current)
        todo += [i.name for i in (metric.numerator, metric.denominator, *metric.inputs) if i is not None]
    return out


def refuse_unservable(unservable: tuple[Unservable, ...], query: MetricQuery, manifest) -> None:
    """Raise `MetricUnavailable` when the query reads a metric the check marked (any metric it
    depends on, through ratios and derived metrics), or groups one by a marked item."""
    if not unservable:
        return
    read = set()
    for name in query.metrics:
        read |= depends_on(manifest, name)
    for entry in unservable:
        if entry.metric not in read:
            continue
        if entry.group_by is None or entry.group_by in query.group_by:
            by = f" by {entry.group_by}" if entry.group_by else ""
            raise MetricUnavailable(
                f"metric {entry.metric!r} cannot be served{by} from this build: {entry.reason}",
                metric=entry.metric,
                reason=entry.reason,
                group_by=entry.group_by,
            )
