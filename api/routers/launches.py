"""Launch scorecards: adoption, time to first use, retention, cost and quality around a launch."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.routers.scorecard_params import iso
from api.schemas.convert import from_dataclass
from api.schemas.scorecards import (
    FeedbackOut,
    LaunchAdoptionDayOut,
    LaunchesResponse,
    LaunchOut,
    LaunchScorecardResponse,
    PrePostOut,
    RetentionComparisonOut,
    RetentionOut,
    WithheldOut,
)
from metrics.scorecards.launches import DEFAULT_WINDOW_DAYS, Feedback, Launch, PrePost, Retention, launches, scorecard

router = APIRouter(prefix="/v1/launches", tags=["launches"])

RETENTION_DEFINITION = (
    "users active in the 28 days before the launch and in days 0-6 after it; retained = "
    "active in days 7-13 (24-hour steps from launched_at); adopters first used the "
    "feature in days 0-6"
)


def _launch(x: Launch) -> LaunchOut:
    return from_dataclass(LaunchOut, x, launched_at=iso(x.launched_at))


def _prepost(p: PrePost) -> PrePostOut:
    return PrePostOut.model_validate(p)


def _retention(r: Retention) -> RetentionOut:
    return RetentionOut.model_validate(r)


def _feedback(f: Feedback) -> FeedbackOut:
    return FeedbackOut.model_validate(f)


@router.get("", response_model=LaunchesResponse)
def list_launches(engine: EngineDep) -> LaunchesResponse:
    return LaunchesResponse(launches=[_launch(x) for x in launches(engine)])


@router.get("/{launch_id}/scorecard", response_model=LaunchScorecardResponse)
def launch_scorecard(
    launch_id: str,
    engine: EngineDep,
    window_days: Annotated[
        int, Query(ge=1, le=180, description="Days before and after the launch compared.")
    ] = DEFAULT_WINDOW_DAYS,
) -> LaunchScorecardResponse:
    s = scorecard(engine, launch_id, window_days)
    return LaunchScorecardResponse(
        launch=_launch(s.launch),
        window_days=s.window_days,
        pre_start=iso(s.pre_start),
        post_end=iso(s.post_end),
        platforms=list(s.platforms),
        adopters=s.adopters,
        adoption=[from_dataclass(LaunchAdoptionDayOut, a, date=iso(a.date)) for a in s.adoption],
        time_to_first_use_days=s.time_to_first_use,
        retention=RetentionComparisonOut(
            definition=RETENTION_DEFINITION,
            adopters=_retention(s.retention_adopters),
            non_adopters=_retention(s.retention_non_adopters),
            difference=s.retention_test.difference,
            p_value=s.retention_test.p_value,
        ),
        incidents_caused_by_launch=s.incidents_caused,
        feature_incidents=[_prepost(p) for p in s.feature_incidents],
        feature_tickets=_prepost(s.feature_tickets) if s.feature_tickets else None,
        feedback={"adopters": _feedback(s.feedback_adopters), "non_adopters": _feedback(s.feedback_non_adopters)},
        quality=[_prepost(p) for p in s.quality],
        withheld=[WithheldOut.model_validate(w) for w in s.withheld],
    )
