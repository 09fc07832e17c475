"""Experiment routes: catalog, readable metrics, readouts."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.schemas.convert import from_dataclass
from api.schemas.experiments import (
    CupedResult,
    DailyTraffic,
    Decision,
    ExperimentMetricsResponse,
    ExperimentMetricSummary,
    ExperimentsResponse,
    ExperimentSummary,
    HealthResponse,
    MetricRoles,
    PlanResponse,
    PlanWeek,
    ReadoutResponse,
    ReadoutResult,
    VariantUsers,
)
from metrics.execution.client import to_jsonable
from metrics.experiment_design import PlanRequest, experiment_health, make_plan
from metrics.experiments import Experiment, ReadoutOptions, build_readout, metric_kind

router = APIRouter(prefix="/v1/experiments", tags=["experiments"])

DEFAULT_METRICS = "conversion,revenue_per_user,sessions_per_user,crashed"


def _variants(experiment: Experiment) -> list[VariantUsers]:
    return [
        VariantUsers(variant=v.name, users=v.users, users_in_several_variants=v.users_in_several_variants)
        for v in experiment.variants
    ]


def _cuped(row) -> CupedResult | None:
    c = row.cuped
    if c is None:
        return None
    return from_dataclass(
        CupedResult,
        c,
        variance_reduction=c.cuped.variance_reduction if c.cuped else None,
        verdict=c.verdict(row.metric, row.variant, row.withheld),
    )


def _summary(experiment: Experiment) -> ExperimentSummary:
    return from_dataclass(
        ExperimentSummary,
        experiment,
        status=experiment.status,  # properties, not fields
        users=experiment.users,
        started_at=to_jsonable(experiment.started_at),
        ended_at=to_jsonable(experiment.ended_at),
        variants=_variants(experiment),
    )


@router.get("", response_model=ExperimentsResponse)
def list_experiments(engine: EngineDep) -> ExperimentsResponse:
    return ExperimentsResponse(experiments=[_summary(e) for e in engine.experiments.experiments()])


@router.get("/plan", response_model=PlanResponse)
def plan(
    engine: EngineDep,
    metric: Annotated[str, Query(description="The experiment metric to plan for.")],
    mde: Annotated[float | None, Query(gt=0, le=10, description="Relative effect to detect (0.05 is +5%).")] = None,
    weeks: Annotated[int | None, Query(ge=1, le=52, description="Weeks the experiment may run.")] = None,
    arms: Annotated[int, Query(ge=2, le=10)] = 2,
    alpha: Annotated[float, Query(gt=0, lt=0.5)] = 0.05,
    power: Annotated[float, Query(gt=0.5, lt=1)] = 0.8,
    cuped: Annotated[bool, Query(description="Count on CUPED's variance reduction.")] = True,
) -> PlanResponse:
    experiments = engine.experiments
    result = make_plan(
        experiments,
        PlanRequest(metric=metric, mde=mde, weeks=weeks, arms=arms, alpha=alpha, power=power, cuped=cuped),
        experiments.settings_meta().get("planning") or {},
    )
    return plan_response(result, engine.build.build_id)


def plan_response(result, build_id: str) -> PlanResponse:
    # The request's settings (mde, arms, alpha, power, cuped), then the plan's own fields.
    return from_dataclass(
        PlanResponse,
        result.request,
        result,
        weeks_requested=result.request.weeks,
        window_start=result.window_start.isoformat(),
        window_end=result.window_end.isoformat(),
        weeks=[PlanWeek.model_validate(w) for w in result.weeks],
        build_id=build_id,
    )


@router.get("/{experiment_id}/health", response_model=HealthResponse)
def health(experiment_id: str, engine: EngineDep) -> HealthResponse:
    experiments = engine.experiments
    result = experiment_health(experiments, experiment_id, experiments.settings(experiment_id))
    return from_dataclass(
        HealthResponse,
        result,
        daily=[
            DailyTraffic(date=d.day.isoformat(), users=d.users, p_value=d.p_value, imbalanced=d.imbalanced)
            for d in result.daily
        ],
        imbalanced_days=[d.isoformat() for d in result.imbalanced_days],
        settings_problems=list(result.problems),
        build_id=engine.build.build_id,
    )


@router.get("/{experiment_id}/metrics", response_model=ExperimentMetricsResponse)
def experiment_metrics(experiment_id: str, engine: EngineDep) -> ExperimentMetricsResponse:
    engine.experiments.experiment(experiment_id)
    metrics = engine.experiments.metrics()
    return ExperimentMetricsResponse(
        experiment_id=experiment_id,
        metrics=[
            ExperimentMetricSummary(
                name=name,
                metric=m.metric,
                kind=metric_kind(m),
                lower_is_better=m.lower_is_better,
                description=m.description,
            )
            for name, m in metrics.items()
        ],
    )


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
    options = ReadoutOptions(
        cuped=cuped,
        pre_days=pre_days,
        sequential=sequential,
        alpha=alpha,
        correction=None if correction == "none" else correction,
    )
    result = build_readout(engine.experiments, experiment_id, names, slices, options)
    rows = []
    for row in result.rows:
        c = row.comparison
        # The test's numbers from the comparison, the row's own (metric, variant, slice,
        # verdict, flags, corrected p-values) over them.
        rows.append(
            from_dataclass(
                ReadoutResult,
                c,
                row,
                risk=list(c.bayesian.risk) if c.bayesian.error is None else None,
                cuped=_cuped(row),
                error=c.error,
            )
        )
    settings = result.settings
    return ReadoutResponse(
        experiment_id=experiment_id,
        control_variant=result.experiment.control_variant,
        status=result.experiment.status,
        srm_p_value=result.srm.p_value,
        srm_warning=result.srm.mismatch,
        variants=_variants(result.experiment),
        options={
            "cuped": cuped,
            "pre_days": pre_days,
            "correction": correction,
            "sequential": sequential,
            "alpha": alpha,
            "group_by": list(slices),
        },
        results=rows,
        build_id=result.build_id,
        cached=result.cached,
        elapsed_ms=result.elapsed_ms,
        roles=MetricRoles(
            goal=list(settings.goal),
            secondary=list(settings.secondary),
            guardrail=[g.metric for g in settings.guardrails],
        )
        if settings
        else None,
        decisions=[from_dataclass(Decision, d) for d in result.decisions],
    )
