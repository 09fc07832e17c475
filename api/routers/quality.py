"""The quality scorecard: quality KPIs per period against their governed SLOs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.routers.scorecard_params import iso
from api.schemas.convert import from_dataclass
from api.schemas.scorecards import KpiOut, KpiPeriodOut, QualityResponse, WithheldOut
from metrics.query.request import parse_time_bound
from metrics.scorecards.common import Period
from metrics.scorecards.quality import KpiPeriod, quality_scorecard

router = APIRouter(prefix="/v1/quality", tags=["quality"])


def _period(p: KpiPeriod | None) -> KpiPeriodOut | None:
    if p is None:
        return None
    return from_dataclass(
        KpiPeriodOut, p, period_start=iso(p.period_start), period_end=iso(p.period_end), status=p.status.value
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
            from_dataclass(KpiOut, k, current=_period(k.current), periods=[_period(p) for p in k.periods])
            for k in card.kpis
        ],
        withheld=[WithheldOut.model_validate(w) for w in card.withheld],
    )
