"""Response models of the quality, release, launch and alert routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class KpiPeriodOut(BaseModel):
    period_start: str
    period_end: str = Field(description="Exclusive end of the period (cut at the requested end).")
    complete: bool = Field(description="False when the period runs past the requested end or the data.")
    value: float | None
    previous: float | None
    change: float | None
    relative_change: float | None
    status: str = Field(description="ok | warn | breach against the metric's SLO; no_data; no_slo.")
    target: float | None
    warn: float | None


class KpiOut(BaseModel):
    metric: str
    label: str
    severity: str | None = None
    platform_scoped: bool = Field(description="Whether the platform filter applies to this KPI.")
    direction: str | None
    current: KpiPeriodOut | None
    periods: list[KpiPeriodOut]


class WithheldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    reason: str = Field(description="Why the caller's row-level policy cannot restrict this metric.")


class QualityResponse(BaseModel):
    period: str
    start: str
    end: str
    platform: str | None
    kpis: list[KpiOut]
    withheld: list[WithheldOut] = Field(
        default_factory=list, description=("KPIs left out for this caller: its row-level policy cannot restrict them.")
    )


class AdoptionDayOut(BaseModel):
    day: int
    date: str
    version_users: int
    platform_users: int
    share: float | None


class VersionSampleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    app_version: str | None
    active_users: int
    crashed_users: int
    events: int
    errors: int
    crash_free_user_rate: float | None
    errors_per_1k_events: float | None


class ComparisonOut(BaseModel):
    metric: str
    candidate_rate: float | None
    baseline_rate: float | None
    difference: float | None
    z: float | None
    p_value: float | None
    regressed: bool | None = Field(description="null when the test could not run (`error` says why).")
    error: str | None = None


class ReleaseOut(BaseModel):
    platform: str
    app_version: str
    released_at: str
    previous_app_version: str | None
    window_start: str
    window_end: str
    alpha: float
    regressed: bool | None = Field(
        description="true when a test found a regression, false when every test ran "
        "and none did, null when it cannot be said (see regressed_reason)."
    )
    regressed_reason: str | None = Field(default=None, description="Why regressed is null, in words.")
    crash_free_user_rate: float | None
    previous_crash_free_user_rate: float | None
    errors_per_1k_events: float | None
    previous_errors_per_1k_events: float | None
    current: VersionSampleOut
    previous: VersionSampleOut | None
    crash_test: ComparisonOut | None
    error_test: ComparisonOut | None
    adoption: list[AdoptionDayOut] = []


class ReleasesResponse(BaseModel):
    releases: list[ReleaseOut]


class LaunchOut(BaseModel):
    launch_id: str
    feature_key: str
    launch_name: str
    tier: str
    owner_team: str
    launched_at: str


class LaunchesResponse(BaseModel):
    launches: list[LaunchOut]


class LaunchAdoptionDayOut(BaseModel):
    day: int
    date: str
    feature_users: int
    active_users: int
    share: float | None
    cumulative_adopters: int


class RetentionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    users: int
    retained: int
    rate: float | None


class RetentionComparisonOut(BaseModel):
    definition: str
    adopters: RetentionOut
    non_adopters: RetentionOut
    difference: float | None
    p_value: float | None


class FeedbackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    nps: float | None
    nps_responses: int
    csat: float | None
    csat_responses: int


class PrePostOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    metric: str
    severity: str | None = None
    before: float | None
    after: float | None
    change: float | None
    direction: str | None


class LaunchScorecardResponse(BaseModel):
    launch: LaunchOut
    window_days: int
    pre_start: str
    post_end: str
    platforms: list[str]
    adopters: int
    adoption: list[LaunchAdoptionDayOut]
    time_to_first_use_days: dict[str, float | None]
    retention: RetentionComparisonOut
    incidents_caused_by_launch: int | None = Field(description="Null when withheld (see `withheld`).")
    feature_incidents: list[PrePostOut]
    feature_tickets: PrePostOut | None = Field(description="Null when withheld (see `withheld`).")
    feedback: dict[str, FeedbackOut]
    quality: list[PrePostOut]
    withheld: list[WithheldOut] = Field(
        default_factory=list,
        description=("Metrics left out for this caller: its row-level policy cannot restrict them."),
    )


class AlertOut(BaseModel):
    metric: str
    date: str
    value: float
    expected: float
    lower_bound: float = Field(
        description="Lower edge of the expected band, within the metric's domain (never below 0 for a count)."
    )
    upper_bound: float = Field(description="Upper edge of the band, within the metric's domain (<= 1 for a share).")
    direction: str
    score: float
    adverse: bool = Field(
        description="The move is in the metric's bad direction (meta direction, "
        "slo.direction or lower_is_better; default higher is better)."
    )


class AlertsResponse(BaseModel):
    alerts: list[AlertOut]
