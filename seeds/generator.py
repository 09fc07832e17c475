"""Deterministic synthetic landing data for northstar.

``generate(out)`` writes the landing contract into ``out/``: one
``<table>.parquet`` per table, except ``events`` which is a folder of Parquet
part files. The data tells the story declared in :mod:`seeds.story` (a
crashing Android release, feature launches, one incident-causing launch, an
experiment with a real effect and one without, ...). See ``seeds/README.md``.

Events are simulated a chunk of days (and, for very large runs, a block of
users) at a time, vectorised with numpy, and each chunk is written as its own
part file before the next one is built, so memory stays bounded whatever the
number of events. The per-user state that has to survive between chunks
(experiment assignments, signup times) is a handful of arrays of length
``users``.

Regenerate the committed sample with ``python -m seeds.generator`` (see the
README for the exact command).
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seeds import landing as L
from seeds.story import (
    ANONYMOUS_ERROR_SHARE,
    BAD_RELEASE,
    BAD_RELEASE_CRASH_MULTIPLIER,
    BAD_RELEASE_NPS_SHIFT,
    BAD_RELEASE_TICKET_MULTIPLIER,
    BASE_FEATURES,
    CONTROL_VARIANT,
    DEFAULT_DAYS,
    DEFAULT_START,
    DOUBLE_ASSIGNMENT_SHARE,
    DUPLICATE_EVENT_SHARE,
    EXPERIMENTS,
    HOTFIX_RELEASE,
    INCIDENT_LAUNCH_ID,
    INCIDENT_LAUNCH_INCIDENTS,
    INTERNAL_SHARE,
    LAUNCH_HOUR,
    LAUNCHES,
    NULL_COUNTRY_SHARE,
    PARTIAL_REFUND_SHARE,
    PLANS,
    PLANTED,
    PLATFORMS,
    REGIONS,
    RELEASE_HOUR,
    REFUND_SHARE,
    TREATMENT_VARIANT,
    Timeline,
    planted_facts,
    story_timeline,
)

__all__ = [
    "BAD_RELEASE",
    "DEFAULT_USERS",
    "EVENTS_PER_USER_DAY",
    "EXPERIMENTS",
    "GenerationSummary",
    "HOTFIX_RELEASE",
    "INCIDENT_LAUNCH_ID",
    "LAUNCHES",
    "PLANTED",
    "SAMPLE_DIR",
    "generate",
    "main",
    "planted_facts",
]

SAMPLE_DIR = Path(__file__).parent / "sample"

#: Default population; with the default 90-day window it gives the committed
#: sample (~245k event rows).
DEFAULT_USERS = 5500
#: Measured average of event rows per user per calendar day of the window
#: (users counted whether or not they have signed up yet). Used to size the
#: event chunks and documented so callers can pick ``users`` for a target
#: event count: events ~= users * days * EVENTS_PER_USER_DAY.
EVENTS_PER_USER_DAY = 0.5
#: Upper bound (roughly) on the number of events built in memory at once.
TARGET_EVENTS_PER_PART = 600_000
MAX_DAYS_PER_PART = 7

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
#: Seed-sequence key of the refunds' own random stream.
REFUND_STREAM = 0x5EF0D
WEB, IOS, ANDROID = 0, 1, 2

# --- behaviour knobs (why these values: see the README's "model" section) ---
PRE_WINDOW_SIGNUP_SHARE = 0.30
PRE_WINDOW_MAX_DAYS = 540
USERS_PER_ACCOUNT = 6
PLATFORM_MIX = (0.50, 0.27, 0.23)
#: Mobile users open the web app for this share of their sessions.
MOBILE_WEB_SESSION_SHARE = 0.15
#: Weekday activity factors, Monday first: weekends are clearly quieter.
WEEKLY = np.array([1.12, 1.15, 1.15, 1.12, 1.02, 0.55, 0.50], dtype=np.float32)
#: Share of users that come back after their signup day (the rest try the
#: product once and are gone); pre-window users are survivors, so higher.
RETURNER_SHARE = 0.45
RETURNER_SHARE_PRE_WINDOW = 0.65
#: Share of returners that stay (activity decays to a floor) rather than fade out.
RETAINED_SHARE = 0.75
MAX_DAILY_ACTIVE_P = 0.97
SESSION_GAP_MEAN_S = 40.0
#: Propensity strata of the experiment randomisation.
STRATA = 10
PURCHASE_P_BY_PLAN = (0.045, 0.07, 0.08)
REVENUE_MEAN_BY_PLAN = (19.0, 79.0, 349.0)
REGION_UTC_OFFSET_H = np.array([-6.0, 1.0, 8.0])
CRASH_P = {WEB: 0.001, IOS: 0.005, ANDROID: 0.005}
ERROR_RATE = 0.02
WARNING_RATE = 0.06
TICKET_P = 0.01
FEEDBACK_P = 0.04

BODY_EVENTS = (
    ("page_view", 0.48), ("feature_used", 0.30), ("search", 0.06),
    ("comment_added", 0.05), ("notification_opened", 0.04), ("share", 0.03),
    ("invite_sent", 0.02), ("settings_changed", 0.02),
)
EVENT_NAMES: tuple[str, ...] = (
    tuple(name for name, _ in BODY_EVENTS) + ("session_start", "signup", "checkout_started", "purchase", "refund")
)
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_BODY_CUM = np.cumsum([p for _, p in BODY_EVENTS]) / sum(p for _, p in BODY_EVENTS)

FEATURES: tuple[str, ...] = BASE_FEATURES + tuple(spec.feature_key for spec in LAUNCHES)
_FK = {name: i for i, name in enumerate(FEATURES)}
#: Features that ``feature_used`` / ``page_view`` events spread over before launches.
USAGE_FEATURES = ("dashboards", "reports", "alerts", "exports", "integrations", "sharing", "comments")
_USAGE_CODES = np.array([_FK[f] for f in USAGE_FEATURES])
_USAGE_CUM = np.cumsum([0.28, 0.22, 0.12, 0.1, 0.1, 0.09, 0.09])

INDUSTRIES = ("software", "fintech", "healthcare", "retail", "media", "education",
              "manufacturing", "logistics", "public_sector")
COUNTRIES_BY_REGION = {
    "amer": (("US", 0.62), ("CA", 0.12), ("BR", 0.12), ("MX", 0.08), ("AR", 0.06)),
    "emea": (("GB", 0.22), ("DE", 0.2), ("FR", 0.15), ("NL", 0.1), ("ES", 0.08), ("SE", 0.07),
             ("IT", 0.07), ("PL", 0.05), ("IE", 0.03), ("ZA", 0.03)),
    "apac": (("IN", 0.3), ("AU", 0.2), ("JP", 0.18), ("SG", 0.12), ("KR", 0.1), ("NZ", 0.1)),
}
COUNTRIES: tuple[str, ...] = tuple(c for r in REGIONS for c, _ in COUNTRIES_BY_REGION[r])

ERROR_TYPES = {
    ("crash", WEB): ("RendererCrash", "OutOfMemory"),
    ("crash", IOS): ("EXC_BAD_ACCESS", "SIGABRT", "WatchdogTermination"),
    ("crash", ANDROID): ("NullPointerException", "OutOfMemoryError", "ANR", "IllegalStateException"),
    ("error", WEB): ("TypeError", "HTTP500", "HTTP502", "ChunkLoadError"),
    ("error", IOS): ("HTTP500", "DecodingError", "TimeoutError"),
    ("error", ANDROID): ("HTTP500", "JsonParseException", "TimeoutError"),
    ("warning", WEB): ("SlowRender", "DeprecatedApi", "RetryExhausted"),
    ("warning", IOS): ("SlowRender", "LowMemoryWarning", "RetryExhausted"),
    ("warning", ANDROID): ("SlowRender", "StrictModeViolation", "RetryExhausted"),
}
SEVERITIES = ("crash", "error", "warning")
ERROR_TYPE_NAMES: tuple[str, ...] = tuple(sorted({t for v in ERROR_TYPES.values() for t in v}))
_ET = {name: i for i, name in enumerate(ERROR_TYPE_NAMES)}
#: Most crashes on the bad release share one signature, as a real regression would.
BAD_RELEASE_CRASH_TYPE = "IllegalStateException"

TICKET_CATEGORIES = ("bug", "billing", "how_to", "feature_request", "account_access",
                     "performance", "data_quality", "crash")
_TICKET_CAT_P = np.array([0.22, 0.18, 0.22, 0.14, 0.1, 0.08, 0.06, 0.0])
_TICKET_CAT_AFTERMATH_P = np.array([0.25, 0.05, 0.05, 0.02, 0.03, 0.1, 0.0, 0.5])
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_P_BY_PLAN = ((0.4, 0.5, 0.08, 0.02), (0.25, 0.5, 0.2, 0.05), (0.15, 0.45, 0.28, 0.12))
PRIORITY_RESOLUTION_H = (72.0, 30.0, 10.0, 4.0)

FEEDBACK_CHANNELS = ("in_app", "survey", "email")
NPS_P = np.array([0.02, 0.01, 0.02, 0.03, 0.03, 0.06, 0.07, 0.12, 0.2, 0.22, 0.22])
COMMENTS = {
    "negative": ("The app keeps crashing since the last update.", "Too slow to load dashboards.",
                 "Checkout failed twice.", "Hard to find what I need.", "Support took too long."),
    "neutral": ("It does the job.", "Would like more export options.", "OK, some rough edges.",
                "Please add dark mode."),
    "positive": ("Love the new dashboards!", "Saves my team hours every week.",
                 "The AI assistant is great.", "Smooth and fast.", "Best tool we use."),
}
COMMENT_TEXTS: tuple[str, ...] = tuple(c for v in COMMENTS.values() for c in v)

ACCOUNT_WORDS = (
    ("Blue", "Bright", "North", "Silver", "Rapid", "Quiet", "Bold", "Clear", "Golden", "Iron",
     "Lunar", "Prime", "Red", "Summit", "True", "Urban", "Vivid", "Wild", "Zen", "Atlas"),
    ("Harbor", "Peak", "River", "Forge", "Pixel", "Cedar", "Falcon", "Orbit", "Stone", "Wave",
     "Maple", "Vector", "Beacon", "Canyon", "Delta", "Ember", "Grove", "Lattice", "Meadow", "Nimbus"),
    ("Labs", "Systems", "Group", "Analytics", "Health", "Studio", "Logistics", "Foods", "Capital",
     "Works", "Media", "Learning", "Retail", "Robotics", "Partners"),
)


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate` wrote.

    Attributes:
        out: Output directory.
        tables: Rows written per table (events include the duplicate rows).
        seed: Seed used.
        users: Number of users.
        days: Window length in days.
        start: First day of the window.
        event_parts: Number of part files under ``events/``.
        duplicate_events: Number of exact duplicate event rows planted.
        seconds: Wall-clock time of the run.
    """

    out: Path
    tables: dict[str, int]
    seed: int
    users: int
    days: int
    start: datetime.date
    event_parts: int = 0
    duplicate_events: int = 0
    seconds: float = 0.0

    @property
    def events_per_user_day(self) -> float:
        """Event rows per user per window day (the sizing figure of the README)."""
        return self.tables.get("events", 0) / max(1, self.users * self.days)


# ============================================================== population

@dataclass
class _Accounts:
    plan: np.ndarray
    region: np.ndarray
    industry: np.ndarray
    names: list[str]

    @property
    def n(self) -> int:
        return len(self.plan)


@dataclass
class _Population:
    """Per-user attributes and the state carried across event chunks."""

    account: np.ndarray
    signup_day: np.ndarray
    signup_us: np.ndarray
    internal: np.ndarray
    platform: np.ndarray
    region: np.ndarray
    plan: np.ndarray
    country: np.ndarray
    engagement: np.ndarray
    floor: np.ndarray
    tau: np.ndarray
    multi_session: np.ndarray
    body_rate: np.ndarray
    purchase_p: np.ndarray
    upgrade_lag: np.ndarray
    adopt_day: np.ndarray
    variant: np.ndarray  # first variant per (user, experiment): 0 control, 1 treatment, -1 not enrolled
    assigned_day: np.ndarray  # day of the first assignment, -1 if not enrolled

    @property
    def n(self) -> int:
        return len(self.account)


def _make_accounts(rng: np.random.Generator, users: int) -> _Accounts:
    """Accounts: account 0 is the company's own (internal) workspace."""
    n = max(2, int(round(users / USERS_PER_ACCOUNT)))
    plan = rng.choice(3, n, p=[0.55, 0.33, 0.12]).astype(np.int8)
    region = rng.choice(3, n, p=[0.5, 0.3, 0.2]).astype(np.int8)
    industry = rng.choice(len(INDUSTRIES), n).astype(np.int8)
    industry[rng.random(n) < 0.1] = -1
    words = [rng.integers(0, len(w), n) for w in ACCOUNT_WORDS]
    names = [f"{ACCOUNT_WORDS[0][a]} {ACCOUNT_WORDS[1][b]} {ACCOUNT_WORDS[2][c]}"
             for a, b, c in zip(*words, strict=True)]
    plan[0], region[0], industry[0] = PLANS.index("enterprise"), REGIONS.index("amer"), 0
    names[0] = "Northstar (internal)"
    return _Accounts(plan=plan, region=region, industry=industry, names=names)


def _make_population(rng: np.random.Generator, users: int, accounts: _Accounts,
                     tl: Timeline, epoch_us: int) -> _Population:
    """Draw every user's attributes; user ids follow the order of signup days.

    Args:
        rng: The run's random generator.
        users: Number of users.
        accounts: Accounts to attach users to.
        tl: Story timeline of the window.
        epoch_us: Window start as microseconds since the Unix epoch.
    """
    days = tl.days
    # Signup days: some before the window, the rest over the window with a
    # weekday pattern and mild growth, so that daily new-user cohorts exist.
    day_idx = np.arange(days)
    dow = (tl.start.weekday() + day_idx) % 7
    w = WEEKLY[dow].astype(np.float64) * (1.0 + 0.4 * day_idx / max(1, days))
    pre = rng.random(users) < PRE_WINDOW_SIGNUP_SHARE
    signup_day = np.where(pre, -rng.integers(1, PRE_WINDOW_MAX_DAYS + 1, users),
                          rng.choice(days, users, p=w / w.sum()))
    signup_day = np.sort(signup_day).astype(np.int32)

    # Internal users (employees, QA accounts) mostly joined before the window.
    n_internal = max(1, int(round(users * INTERNAL_SHARE)))
    early = np.nonzero(signup_day < 0)[0]
    n_early = min(len(early), int(round(n_internal * 0.8)))
    internal = np.zeros(users, dtype=bool)
    internal[rng.choice(early, n_early, replace=False)] = True
    rest = np.nonzero(~internal)[0]
    internal[rng.choice(rest, n_internal - n_early, replace=False)] = True

    # Bigger plans have more seats: account weight by plan times a lognormal.
    weight = np.array([1.0, 2.5, 8.0])[accounts.plan] * rng.lognormal(0.0, 0.7, accounts.n)
    weight[0] = 0.0
    account = rng.choice(accounts.n, users, p=weight / weight.sum()).astype(np.int32)
    staff = internal & (rng.random(users) < 0.75)  # the rest are QA users inside customer accounts
    account[staff] = 0

    region = accounts.region[account]
    plan = accounts.plan[account]
    country = np.empty(users, dtype=np.int16)
    offset = 0
    home = rng.random(users)
    for r, name in enumerate(REGIONS):
        codes = np.arange(offset, offset + len(COUNTRIES_BY_REGION[name]))
        cum = np.cumsum([p for _, p in COUNTRIES_BY_REGION[name]])
        m = region == r
        country[m] = codes[np.minimum(np.searchsorted(cum, home[m] * cum[-1], side="right"), len(codes) - 1)]
        offset += len(codes)
    abroad = rng.random(users) < 0.15  # travellers and remote staff
    country[abroad] = rng.integers(0, len(COUNTRIES), int(abroad.sum()))
    country[rng.random(users) < NULL_COUNTRY_SHARE] = -1

    platform = rng.choice(3, users, p=PLATFORM_MIX).astype(np.int8)
    # Activity model (see _daily_active_p): daily probability =
    # engagement x weekday x decay, decaying from 1 to a floor with time
    # constant tau after signup. One-time users have a tiny engagement.
    returner = rng.random(users) < np.where(signup_day < 0, RETURNER_SHARE_PRE_WINDOW, RETURNER_SHARE)
    returner |= internal
    engagement = np.where(returner, rng.beta(2.2, 1.8, users), rng.uniform(0.0, 0.04, users))
    # Staff and QA use the product most days, but they are few: keep their
    # share of events modest (~10%) so that excluding them matters but does
    # not dominate.
    engagement = np.where(internal, rng.beta(5, 2, users), engagement).astype(np.float32)
    retained = rng.random(users) < RETAINED_SHARE
    floor = np.where(retained & returner, rng.beta(7, 13, users), 0.03)
    floor = np.where(internal, 0.35, floor).astype(np.float32)
    tau = rng.uniform(6.0, 12.0, users).astype(np.float32)
    multi_session = (0.05 + 0.25 * engagement).astype(np.float64)
    body_rate = (1.2 + 2.4 * engagement).astype(np.float64)
    purchase_p = np.array(PURCHASE_P_BY_PLAN)[plan] * rng.lognormal(-0.1, 0.45, users)
    purchase_p = np.where(internal, 0.01, np.minimum(purchase_p, 0.2))

    # Days between a release and the user picking it up: most within days,
    # a long tail of slow updaters (capped so pre-window releases cover them).
    kind = rng.choice(3, users, p=[0.55, 0.35, 0.10])
    lag = 1 + rng.exponential(np.array([2.0, 8.0, 25.0])[kind])
    upgrade_lag = np.minimum(lag, 60).astype(np.int32)

    never = np.iinfo(np.int32).max
    adopt_day = np.full((users, len(LAUNCHES)), never, dtype=np.int32)
    for j, spec in enumerate(LAUNCHES):
        launch_day = tl.launch_days[spec.launch_id]
        adopter = rng.random(users) < spec.adopter_share
        delay = 1 + np.floor(rng.exponential(6.0, users)).astype(np.int32)
        adopt_day[adopter, j] = launch_day + delay[adopter]
        if spec.dogfood_days:
            adopt_day[internal, j] = launch_day - spec.dogfood_days

    # Pre-window signups get their time now; in-window signups get it from
    # their first session (the simulation overwrites these values).
    signup_us = epoch_us + signup_day.astype(np.int64) * DAY_US + rng.integers(0, DAY_US, users)

    return _Population(
        account=account, signup_day=signup_day, signup_us=signup_us, internal=internal,
        platform=platform, region=region, plan=plan, country=country, engagement=engagement,
        floor=floor, tau=tau, multi_session=multi_session, body_rate=body_rate,
        purchase_p=purchase_p, upgrade_lag=upgrade_lag, adopt_day=adopt_day,
        variant=np.full((users, len(EXPERIMENTS)), -1, dtype=np.int8),
        assigned_day=np.full((users, len(EXPERIMENTS)), -1, dtype=np.int32),
    )


def _accounts_table(rng: np.random.Generator, accounts: _Accounts, pop: _Population,
                    account_ids: pa.Array, epoch_us: int, days: int) -> pa.Table:
    """Accounts are created by their first user, moments before that user's signup."""
    created = np.full(accounts.n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(created, pop.account, pop.signup_us)
    empty = created == np.iinfo(np.int64).max
    # Accounts nobody joined (abandoned trials) still have a creation time.
    created[empty] = epoch_us + rng.integers(-PRE_WINDOW_MAX_DAYS * DAY_US, days * DAY_US, int(empty.sum()))
    created[~empty] -= rng.integers(1_000_000, 300_000_000, int((~empty).sum()))
    return L.table("accounts", {
        "account_id": account_ids,
        "account_name": pa.array(accounts.names, pa.string()),
        "plan": L.take(L.strings(PLANS), accounts.plan),
        "industry": L.take(L.strings(INDUSTRIES), accounts.industry),
        "region": L.take(L.strings(REGIONS), accounts.region),
        "created_at": L.timestamps(created),
    })


def _users_table(pop: _Population, user_ids: pa.Array, account_ids: pa.Array) -> pa.Table:
    """Users, written once the simulation has fixed in-window signup times."""
    return L.table("users", {
        "user_id": user_ids,
        "account_id": account_ids.take(pa.array(pop.account)),
        "signup_at": L.timestamps(pop.signup_us),
        "country": L.take(L.strings(COUNTRIES), pop.country),
        "is_internal": pa.array(pop.internal, pa.bool_()),
    })


# ===================================================== releases, launches, ...

def _releases_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """Mobile releases; web is continuously deployed and has no versions."""
    plat, ver, at = [], [], []
    for platform in ("ios", "android"):
        for version, day in tl.releases[platform]:
            plat.append(platform)
            ver.append(version)
            at.append(epoch_us + day * DAY_US + RELEASE_HOUR * HOUR_US)
    return L.table("releases", {
        "platform": pa.array(plat, pa.string()), "app_version": pa.array(ver, pa.string()),
        "released_at": L.timestamps(np.array(at)),
    })


def _launches_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """The story's feature launches."""
    return L.table("launches", {
        "launch_id": pa.array([s.launch_id for s in LAUNCHES], pa.string()),
        "feature_key": pa.array([s.feature_key for s in LAUNCHES], pa.string()),
        "launch_name": pa.array([s.launch_name for s in LAUNCHES], pa.string()),
        "tier": pa.array([s.tier for s in LAUNCHES], pa.string()),
        "owner_team": pa.array([s.owner_team for s in LAUNCHES], pa.string()),
        "launched_at": L.timestamps(np.array(
            [epoch_us + tl.launch_days[s.launch_id] * DAY_US + LAUNCH_HOUR * HOUR_US for s in LAUNCHES])),
    })


def _experiments_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """Experiments start and end at midnight UTC; a running one has no end."""
    ends = [tl.experiment_days[s.experiment_id][1] for s in EXPERIMENTS]
    return L.table("experiments", {
        "experiment_id": pa.array([s.experiment_id for s in EXPERIMENTS], pa.string()),
        "experiment_name": pa.array([s.experiment_name for s in EXPERIMENTS], pa.string()),
        "feature_key": pa.array([s.feature_key for s in EXPERIMENTS], pa.string()),
        "hypothesis": pa.array([s.hypothesis for s in EXPERIMENTS], pa.string()),
        "control_variant": pa.array([CONTROL_VARIANT] * len(EXPERIMENTS), pa.string()),
        "started_at": L.timestamps(np.array(
            [epoch_us + tl.experiment_days[s.experiment_id][0] * DAY_US for s in EXPERIMENTS])),
        "ended_at": L.timestamps(np.array([epoch_us + (e or 0) * DAY_US for e in ends]),
                                 valid=np.array([e is not None for e in ends])),
    })


def _incidents_table(rng: np.random.Generator, tl: Timeline, epoch_us: int) -> pa.Table:
    """Incidents: a cluster caused by INCIDENT_LAUNCH_ID, one after the bad release, and background noise."""
    end_us = epoch_us + tl.days * DAY_US
    opened: list[int] = []
    sev: list[str] = []
    feature: list[str | None] = []
    launch: list[str | None] = []
    spec = next(s for s in LAUNCHES if s.launch_id == INCIDENT_LAUNCH_ID)
    launched_us = epoch_us + tl.launch_days[spec.launch_id] * DAY_US + LAUNCH_HOUR * HOUR_US
    for hours, severity in INCIDENT_LAUNCH_INCIDENTS:
        opened.append(min(end_us - HOUR_US, launched_us + hours * HOUR_US + int(rng.integers(0, HOUR_US))))
        sev.append(severity)
        feature.append(spec.feature_key)
        launch.append(spec.launch_id)
    bad_us = epoch_us + tl.bad_release_day * DAY_US + RELEASE_HOUR * HOUR_US
    opened.append(min(end_us - HOUR_US, bad_us + 30 * HOUR_US + int(rng.integers(0, HOUR_US))))
    sev.append("sev2")
    feature.append(None)
    launch.append(None)
    n_random = int(rng.poisson(tl.days / 7.0))
    background = epoch_us + rng.integers(0, tl.days * DAY_US, n_random)
    sev_random = rng.choice(4, n_random, p=[0.05, 0.15, 0.4, 0.4])
    feat_random = rng.choice(len(BASE_FEATURES), n_random)
    has_feature = rng.random(n_random) < 0.5
    for i in range(n_random):
        opened.append(int(background[i]))
        sev.append(f"sev{sev_random[i] + 1}")
        feature.append(BASE_FEATURES[feat_random[i]] if has_feature[i] else None)
        launch.append(None)

    opened_a = np.array(opened, dtype=np.int64)
    sev_n = np.array([int(s[-1]) for s in sev])
    # Severe incidents get fixed fast; low-severity ones linger.
    hours = rng.lognormal(np.log(np.array([3.0, 6.0, 20.0, 60.0])[sev_n - 1]), 0.6)
    resolved = opened_a + (hours * HOUR_US).astype(np.int64)
    open_ = resolved >= end_us
    # A couple of low-severity background incidents are simply never closed.
    background_idx = np.arange(len(opened) - n_random, len(opened))
    low = background_idx[sev_n[background_idx] >= 3]
    if len(low):
        open_[rng.choice(low, min(2, len(low)), replace=False)] = True
    order = np.argsort(opened_a, kind="stable")
    return L.table("incidents", {
        "incident_id": pa.array([f"inc_{i:04d}" for i in range(1, len(order) + 1)], pa.string()),
        "severity": pa.array([sev[i] for i in order], pa.string()),
        "opened_at": L.timestamps(opened_a[order]),
        "resolved_at": L.timestamps(resolved[order], valid=~open_[order]),
        "feature_key": pa.array([feature[i] for i in order], pa.string()),
        "launch_id": pa.array([launch[i] for i in order], pa.string()),
    })


# ==================================================================== activity

@dataclass
class _World:
    """Everything the chunked simulation shares across chunks."""

    seed: int
    tl: Timeline
    epoch_us: int
    pop: _Population
    user_ids: pa.Array
    account_ids: pa.Array
    versions: pa.Array
    release_days: dict[int, np.ndarray]
    release_codes: dict[int, np.ndarray]
    bad_code: int
    salts: dict[str, np.uint64]
    # Refunds draw from their own stream, so adding them left every other draw as it was.
    refund_rng: np.random.Generator
    counters: dict[str, int] = field(default_factory=lambda: {
        "event": 0, "session": 0, "error": 0, "ticket": 0, "feedback": 0})
    enrolled: np.ndarray = field(default_factory=lambda: np.zeros((len(EXPERIMENTS), STRATA), dtype=np.int64))

    def take_ids(self, kind: str, n: int) -> np.ndarray:
        """Reserve ``n`` consecutive counter values of an id kind."""
        first = self.counters[kind]
        self.counters[kind] = first + n
        return np.arange(first, first + n, dtype=np.uint64)


@dataclass
class _Block:
    """User-days and sessions of one chunk of days x block of users."""

    ud_user: np.ndarray
    ud_day: np.ndarray
    ud_first_start: np.ndarray
    ud_first_sess: np.ndarray
    s_user: np.ndarray
    s_day: np.ndarray
    s_platform: np.ndarray
    s_version: np.ndarray
    s_start: np.ndarray
    s_duration: np.ndarray
    s_ids: pa.Array
    enrolments: list[tuple[int, np.ndarray]]


def _pick(rng: np.random.Generator, cum: np.ndarray, n: int) -> np.ndarray:
    """Categorical draws from a cumulative distribution (faster than rng.choice)."""
    return np.minimum(np.searchsorted(cum, rng.random(n) * cum[-1], side="right"), len(cum) - 1)


def _daily_active_p(w: _World, users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Probability that each user is active on each day, shape ``(len(days), len(users))``.

    Engagement x weekday factor x decay since signup (from 1 towards the
    user's floor, time constant tau); 1 on the signup day, 0 before it.
    """
    pop = w.pop
    k = days[:, None] - pop.signup_day[users][None, :]
    decay = pop.floor[users] + (1 - pop.floor[users]) * np.exp(-np.maximum(k, 1) / pop.tau[users])
    p = pop.engagement[users] * WEEKLY[(w.tl.start.weekday() + days) % 7][:, None] * decay
    p = np.minimum(p, MAX_DAILY_ACTIVE_P)
    p[k < 0] = 0.0
    p[k == 0] = 1.0
    return p


def _assign_variants(w: _World, e: int, users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Variants for users enrolling in experiment ``e`` (in enrolment order).

    Stratified permuted-block randomisation, as experimentation platforms do
    to cut variance: users are bucketed by how likely they are to convert
    during the experiment, and within each stratum consecutive enrollees are
    paired, one per arm, the order within a pair given by a hash of (seed,
    experiment, stratum, pair). Arms stay ~50/50 and balanced on propensity,
    so a planted effect shows clearly and a null experiment stays flat even
    on the small committed sample.
    """
    spec = EXPERIMENTS[e]
    start, end = w.tl.experiment_days[spec.experiment_id]
    end = end if end is not None else w.tl.days
    span = np.arange(start, max(end, start + 1))
    p = _daily_active_p(w, users, span)
    p[span[:, None] < days[None, :]] = 0.0  # only the days after enrolment count
    sessions = p.sum(axis=0) * (1 + 2 * w.pop.multi_session[users])
    propensity = 1 - np.exp(-w.pop.purchase_p[users] * sessions)
    stratum = np.minimum((propensity * STRATA).astype(np.int64), STRATA - 1)
    # Rank of each user within its stratum, continuing the counts of earlier blocks.
    order = np.argsort(stratum, kind="stable")
    sorted_s = stratum[order]
    first_of_s = np.searchsorted(sorted_s, sorted_s, side="left")
    rank = np.empty(len(users), dtype=np.int64)
    rank[order] = np.arange(len(users)) - first_of_s
    k = w.enrolled[e, stratum] + rank
    np.add.at(w.enrolled[e], stratum, 1)
    pair = (stratum << 32) | (k >> 1)
    coin = (L.mix64(pair.astype(np.uint64) ^ w.salts["variant:" + spec.experiment_id]) >> np.uint64(63)).astype(np.int8)
    return np.where(k % 2 == 0, coin, 1 - coin).astype(np.int8)


def _simulate_sessions(w: _World, rng: np.random.Generator, day0: int, ndays: int,
                       u0: int, u1: int) -> tuple[_Block, dict[str, np.ndarray]]:
    """Who is active when, their sessions, versions and experiment enrolments.

    Returns:
        The block, and per-session draws the events need (counts and flags).
    """
    pop, tl = w.pop, w.tl
    users = np.arange(u0, u1)
    users = users[pop.signup_day[users] < day0 + ndays]
    days = np.arange(day0, day0 + ndays)

    p = _daily_active_p(w, users, days)
    di, ui = np.nonzero(rng.random(p.shape, dtype=np.float32) < p)  # ordered by day, then user
    del p
    ud_user = users[ui]
    ud_day = days[di].astype(np.int32)

    # Experiment enrolment: at the first active day inside the enrolment period.
    enrolments: list[tuple[int, np.ndarray]] = []
    for e, spec in enumerate(EXPERIMENTS):
        start, end = tl.experiment_days[spec.experiment_id]
        enrol_end = min(start + tl.enrolment_days, end if end is not None else tl.days)
        m = np.nonzero((ud_day >= start) & (ud_day < enrol_end) & (pop.assigned_day[ud_user, e] < 0))[0]
        _, first = np.unique(ud_user[m], return_index=True)
        uds = m[np.sort(first)]  # in enrolment order: by day, then user
        pop.assigned_day[ud_user[uds], e] = ud_day[uds]
        pop.variant[ud_user[uds], e] = _assign_variants(w, e, ud_user[uds], ud_day[uds])
        enrolments.append((e, uds))

    n_sess_ud = 1 + rng.binomial(2, pop.multi_session[ud_user])
    ud_first_sess = np.cumsum(n_sess_ud) - n_sess_ud
    sess_ud = np.repeat(np.arange(len(ud_user)), n_sess_ud)
    n_s = len(sess_ud)
    rank = np.arange(n_s) - ud_first_sess[sess_ud]
    s_user = ud_user[sess_ud]
    s_day = ud_day[sess_ud]

    main = pop.platform[s_user]
    s_platform = np.where((main != WEB) & (rng.random(n_s) < MOBILE_WEB_SESSION_SHARE), WEB, main).astype(np.int8)
    # The version in use: the latest release out before (day - upgrade lag);
    # a new install gets the latest release out before its signup day.
    eff = np.maximum(s_day - pop.upgrade_lag[s_user], pop.signup_day[s_user] - 1)
    s_version = np.full(n_s, -1, dtype=np.int32)
    for plat in (IOS, ANDROID):
        m = s_platform == plat
        idx = np.searchsorted(w.release_days[plat], eff[m], side="right") - 1
        s_version[m] = w.release_codes[plat][np.maximum(idx, 0)]

    # Purchases: per-session probability, lifted for treatment users of an
    # experiment with a planted effect, from assignment until the end.
    purchase_p = pop.purchase_p[s_user].copy()
    for e, spec in enumerate(EXPERIMENTS):
        if spec.purchase_lift == 1.0:
            continue
        end = tl.experiment_days[spec.experiment_id][1]
        ad = pop.assigned_day[s_user, e]
        treated = ((pop.variant[s_user, e] == 1) & (ad >= 0) & (s_day >= ad)
                   & (s_day < (end if end is not None else tl.days)))
        purchase_p[treated] *= spec.purchase_lift
    buy = rng.random(n_s) < purchase_p
    abandon = ~buy & (rng.random(n_s) < purchase_p * 0.8)
    signup = (rank == 0) & (s_day == pop.signup_day[s_user])
    n_body = 1 + np.minimum(rng.poisson(pop.body_rate[s_user]), 40)
    n_ev = 1 + signup + n_body + abandon + 2 * buy

    # Session timing: events spaced by exponential gaps; sessions start at a
    # local-daytime hour of the user's region and end before midnight UTC so
    # every event falls on its session's day.
    first_ev = np.cumsum(n_ev) - n_ev
    gaps = ((1.0 + rng.exponential(SESSION_GAP_MEAN_S, int(n_ev.sum()))) * 1e6).astype(np.int64)
    gaps[first_ev] = 0
    cum = np.cumsum(gaps)
    offsets = cum - np.repeat(cum[first_ev], n_ev)
    duration = offsets[first_ev + n_ev - 1]
    local_h = rng.normal(14.0, 3.5, n_s)
    utc_us = (((local_h - REGION_UTC_OFFSET_H[pop.region[s_user]]) % 24.0) * HOUR_US).astype(np.int64)
    utc_us = utc_us[np.lexsort((utc_us, sess_ud))]  # ascending within each user-day
    start = np.clip(utc_us, 0, DAY_US - 1 - duration)
    s_start = w.epoch_us + s_day.astype(np.int64) * DAY_US + start
    ud_first_start = np.minimum.reduceat(s_start, ud_first_sess) if n_s else np.zeros(0, np.int64)

    # In-window signups happen moments before their first session.
    su = np.nonzero(ud_day == pop.signup_day[ud_user])[0]
    day_start = w.epoch_us + ud_day[su].astype(np.int64) * DAY_US
    pop.signup_us[ud_user[su]] = np.maximum(
        ud_first_start[su] - rng.integers(5_000_000, 120_000_000, len(su)), day_start)

    blk = _Block(
        ud_user=ud_user, ud_day=ud_day, ud_first_start=ud_first_start, ud_first_sess=ud_first_sess,
        s_user=s_user, s_day=s_day, s_platform=s_platform, s_version=s_version, s_start=s_start,
        s_duration=duration, s_ids=L.hex_ids("ses_", w.take_ids("session", n_s), w.salts["session"]),
        enrolments=enrolments,
    )
    draws = {"n_ev": n_ev, "signup": signup, "buy": buy, "abandon": abandon,
             "offsets": offsets, "first_ev": first_ev}
    return blk, draws


def _events_table(w: _World, rng: np.random.Generator, blk: _Block, draws: dict[str, np.ndarray]) -> pa.Table:
    """Events of a block: session_start, body events, signup and checkout funnel."""
    pop = w.pop
    n_ev, first_ev = draws["n_ev"], draws["first_ev"]
    n = int(n_ev.sum())
    ev_sess = np.repeat(np.arange(len(n_ev)), n_ev)
    pos = np.arange(n) - first_ev[ev_sess]
    last = pos == n_ev[ev_sess] - 1
    buy = draws["buy"][ev_sess]

    name = _pick(rng, _BODY_CUM, n).astype(np.int8)
    name[pos == 0] = _EV["session_start"]
    name[draws["signup"][ev_sess] & (pos == 1)] = _EV["signup"]
    name[(buy & (pos == n_ev[ev_sess] - 2)) | (draws["abandon"][ev_sess] & last)] = _EV["checkout_started"]
    name[buy & last] = _EV["purchase"]

    # Features: fixed for some event kinds, spread over the usage features
    # for feature_used and part of page_view, and, once a user has adopted a
    # launched feature, a share of their feature_used events touch it.
    fk = np.full(n, -1, dtype=np.int16)
    for ev, feat in (("search", "search"), ("comment_added", "comments"), ("share", "sharing"),
                     ("signup", "onboarding"), ("checkout_started", "checkout"), ("purchase", "checkout")):
        fk[name == _EV[ev]] = _FK[feat]
    used = np.nonzero((name == _EV["feature_used"])
                      | ((name == _EV["page_view"]) & (rng.random(n) < 0.4)))[0]
    fk[used] = _USAGE_CODES[_pick(rng, _USAGE_CUM, len(used))]
    fu = np.nonzero(name == _EV["feature_used"])[0]
    fu_user = blk.s_user[ev_sess[fu]]
    fu_day = blk.s_day[ev_sess[fu]]
    r = rng.random(len(fu))
    lo = 0.0
    for j, spec in enumerate(LAUNCHES):
        hit = (fu_day >= pop.adopt_day[fu_user, j]) & (r >= lo) & (r < lo + spec.event_share)
        fk[fu[hit]] = _FK[spec.feature_key]
        lo += spec.event_share

    revenue_valid = name == _EV["purchase"]
    buyers = blk.s_user[ev_sess[revenue_valid]]
    mean = np.array(REVENUE_MEAN_BY_PLAN)[pop.plan[buyers]]
    cents = np.zeros(n, dtype=np.int64)
    cents[revenue_valid] = np.maximum(99, np.round(mean * rng.lognormal(-0.15, 0.55, len(buyers)) * 100))

    ts = blk.s_start[ev_sess] + draws["offsets"]
    order = np.argsort(ts, kind="stable")  # landing files arrive roughly in time order
    ev_sess, name, fk, ts, cents, revenue_valid = (
        ev_sess[order], name[order], fk[order], ts[order], cents[order], revenue_valid[order])
    return L.table("events", {
        "event_id": L.hex_ids("evt_", w.take_ids("event", n), w.salts["event"]),
        "user_id": w.user_ids.take(pa.array(blk.s_user[ev_sess])),
        "session_id": blk.s_ids.take(pa.array(ev_sess)),
        "event_name": L.take(L.strings(EVENT_NAMES), name),
        "event_ts": L.timestamps(ts),
        "platform": L.take(L.strings(PLATFORMS), blk.s_platform[ev_sess]),
        "app_version": L.take(w.versions, blk.s_version[ev_sess]),
        "feature_key": L.take(L.strings(FEATURES), fk),
        "revenue_usd": L.decimal_cents(cents, revenue_valid),
    })


def _refunds_table(w: _World, events: pa.Table) -> pa.Table:
    """Refunds of a block's purchases: a `refund` event later the same UTC day (refund
    processors post server-side, in the purchase's session), with the purchase's revenue
    or half of it, negated."""
    is_purchase = pc.equal(events.column("event_name"), "purchase")
    purchases = events.filter(is_purchase)
    refunded = np.nonzero(w.refund_rng.random(purchases.num_rows) < REFUND_SHARE)[0]
    src = purchases.take(pa.array(refunded, type=pa.int64()))
    n = src.num_rows
    ts = src.column("event_ts").cast(pa.int64()).to_numpy()
    day_end = (ts // DAY_US + 1) * DAY_US
    delay = w.refund_rng.integers(5 * 60_000_000, 6 * HOUR_US, n)
    refund_ts = np.maximum(ts + 1, np.minimum(ts + delay, day_end - 1_000_000))
    cents = np.round(src.column("revenue_usd").cast(pa.float64()).to_numpy() * 100).astype(np.int64)
    partial = w.refund_rng.random(n) < PARTIAL_REFUND_SHARE
    refund_cents = -np.where(partial, cents // 2, cents)
    return L.table("events", {
        "event_id": L.hex_ids("evt_", w.take_ids("event", n), w.salts["event"]),
        "user_id": src.column("user_id").combine_chunks(),
        "session_id": src.column("session_id").combine_chunks(),
        "event_name": pa.array(["refund"] * n, type=pa.string()),
        "event_ts": L.timestamps(refund_ts),
        "platform": src.column("platform").combine_chunks(),
        "app_version": src.column("app_version").combine_chunks(),
        "feature_key": src.column("feature_key").combine_chunks(),
        "revenue_usd": L.decimal_cents(refund_cents, np.ones(n, dtype=bool)),
    })


def _errors_table(w: _World, rng: np.random.Generator, blk: _Block) -> pa.Table:
    """Client errors raised during sessions; the bad release crashes ~9x more."""
    n_s = len(blk.s_user)
    crash_p = np.array([CRASH_P[WEB], CRASH_P[IOS], CRASH_P[ANDROID]])[blk.s_platform]
    crash_p[blk.s_version == w.bad_code] *= BAD_RELEASE_CRASH_MULTIPLIER
    n_crash = (rng.random(n_s) < crash_p).astype(np.int64)
    n_error = rng.poisson(ERROR_RATE, n_s)
    n_warn = rng.poisson(WARNING_RATE, n_s)
    total = n_crash + n_error + n_warn
    sess = np.repeat(np.arange(n_s), total)
    n = len(sess)
    rank = np.arange(n) - np.repeat(np.cumsum(total) - total, total)
    severity = np.where(rank < n_crash[sess], 0, np.where(rank < (n_crash + n_error)[sess], 1, 2))

    platform = blk.s_platform[sess]
    etype = np.empty(n, dtype=np.int16)
    for (sev_name, plat), types in ERROR_TYPES.items():
        m = np.nonzero((severity == SEVERITIES.index(sev_name)) & (platform == plat))[0]
        etype[m] = np.array([_ET[t] for t in types])[rng.integers(0, len(types), len(m))]
    regression = (severity == 0) & (blk.s_version[sess] == w.bad_code) & (rng.random(n) < 0.8)
    etype[regression] = _ET[BAD_RELEASE_CRASH_TYPE]

    occurred = blk.s_start[sess] + (rng.random(n) * blk.s_duration[sess]).astype(np.int64)
    # Some errors are reported before login / without a session (anonymous).
    anon = rng.random(n) < ANONYMOUS_ERROR_SHARE
    order = np.argsort(occurred, kind="stable")
    sess, severity, etype, occurred, anon = sess[order], severity[order], etype[order], occurred[order], anon[order]
    mask = pa.array(anon)
    return L.table("errors", {
        "error_id": L.hex_ids("err_", w.take_ids("error", n), w.salts["error"]),
        "user_id": pc.if_else(mask, pa.scalar(None, pa.string()), w.user_ids.take(pa.array(blk.s_user[sess]))),
        "session_id": pc.if_else(mask, pa.scalar(None, pa.string()), blk.s_ids.take(pa.array(sess))),
        "occurred_at": L.timestamps(occurred),
        "platform": L.take(L.strings(PLATFORMS), blk.s_platform[sess]),
        "app_version": L.take(w.versions, blk.s_version[sess]),
        "severity": L.take(L.strings(SEVERITIES), severity),
        "error_type": L.take(L.strings(ERROR_TYPE_NAMES), etype),
    })


def _in_aftermath(w: _World, users: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Android users during the weeks after the bad release."""
    bad = w.tl.bad_release_day
    return (w.pop.platform[users] == ANDROID) & (days >= bad) & (days < bad + w.tl.aftermath_days)


def _later_same_day(rng: np.random.Generator, w: _World, first_start: np.ndarray, days: np.ndarray) -> np.ndarray:
    """A time after the user's first session of the day, before midnight."""
    day_end = w.epoch_us + (days.astype(np.int64) + 1) * DAY_US
    return first_start + (rng.random(len(days)) * (day_end - first_start - 1)).astype(np.int64)


def _tickets_table(w: _World, rng: np.random.Generator, blk: _Block) -> pa.Table:
    """Support tickets filed on active days; Android users file more after the bad release."""
    pop = w.pop
    aftermath = _in_aftermath(w, blk.ud_user, blk.ud_day)
    p = TICKET_P * np.where(aftermath, BAD_RELEASE_TICKET_MULTIPLIER, 1.0)
    p = p * np.array([0.7, 1.2, 1.6])[pop.plan[blk.ud_user]]
    pick = np.nonzero(rng.random(len(p)) < p)[0]
    n = len(pick)
    users, days, aftermath = blk.ud_user[pick], blk.ud_day[pick], aftermath[pick]
    created = _later_same_day(rng, w, blk.ud_first_start[pick], days)
    category = _pick(rng, np.cumsum(_TICKET_CAT_P), n)
    category[aftermath] = _pick(rng, np.cumsum(_TICKET_CAT_AFTERMATH_P), int(aftermath.sum()))
    plan = pop.plan[users]
    priority = np.empty(n, dtype=np.int8)
    for k, probs in enumerate(PRIORITY_P_BY_PLAN):
        m = np.nonzero(plan == k)[0]
        priority[m] = _pick(rng, np.cumsum(probs), len(m))
    hours = rng.lognormal(np.log(np.array(PRIORITY_RESOLUTION_H)[priority]), 0.8)
    resolved = created + (hours * HOUR_US).astype(np.int64)
    resolved_valid = (resolved < w.epoch_us + w.tl.days * DAY_US) & (rng.random(n) > 0.04)
    feature = np.where(rng.random(n) < 0.4, _pick(rng, _USAGE_CUM, n), -1)
    feature = np.where(feature >= 0, _USAGE_CODES[np.maximum(feature, 0)], -1)
    feature[category == TICKET_CATEGORIES.index("crash")] = -1
    # Tickets sent by e-mail are not always matched to a user.
    user_code = np.where(rng.random(n) < 0.2, -1, users)
    order = np.argsort(created, kind="stable")
    return L.table("support_tickets", {
        "ticket_id": L.hex_ids("tkt_", w.take_ids("ticket", n), w.salts["ticket"]),
        "account_id": w.account_ids.take(pa.array(pop.account[users[order]])),
        "user_id": L.take(w.user_ids, user_code[order]),
        "created_at": L.timestamps(created[order]),
        "resolved_at": L.timestamps(resolved[order], valid=resolved_valid[order]),
        "category": L.take(L.strings(TICKET_CATEGORIES), category[order]),
        "priority": L.take(L.strings(PRIORITIES), priority[order]),
        "feature_key": L.take(L.strings(FEATURES), feature[order]),
    })


def _feedback_table(w: _World, rng: np.random.Generator, blk: _Block) -> pa.Table:
    """NPS / CSAT feedback from active users; Android NPS drops after the bad release."""
    pick = np.nonzero(rng.random(len(blk.ud_user)) < FEEDBACK_P)[0]
    n = len(pick)
    users, days = blk.ud_user[pick], blk.ud_day[pick]
    submitted = _later_same_day(rng, w, blk.ud_first_start[pick], days)
    channel = _pick(rng, np.cumsum([0.6, 0.3, 0.1]), n)
    nps = _pick(rng, np.cumsum(NPS_P), n)
    nps = np.clip(nps + np.where(_in_aftermath(w, users, days), BAD_RELEASE_NPS_SHIFT, 0), 0, 10)
    csat = np.clip(np.round(1 + nps * 0.4 + rng.normal(0, 0.6, n)), 1, 5).astype(np.int32)
    # Surveys always ask NPS; in-app prompts ask one or both; e-mails are free text.
    nps_valid = np.select([channel == 1, channel == 0], [True, rng.random(n) < 0.6], False)
    csat_valid = np.select([channel == 1, channel == 0], [rng.random(n) < 0.5, ~nps_valid | (rng.random(n) < 0.3)],
                           rng.random(n) < 0.3)
    tone = np.where(nps <= 6, 0, np.where(nps <= 8, 1, 2))
    comment = np.full(n, -1, dtype=np.int16)
    has_comment = (channel == 2) | (rng.random(n) < 0.45)
    offset = 0
    for t, texts in enumerate(COMMENTS.values()):
        m = np.nonzero(has_comment & (tone == t))[0]
        comment[m] = offset + rng.integers(0, len(texts), len(m))
        offset += len(texts)
    feature = np.where(rng.random(n) < 0.3, _USAGE_CODES[_pick(rng, _USAGE_CUM, n)], -1)
    order = np.argsort(submitted, kind="stable")
    return L.table("feedback", {
        "feedback_id": L.hex_ids("fb_", w.take_ids("feedback", n), w.salts["feedback"]),
        "user_id": w.user_ids.take(pa.array(users[order])),
        "submitted_at": L.timestamps(submitted[order]),
        "channel": L.take(L.strings(FEEDBACK_CHANNELS), channel[order]),
        "nps_score": L.int32s(nps[order], nps_valid[order]),
        "csat_score": L.int32s(csat[order], csat_valid[order]),
        "comment": L.take(L.strings(COMMENT_TEXTS), comment[order]),
        "feature_key": L.take(L.strings(FEATURES), feature[order]),
    })


def _assignments_table(w: _World, rng: np.random.Generator, blk: _Block) -> pa.Table:
    """Assignment rows of the users enrolled in this block, plus a few conflicting re-assignments."""
    exp_codes, users, variants, at = [], [], [], []
    for e, uds in blk.enrolments:
        spec = EXPERIMENTS[e]
        u = blk.ud_user[uds]
        assigned = blk.ud_first_start[uds] + rng.integers(0, 2_000_000, len(uds))
        v = w.pop.variant[u, e]
        exp_codes.append(np.full(len(uds), e))
        users.append(u)
        variants.append(v)
        at.append(assigned)
        # A buggy client occasionally re-assigns a user to the other arm
        # later on; analysis must keep the first assignment.
        end = w.tl.experiment_days[spec.experiment_id][1]
        limit = w.epoch_us + (end if end is not None else w.tl.days) * DAY_US - 1
        again = assigned + rng.integers(HOUR_US, 72 * HOUR_US, len(uds))
        m = (rng.random(len(uds)) < DOUBLE_ASSIGNMENT_SHARE) & (again < limit)
        exp_codes.append(np.full(int(m.sum()), e))
        users.append(u[m])
        variants.append(1 - v[m])
        at.append(again[m])
    exp_a, user_a = np.concatenate(exp_codes), np.concatenate(users)
    var_a, at_a = np.concatenate(variants), np.concatenate(at)
    order = np.argsort(at_a, kind="stable")
    return L.table("experiment_assignments", {
        "experiment_id": L.take(L.strings([s.experiment_id for s in EXPERIMENTS]), exp_a[order]),
        "user_id": w.user_ids.take(pa.array(user_a[order])),
        "variant": L.take(L.strings((CONTROL_VARIANT, TREATMENT_VARIANT)), var_a[order]),
        "assigned_at": L.timestamps(at_a[order]),
    })


# ===================================================================== driver

def _plan_parts(users: int, days: int) -> tuple[int, int]:
    """Days per chunk and user blocks per chunk so a part holds ~TARGET_EVENTS_PER_PART events."""
    per_day = max(1.0, users * EVENTS_PER_USER_DAY * 1.3)  # headroom: weekdays and launch weeks run hot
    chunk_days = int(min(MAX_DAYS_PER_PART, max(1, TARGET_EVENTS_PER_PART // per_day)))
    blocks = max(1, math.ceil(per_day * chunk_days / TARGET_EVENTS_PER_PART))
    return chunk_days, blocks


def _clean(out: Path) -> None:
    """Remove landing files of a previous run (only contract files, nothing else)."""
    for name in L.FILE_TABLES:
        (out / f"{name}.parquet").unlink(missing_ok=True)
    events = out / L.EVENTS_DIR
    if events.is_dir():
        for part in events.glob("part-*.parquet"):
            part.unlink()


def generate(out: Path, *, users: int = DEFAULT_USERS, days: int = DEFAULT_DAYS, seed: int = 7,
             start: datetime.date = DEFAULT_START,
             progress: Callable[[int, int], None] | None = None) -> GenerationSummary:
    """Generate the synthetic landing data into ``out``.

    Args:
        out: Output directory (created if missing). Landing files of a previous
            run there are replaced; other files are left alone.
        users: Number of users (the event volume scales linearly, see
            ``EVENTS_PER_USER_DAY``).
        days: Length of the window in days, starting at ``start``.
        seed: Seed; the same seed and arguments give the same data, ids included.
        start: First day (UTC) of the window.
        progress: Called as ``progress(done_days, total_days)`` after each chunk of days.

    Returns:
        Rows written per table and where.

    Raises:
        ValueError: If ``users`` or ``days`` is not positive.
    """
    if users < 1 or days < 1:
        raise ValueError("users and days must be positive")
    t0 = time.perf_counter()
    out = Path(out)
    (out / L.EVENTS_DIR).mkdir(parents=True, exist_ok=True)
    _clean(out)
    rng = np.random.Generator(np.random.PCG64(seed))
    tl = story_timeline(start, days)
    epoch_us = int((datetime.datetime(start.year, start.month, start.day)
                    - datetime.datetime(1970, 1, 1)) // datetime.timedelta(microseconds=1))

    accounts = _make_accounts(rng, users)
    pop = _make_population(rng, users, accounts, tl, epoch_us)
    versions: list[str] = []
    release_days: dict[int, np.ndarray] = {}
    release_codes: dict[int, np.ndarray] = {}
    bad_code = -1
    for plat in (IOS, ANDROID):
        rel = tl.releases[PLATFORMS[plat]]
        release_days[plat] = np.array([d for _, d in rel])
        release_codes[plat] = np.arange(len(versions), len(versions) + len(rel))
        for version, _ in rel:
            if (PLATFORMS[plat], version) == BAD_RELEASE:
                bad_code = len(versions)
            versions.append(version)
    w = _World(
        seed=seed, tl=tl, epoch_us=epoch_us, pop=pop,
        user_ids=L.seq_ids("usr_", users, max(6, len(str(users)))),
        account_ids=L.seq_ids("acc_", accounts.n, max(5, len(str(accounts.n)))),
        versions=L.strings(versions), release_days=release_days, release_codes=release_codes,
        bad_code=bad_code,
        salts={k: L.salt(seed, k) for k in ("event", "session", "error", "ticket", "feedback")
               + tuple("variant:" + spec.experiment_id for spec in EXPERIMENTS)},
        refund_rng=np.random.Generator(np.random.PCG64([seed, REFUND_STREAM])),
    )

    counts: dict[str, int] = {}
    for name, tbl in (("releases", _releases_table(tl, epoch_us)), ("launches", _launches_table(tl, epoch_us)),
                      ("experiments", _experiments_table(tl, epoch_us)),
                      ("incidents", _incidents_table(rng, tl, epoch_us))):
        L.write_table(out / f"{name}.parquet", tbl)
        counts[name] = tbl.num_rows

    sinks = {name: L.TableSink(out / f"{name}.parquet", name)
             for name in ("errors", "support_tickets", "feedback", "experiment_assignments")}
    chunk_days, blocks = _plan_parts(users, days)
    bounds = np.linspace(0, users, blocks + 1).astype(int)
    part = 0
    events_rows = duplicates = 0
    carry: pa.Table | None = None  # duplicates that land in the next part file
    chunks = list(range(0, days, chunk_days))
    for ci, day0 in enumerate(chunks):
        ndays = min(chunk_days, days - day0)
        for b in range(blocks):
            blk, draws = _simulate_sessions(w, rng, day0, ndays, int(bounds[b]), int(bounds[b + 1]))
            events = _events_table(w, rng, blk, draws)
            del draws
            # Plant exact duplicate rows: most land in the same part file, some
            # in the next one (as a retried upload would).
            dup = np.nonzero(rng.random(events.num_rows) < DUPLICATE_EVENT_SHARE)[0]
            later = rng.random(len(dup)) < 0.4
            pieces = [events, events.take(pa.array(dup[~later]))]
            if carry is not None:
                pieces.append(carry)
            carry = events.take(pa.array(dup[later]))
            is_last = ci == len(chunks) - 1 and b == blocks - 1
            if is_last:
                pieces.append(carry)
                carry = None
            pieces.append(_refunds_table(w, events))
            part_tbl = pa.concat_tables(pieces)
            L.write_table(out / L.EVENTS_DIR / f"part-{part:05d}.parquet", part_tbl)
            part += 1
            events_rows += part_tbl.num_rows
            duplicates += len(dup)
            sinks["errors"].write(_errors_table(w, rng, blk))
            sinks["support_tickets"].write(_tickets_table(w, rng, blk))
            sinks["feedback"].write(_feedback_table(w, rng, blk))
            sinks["experiment_assignments"].write(_assignments_table(w, rng, blk))
            del events, part_tbl, pieces, blk
        if progress is not None:
            progress(day0 + ndays, days)

    for name, sink in sinks.items():
        sink.close()
        counts[name] = sink.rows
    counts["events"] = events_rows
    users_tbl = _users_table(pop, w.user_ids, w.account_ids)
    accounts_tbl = _accounts_table(rng, accounts, pop, w.account_ids, epoch_us, days)
    L.write_table(out / "users.parquet", users_tbl)
    L.write_table(out / "accounts.parquet", accounts_tbl)
    counts["users"], counts["accounts"] = users_tbl.num_rows, accounts_tbl.num_rows
    ordered = {name: counts[name] for name in L.SCHEMAS}
    return GenerationSummary(out=out, tables=ordered, seed=seed, users=users, days=days, start=start,
                             event_parts=part, duplicate_events=duplicates,
                             seconds=time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    """Command line entry: ``python -m seeds.generator --out DIR --users N --days D --seed S``."""
    parser = argparse.ArgumentParser(prog="python -m seeds.generator", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=SAMPLE_DIR, help="output directory (default: the sample)")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", type=datetime.date.fromisoformat, default=DEFAULT_START)
    args = parser.parse_args(argv)

    def report(done: int, total: int) -> None:
        print(f"\r  day {done}/{total}", end="", file=sys.stderr, flush=True)

    summary = generate(args.out, users=args.users, days=args.days, seed=args.seed, start=args.start,
                       progress=report)
    print(file=sys.stderr)
    print(f"wrote {summary.out} in {summary.seconds:.1f}s "
          f"({summary.event_parts} event parts, {summary.duplicate_events} duplicate event rows, "
          f"{summary.events_per_user_day:.2f} events per user-day)")
    for name, rows in summary.tables.items():
        print(f"  {name:<24}{rows:>12,}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
