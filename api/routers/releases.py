"""Release health: adoption of each app version and its regression test against the previous one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import EngineDep
from api.routers.scorecard_params import iso
from api.schemas.convert import from_dataclass
from api.schemas.scorecards import (
    AdoptionDayOut,
    ComparisonOut,
    ReleaseOut,
    ReleasesResponse,
    VersionSampleOut,
)
from metrics.scorecards.releases import (
    DEFAULT_ALPHA,
    DEFAULT_WINDOW_DAYS,
    RateComparison,
    ReleaseHealth,
    VersionSample,
    all_release_health,
    release_health,
)

router = APIRouter(prefix="/v1/releases", tags=["releases"])

WindowDays = Annotated[int, Query(ge=1, le=90, description="Days after the release compared.")]
Alpha = Annotated[float, Query(gt=0, lt=1, description="Two-sided significance level of the regression test.")]


def _sample(s: VersionSample | None) -> VersionSampleOut | None:
    if s is None:
        return None
    return VersionSampleOut.model_validate(s)


def _comparison(c: RateComparison | None) -> ComparisonOut | None:
    if c is None:
        return None
    t = c.test
    return ComparisonOut(
        metric=c.metric,
        candidate_rate=t.candidate_rate,
        baseline_rate=t.baseline_rate,
        difference=t.difference,
        z=t.z,
        p_value=t.p_value,
        regressed=c.regressed,
        error=t.error,
    )


def _release(h: ReleaseHealth) -> ReleaseOut:
    r = h.release
    return ReleaseOut(
        platform=r.platform,
        app_version=r.app_version,
        released_at=iso(r.released_at),
        previous_app_version=r.previous_app_version,
        window_start=iso(h.window_start),
        window_end=iso(h.window_end),
        alpha=h.alpha,
        regressed=h.regressed,
        regressed_reason=h.regressed_reason,
        crash_free_user_rate=h.current.crash_free_user_rate,
        previous_crash_free_user_rate=h.previous.crash_free_user_rate if h.previous else None,
        errors_per_1k_events=h.current.errors_per_1k_events,
        previous_errors_per_1k_events=h.previous.errors_per_1k_events if h.previous else None,
        current=_sample(h.current),
        previous=_sample(h.previous),
        crash_test=_comparison(h.crash),
        error_test=_comparison(h.errors),
        adoption=[from_dataclass(AdoptionDayOut, a, date=iso(a.date)) for a in h.adoption],
    )


@router.get("", response_model=ReleasesResponse)
def list_releases(
    engine: EngineDep,
    platform: str | None = None,
    window_days: WindowDays = DEFAULT_WINDOW_DAYS,
    alpha: Alpha = DEFAULT_ALPHA,
) -> ReleasesResponse:
    found = all_release_health(engine, platform, window_days=window_days, alpha=alpha)
    return ReleasesResponse(releases=[_release(h) for h in found])


@router.get("/{platform}/{app_version}", response_model=ReleaseOut)
def get_release(
    platform: str,
    app_version: str,
    engine: EngineDep,
    window_days: WindowDays = DEFAULT_WINDOW_DAYS,
    alpha: Alpha = DEFAULT_ALPHA,
    adoption_days: Annotated[int, Query(ge=0, le=365)] = 28,
) -> ReleaseOut:
    return _release(
        release_health(engine, platform, app_version, window_days=window_days, alpha=alpha, adoption_days=adoption_days)
    )
