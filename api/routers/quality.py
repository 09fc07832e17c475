"""The quality scorecard: quality KPIs per period against their governed SLOs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.routers.scorecard_params import iso
from api.schemas.scorecards import KpiOut, KpiPeriodOut, QualityResponse, WithheldOut
from metrics.query.request import parse_time_bound
from metrics.scorecards.common import Period
from metrics.scorecards.quality import KpiPeriod, quality_scorecard

router = APIRouter(prefix="/v1/quality", tags=["quality"])


def _period(p: KpiPeriod | None) -> KpiPeriodOut | None:
    if p is None:
        return None
    return KpiPeriodOut(
        period_start=iso(p.period_start),
        period_end=iso(p.period_end),
        complete=p.complete,
        value=p.value,
        previous=p.previous,
        change=p.change,
        relative_change=p.relative_change,
        status=p.status.value,
        target=p.target,
        warn=p.warn,
    )


@router.get("", response_model=QualityResponse)
def quality(
    engine: EngineDep,
    period: Annotated[Period, Query(description="day, week (ISO, Monday start) or month.")] = "week",
    start: Annotated[
        str | None, Query(description="First day (aligned down to its period); default: 4 periods before end.")
    ] = None,
    end: Annotated[str | None, Query(description="Exclusive end; default: the day after the data.")] = None,
    platform: Annotated[
        str | None, Query(description="Scope platform KPIs (crash-free rate, error rate) to one platform.")
    ] = None,
) -> QualityResponse:
    card = quality_scorecard(engine, period, parse_time_bound(start, "start"), parse_time_bound(end, "end"), platform)
    return QualityResponse(
        period=card.period,
        start=iso(card.start),
        end=iso(card.end),
        platform=card.platform,
        kpis=[
            KpiOut(
                metric=k.metric,
                label=k.label,
                severity=k.severity,
                platform_scoped=k.platform_scoped,
                direction=k.direction,
                current=_period(k.current),
                periods=[_period(p) for p in k.periods],
            )
            for k in card.kpis
        ],
        withheld=[WithheldOut(metric=w.metric, reason=w.reason) for w in card.withheld],
    )
