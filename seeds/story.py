"""The planted story of the synthetic landing data.

Everything the demo and the downstream tests rely on is declared here as
module constants, so that a test can say ``BAD_RELEASE`` instead of repeating
``("android", "5.3.0")``.

Dates are declared as day offsets within a *reference* window of
``REFERENCE_DAYS`` (90) days. :func:`story_timeline` rescales them to the
window actually generated, so that a short test window (say 28 days) still
contains the whole story: every release, launch and experiment, in the same
order. For the default window (90 days from 2026-01-05) the offsets are used
as they are; ``PLANTED`` lists the resulting dates.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

#: Window the story offsets below are written for.
REFERENCE_DAYS = 90
DEFAULT_START = datetime.date(2026, 1, 5)
DEFAULT_DAYS = 90

PLATFORMS: tuple[str, ...] = ("web", "ios", "android")
PLANS: tuple[str, ...] = ("free", "pro", "enterprise")
REGIONS: tuple[str, ...] = ("amer", "emea", "apac")

#: The crashing Android release and the hotfix that replaced it.
BAD_RELEASE: tuple[str, str] = ("android", "5.3.0")
HOTFIX_RELEASE: tuple[str, str] = ("android", "5.3.1")
#: Crashes per session on BAD_RELEASE relative to every other mobile release.
BAD_RELEASE_CRASH_MULTIPLIER = 9.0

#: Releases per platform as (app_version, reference day offset). Negative
#: offsets lie before the window and are not rescaled: they make sure that
#: every version a slow-upgrading user can be on exists in ``releases``.
RELEASES: dict[str, tuple[tuple[str, int], ...]] = {
    "ios": (
        ("4.5.0", -110),
        ("4.6.0", -88),
        ("4.7.0", -60),
        ("4.8.0", -33),
        ("4.9.0", -12),
        ("5.0.0", 4),
        ("5.1.0", 20),
        ("5.2.0", 36),
        ("5.3.0", 50),
        ("5.4.0", 64),
        ("5.5.0", 79),
    ),
    "android": (
        ("4.5.0", -112),
        ("4.6.0", -91),
        ("4.7.0", -63),
        ("4.8.0", -35),
        ("4.9.0", -14),
        ("5.0.0", 2),
        ("5.1.0", 17),
        ("5.2.0", 32),
        ("5.3.0", 45),
        ("5.3.1", 52),
        ("5.4.0", 66),
        ("5.5.0", 81),
    ),
}
#: Releases ship in the evening (UTC) of their day.
RELEASE_HOUR = 17

#: Product features that exist for the whole window.
BASE_FEATURES: tuple[str, ...] = (
    "dashboards",
    "reports",
    "alerts",
    "exports",
    "integrations",
    "sharing",
    "search",
    "comments",
    "onboarding",
    "checkout",
)


@dataclass(frozen=True)
class LaunchSpec:
    """A feature launch of the story.

    Attributes:
        launch_id: Primary key in ``launches``.
        feature_key: New feature the launch ships; absent from events before it
            (internal users may dogfood it early, see ``dogfood_days``).
        launch_name: Human readable name.
        tier: ``major``, ``minor`` or ``experiment``.
        owner_team: Team that owns the launch.
        day: Reference day offset of the launch.
        adopter_share: Share of users that ever adopt the feature.
        event_share: Share of an adopter's ``feature_used`` events that touch it.
        dogfood_days: Internal users get the feature this many days early.
    """

    launch_id: str
    feature_key: str
    launch_name: str
    tier: str
    owner_team: str
    day: int
    adopter_share: float
    event_share: float
    dogfood_days: int = 0


LAUNCHES: tuple[LaunchSpec, ...] = (
    LaunchSpec("lch_001", "ai_assistant", "AI assistant GA", "major", "ml-platform", 30, 0.55, 0.30, dogfood_days=10),
    LaunchSpec("lch_002", "smart_alerts", "Smart alerts", "minor", "notifications", 40, 0.30, 0.20),
    LaunchSpec("lch_003", "workspace_templates", "Workspace templates", "minor", "collaboration", 58, 0.30, 0.20),
    LaunchSpec("lch_004", "bulk_export", "Bulk export (beta)", "experiment", "data-platform", 64, 0.20, 0.15),
)
#: The launch that causes incidents shortly after it ships.
INCIDENT_LAUNCH_ID = "lch_001"
#: Hours after INCIDENT_LAUNCH_ID at which its incidents open, with severities.
INCIDENT_LAUNCH_INCIDENTS: tuple[tuple[int, str], ...] = ((20, "sev2"), (70, "sev1"), (140, "sev3"))
LAUNCH_HOUR = 16


@dataclass(frozen=True)
class ExperimentSpec:
    """An A/B experiment of the story.

    Attributes:
        experiment_id: Primary key in ``experiments``.
        experiment_name: Human readable name.
        feature_key: Feature under test (nullable in the contract).
        hypothesis: What the team expected.
        start_day: Reference day offset of the start.
        end_day: Reference day offset of the end, ``None`` while running.
        purchase_lift: Multiplier on the per-session purchase probability of
            treatment users while the experiment runs (1.0 = no effect).
    """

    experiment_id: str
    experiment_name: str
    feature_key: str | None
    hypothesis: str | None
    start_day: int
    end_day: int | None
    purchase_lift: float


CONTROL_VARIANT = "control"
TREATMENT_VARIANT = "treatment"
EXPERIMENTS: tuple[ExperimentSpec, ...] = (
    ExperimentSpec(
        "exp_onboarding_tooltip",
        "Onboarding tooltip",
        "onboarding",
        "A contextual tooltip on first login raises engagement.",
        8,
        50,
        1.0,
    ),
    ExperimentSpec(
        "exp_checkout_redesign",
        "Checkout redesign",
        "checkout",
        "A single-page checkout raises purchase conversion.",
        14,
        56,
        1.35,
    ),
    ExperimentSpec("exp_search_ranking_v2", "Search ranking v2", "search", None, 70, None, 1.0),
)
#: Users are enrolled (assigned) at their first session within this many
#: reference days after the experiment start.
ENROLMENT_DAYS = 14
#: Share of enrolled users that get a second, conflicting assignment row later.
DOUBLE_ASSIGNMENT_SHARE = 0.005

#: Android support tickets and NPS react for this many reference days after BAD_RELEASE.
BAD_RELEASE_AFTERMATH_DAYS = 14
BAD_RELEASE_TICKET_MULTIPLIER = 4.0
BAD_RELEASE_NPS_SHIFT = -3

INTERNAL_SHARE = 0.03
DUPLICATE_EVENT_SHARE = 0.007
#: Share of purchases refunded later the same UTC day (a `refund` event with negative revenue_usd).
REFUND_SHARE = 0.05
#: Share of refunds that give back half the purchase (the rest give back all of it).
PARTIAL_REFUND_SHARE = 0.25
ANONYMOUS_ERROR_SHARE = 0.08
NULL_COUNTRY_SHARE = 0.02


@dataclass(frozen=True)
class Timeline:
    """Concrete day offsets (from the window start) of the story for one window.

    Attributes:
        start: First day of the window.
        days: Length of the window in days.
        releases: ``{platform: ((app_version, day), ...)}`` ordered by version.
        launch_days: Launch day per launch_id.
        experiment_days: ``(start_day, end_day | None)`` per experiment_id.
        enrolment_days: Enrolment period length in days.
        aftermath_days: Length of the bad-release aftermath in days.
    """

    start: datetime.date
    days: int
    releases: dict[str, tuple[tuple[str, int], ...]]
    launch_days: dict[str, int]
    experiment_days: dict[str, tuple[int, int | None]]
    enrolment_days: int
    aftermath_days: int

    def date(self, day: int) -> datetime.date:
        """Calendar date of a day offset."""
        return self.start + datetime.timedelta(days=day)

    def release_day(self, platform: str, app_version: str) -> int:
        """Day offset of a release."""
        return dict(self.releases[platform])[app_version]

    @property
    def bad_release_day(self) -> int:
        """Day offset of BAD_RELEASE."""
        return self.release_day(*BAD_RELEASE)


def story_timeline(start: datetime.date = DEFAULT_START, days: int = DEFAULT_DAYS) -> Timeline:
    """Rescale the reference story to a window.

    Args:
        start: First day of the window.
        days: Length of the window in days.

    Returns:
        The concrete timeline. In-window offsets are scaled by
        ``days / REFERENCE_DAYS`` and kept inside ``[0, days - 1]`` and in
        their reference order; pre-window offsets are kept as they are.
    """
    scale = days / REFERENCE_DAYS

    def at(ref_day: int) -> int:
        if ref_day < 0:
            return ref_day
        return min(days - 1, int(round(ref_day * scale)))

    releases = {}
    for platform, versions in RELEASES.items():
        scaled: list[tuple[str, int]] = []
        for version, ref_day in versions:
            day = at(ref_day)
            if scaled:
                # Versions must stay ordered in time even when a short window
                # squeezes two releases onto the same day.
                day = max(day, scaled[-1][1])
            scaled.append((version, day))
        releases[platform] = tuple(scaled)
    return Timeline(
        start=start,
        days=days,
        releases=releases,
        launch_days={spec.launch_id: at(spec.day) for spec in LAUNCHES},
        experiment_days={
            spec.experiment_id: (at(spec.start_day), None if spec.end_day is None else at(spec.end_day))
            for spec in EXPERIMENTS
        },
        enrolment_days=max(1, int(round(ENROLMENT_DAYS * scale))),
        aftermath_days=max(1, int(round(BAD_RELEASE_AFTERMATH_DAYS * scale))),
    )


def planted_facts(start: datetime.date = DEFAULT_START, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """The planted facts of a window, with calendar dates.

    Args:
        start: First day of the window.
        days: Length of the window in days.

    Returns:
        A JSON-friendly dictionary (dates as ISO strings) describing what the
        data is expected to show.
    """
    tl = story_timeline(start, days)
    bad_day = tl.bad_release_day
    return {
        "window": {"start": start.isoformat(), "days": days, "end_exclusive": tl.date(days).isoformat()},
        "bad_release": {
            "platform": BAD_RELEASE[0],
            "app_version": BAD_RELEASE[1],
            "released_on": tl.date(bad_day).isoformat(),
            "crash_rate_multiplier": BAD_RELEASE_CRASH_MULTIPLIER,
            "hotfix_app_version": HOTFIX_RELEASE[1],
            "hotfix_released_on": tl.date(tl.release_day(*HOTFIX_RELEASE)).isoformat(),
            "aftermath_until": tl.date(bad_day + tl.aftermath_days).isoformat(),
            "android_ticket_multiplier": BAD_RELEASE_TICKET_MULTIPLIER,
            "android_nps_shift": BAD_RELEASE_NPS_SHIFT,
        },
        "launches": {
            spec.launch_id: {
                "feature_key": spec.feature_key,
                "tier": spec.tier,
                "launched_on": tl.date(tl.launch_days[spec.launch_id]).isoformat(),
            }
            for spec in LAUNCHES
        },
        "incident_launch_id": INCIDENT_LAUNCH_ID,
        "experiments": {
            spec.experiment_id: {
                "started_on": tl.date(tl.experiment_days[spec.experiment_id][0]).isoformat(),
                "ended_on": (
                    None if spec.end_day is None else tl.date(tl.experiment_days[spec.experiment_id][1]).isoformat()
                ),
                "per_session_purchase_lift": spec.purchase_lift,
                "has_effect": spec.purchase_lift != 1.0,
            }
            for spec in EXPERIMENTS
        },
        "internal_share": INTERNAL_SHARE,
        "duplicate_event_share": DUPLICATE_EVENT_SHARE,
        "refund_share": REFUND_SHARE,
        "anonymous_error_share": ANONYMOUS_ERROR_SHARE,
    }


#: Planted facts of the default window (the committed sample).
PLANTED: dict[str, Any] = planted_facts()
