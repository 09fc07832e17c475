"""Response bodies of the experiment routes (`http-api.md`, Experiments)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class VariantUsers(BaseModel):
    variant: str
    users: int
    users_in_several_variants: int = Field(description="Users also seen in another variant; analysed in their first.")


class ExperimentSummary(BaseModel):
    experiment_id: str
    name: str
    status: str
    control_variant: str
    started_at: str | None
    ended_at: str | None
    variants: list[VariantUsers]
    users: int


class ExperimentsResponse(BaseModel):
    experiments: list[ExperimentSummary]


class ExperimentMetricSummary(BaseModel):
    name: str
    metric: str = Field(description="The semantic-layer metric it reads.")
    kind: str = Field(description="binomial, mean or ratio (delta method).")
    lower_is_better: bool
    description: str


class ExperimentMetricsResponse(BaseModel):
    experiment_id: str
    metrics: list[ExperimentMetricSummary]


class CupedResult(BaseModel):
    """The same test regression-adjusted on each user's pre-assignment value (CUPED)."""

    absolute_lift: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_win: float | None
    variance_reduction: float | None = Field(description="1 - adjusted / unadjusted variance of the lift.")
    verdict: str
    error: str | None = None


class ReadoutResult(BaseModel):
    metric: str
    variant: str
    slice: dict[str, Any] = Field(default_factory=dict)
    control_users: int
    variant_users: int
    control_mean: float | None
    variant_mean: float | None
    absolute_lift: float | None
    absolute_ci_low: float | None
    absolute_ci_high: float | None
    relative_lift: float | None
    ci_low: float | None = Field(
        description="Lower end of the relative lift's interval; never below -1 (-100%) "
        "for a metric whose per-user values cannot be negative."
    )
    ci_high: float | None
    p_value: float | None
    adjusted_p_value: float | None = None
    chance_to_win: float | None
    risk: list[float] | None = Field(default=None, description="Expected loss of choosing control, variant.")
    cuped: CupedResult | None = Field(default=None, description="CUPED-adjusted test, when requested.")
    verdict: str = Field(
        description="One sentence for people: follows the relative test and the interval it "
        "prints; 'inconclusive' when the absolute test disagrees; 'not judged' for a slice "
        "flagged too_few_users or srm. No internal codes: those are in `flags`."
    )
    flags: list[str] = Field(
        description="srm, too_few_users, relative_ci_bounded, tests_disagree, cuped_differs, "
        "guardrail_regression, guardrail_harm, not_significant_across_slices, and the "
        "lower-cased error code of a test that could not run."
    )
    error: str | None = None
    role: str | None = Field(
        default=None,
        description="goal, secondary or guardrail (the experiment's settings in the dbt project), or null.",
    )
    slice_adjusted_p_value: float | None = Field(
        default=None,
        description="p-value corrected across the slices of the same metric and variant (sliced readouts only).",
    )


class Decision(BaseModel):
    variant: str
    decision: str = Field(description="ship, roll back, keep running, no clear signal, not judged, no goal metric.")
    sentence: str
    winning_goals: list[str]
    losing_goals: list[str]
    failing_guardrails: list[str]


class MetricRoles(BaseModel):
    goal: list[str]
    secondary: list[str]
    guardrail: list[str]


class ReadoutResponse(BaseModel):
    experiment_id: str
    control_variant: str
    status: str
    srm_p_value: float
    srm_warning: bool
    variants: list[VariantUsers]
    options: dict[str, Any]
    results: list[ReadoutResult]
    build_id: str = Field(description="The warehouse build that answered.")
    cached: bool = Field(description="Whether this readout came from the build's readout cache.")
    elapsed_ms: float
    roles: MetricRoles | None = None
    decisions: list[Decision] = Field(
        default_factory=list,
        description="Per variant, what the unsliced goal and guardrail metrics support (none for sliced readouts).",
    )


class PlanWeek(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    week: int
    users_per_arm: int
    mde: float | None = Field(
        description="Smallest relative effect detected with the requested power; null when none is."
    )
    power_at_mde: float | None = Field(default=None, description="Power at the requested mde after this week.")


class PlanResponse(BaseModel):
    metric: str
    mde: float | None
    weeks_requested: int | None
    arms: int
    alpha: float
    power: float
    cuped: bool
    eligible_users: int
    weekly_users: float
    mean: float
    variance: float
    variance_reduction: float
    window_start: str
    window_end: str
    users_per_arm: int | None
    total_users: int | None
    weeks_needed: int | None
    weeks: list[PlanWeek]
    build_id: str


class DailyTraffic(BaseModel):
    date: str
    users: dict[str, int]
    p_value: float | None
    imbalanced: bool


class HealthResponse(BaseModel):
    experiment_id: str
    status: str
    users: int
    variants: dict[str, int]
    srm_p_value: float
    srm_warning: bool
    multiple_exposure_users: int
    multiple_exposure_share: float
    multiple_exposure_warning: bool
    assigned_before_start: int
    assigned_after_end: int
    out_of_window_warning: bool
    daily: list[DailyTraffic]
    imbalanced_days: list[str]
    planned_users_per_variant: int | None
    smallest_variant_users: int
    planned_sample_reached: bool | None
    warnings: list[str]
    settings_problems: list[str]
    build_id: str
