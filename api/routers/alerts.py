"""Anomaly alerts of the daily check (the fct_metric_alerts mart)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.routers.scorecard_params import iso
from api.schemas.convert import from_dataclass
from api.schemas.scorecards import AlertOut, AlertsResponse
from metrics.query.request import parse_time_bound
from metrics.scorecards.alerts import alerts

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=AlertsResponse)
def list_alerts(
    engine: EngineDep,
    metric: Annotated[str | None, Query(description="Only this metric's alerts.")] = None,
    since: Annotated[str | None, Query(description="Only alerts on or after this day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, Query(description="Only alerts before this day (exclusive).")] = None,
) -> AlertsResponse:
    since_at, until_at = parse_time_bound(since, "since"), parse_time_bound(until, "until")
    found = alerts(engine, metric, since_at.date() if since_at else None, until_at.date() if until_at else None)
    return AlertsResponse(alerts=[from_dataclass(AlertOut, a, date=iso(a.date)) for a in found])
