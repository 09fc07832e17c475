"""Experiment routes: catalog, readable metrics, readouts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.schemas.experiments import (
    CupedResult,
    ExperimentMetricsResponse,
    ExperimentMetricSummary,
    ExperimentsResponse,
    ExperimentSummary,
    ReadoutResponse,
    ReadoutResult,
    VariantUsers,
)
from metrics.experiments import Experiment, ReadoutOptions, metric_kind, build_readout
from metrics.execution.client import to_jsonable

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

DEFAULT_METRICS = "conversion,revenue_per_user,sessions_per_user,crashed"


def _variants(experiment: Experiment) -> list[VariantUsers]:
    return [VariantUsers(variant=v.name, users=v.users, users_in_several_variants=v.users_in_several_variants)
            for v in experiment.variants]


def _cuped(row) -> CupedResult | None:
    c = row.cuped
    if c is None:
        return None
    return CupedResult(absolute_lift=c.absolute_lift, relative_lift=c.relative_lift, ci_low=c.ci_low,
                       ci_high=c.ci_high, p_value=c.p_value, chance_to_win=c.chance_to_win,
                       variance_reduction=c.cuped.variance_reduction if c.cuped else None,
                       verdict=c.verdict(row.metric, row.variant, row.withheld), error=c.error)


def _summary(experiment: Experiment) -> ExperimentSummary:
    return ExperimentSummary(
        experiment_id=experiment.experiment_id, name=experiment.name, status=experiment.status,
        control_variant=experiment.control_variant, started_at=to_jsonable(experiment.started_at),
        ended_at=to_jsonable(experiment.ended_at), variants=_variants(experiment), users=experiment.users)


@router.get("", response_model=ExperimentsResponse)
def list_experiments(engine: EngineDep) -> ExperimentsResponse:
    return ExperimentsResponse(experiments=[_summary(e) for e in engine.experiments.experiments()])


@router.get("/{experiment_id}/metrics", response_model=ExperimentMetricsResponse)
def experiment_metrics(experiment_id: str, engine: EngineDep) -> ExperimentMetricsResponse:
    engine.experiments.experiment(experiment_id)
    metrics = engine.experiments.metrics()
    return ExperimentMetricsResponse(experiment_id=experiment_id, metrics=[
        ExperimentMetricSummary(name=name, metric=m.metric, kind=metric_kind(m), lower_is_better=m.lower_is_better,
                                description=m.description)
        for name, m in metrics.items()])


@router.get("/{experiment_id}/readout", response_model=ReadoutResponse)
def readout(
    experiment_id: str,
    engine: EngineDep,
    metrics: Annotated[str, Query(description="Comma-separated experiment metrics.")] = DEFAULT_METRICS,
    group_by: Annotated[str, Query(description="Comma-separated user slices: platform, country, plan.")] = "",
    cuped: Annotated[bool, Query(description="CUPED on the pre-assignment value of the same metric.")] = True,
    pre_days: Annotated[int, Query(ge=1, le=365, description="Length of the CUPED pre-period in days.")] = 14,
    correction: Annotated[Literal["none", "holm-bonferroni", "benjamini-hochberg"], Query()] = "none",
    sequential: Annotated[bool, Query(description="Always-valid (sequential) confidence intervals.")] = False,
    # Below about 1e-16, 1 - alpha/2 rounds to 1.0 and the interval's quantile is infinite.
    alpha: Annotated[float, Query(ge=1e-10, lt=1, description="Two-sided significance level.")] = 0.05,
) -> ReadoutResponse:
    names = tuple(m.strip() for m in metrics.split(",") if m.strip())
    slices = tuple(g.strip() for g in group_by.split(",") if g.strip())
    options = ReadoutOptions(cuped=cuped, pre_days=pre_days, sequential=sequential, alpha=alpha,
                             correction=None if correction == "none" else correction)
    result = build_readout(engine.experiments, experiment_id, names, slices, options)
    rows = []
    for row in result.rows:
        c = row.comparison
        rows.append(ReadoutResult(
            metric=row.metric, variant=row.variant, slice=row.slice, control_users=c.control_users,
            variant_users=c.variant_users, control_mean=c.control_mean, variant_mean=c.variant_mean,
            absolute_lift=c.absolute_lift, absolute_ci_low=c.absolute_ci_low, absolute_ci_high=c.absolute_ci_high,
            relative_lift=c.relative_lift, ci_low=c.ci_low, ci_high=c.ci_high, p_value=c.p_value,
            adjusted_p_value=row.adjusted_p_value, chance_to_win=c.chance_to_win,
            risk=list(c.bayesian.risk) if c.bayesian.error is None else None,
            cuped=_cuped(row), verdict=row.verdict, flags=list(row.flags), error=c.error))
    return ReadoutResponse(
        experiment_id=experiment_id, control_variant=result.experiment.control_variant,
        status=result.experiment.status, srm_p_value=result.srm.p_value, srm_warning=result.srm.mismatch,
        variants=_variants(result.experiment),
        options={"cuped": cuped, "pre_days": pre_days, "correction": correction, "sequential": sequential,
                 "alpha": alpha, "group_by": list(slices)},
        results=rows, build_id=result.build_id, cached=result.cached, elapsed_ms=result.elapsed_ms)
