"""The generator's sizes and behaviour knobs (why these values: seeds/README.md, "model")."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seeds.story import (
    BASE_FEATURES,
    LAUNCHES,
    REGIONS,
)

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
    ("page_view", 0.48),
    ("feature_used", 0.30),
    ("search", 0.06),
    ("comment_added", 0.05),
    ("notification_opened", 0.04),
    ("share", 0.03),
    ("invite_sent", 0.02),
    ("settings_changed", 0.02),
)
EVENT_NAMES: tuple[str, ...] = tuple(name for name, _ in BODY_EVENTS) + (
    "session_start",
    "signup",
    "checkout_started",
    "purchase",
    "refund",
)
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_BODY_CUM = np.cumsum([p for _, p in BODY_EVENTS]) / sum(p for _, p in BODY_EVENTS)

FEATURES: tuple[str, ...] = BASE_FEATURES + tuple(spec.feature_key for spec in LAUNCHES)
_FK = {name: i for i, name in enumerate(FEATURES)}
#: Features that ``feature_used`` / ``page_view`` events spread over before launches.
USAGE_FEATURES = ("dashboards", "reports", "alerts", "exports", "integrations", "sharing", "comments")
_USAGE_CODES = np.array([_FK[f] for f in USAGE_FEATURES])
_USAGE_CUM = np.cumsum([0.28, 0.22, 0.12, 0.1, 0.1, 0.09, 0.09])

INDUSTRIES = (
    "software",
    "fintech",
    "healthcare",
    "retail",
    "media",
    "education",
    "manufacturing",
    "logistics",
    "public_sector",
)
COUNTRIES_BY_REGION = {
    "amer": (("US", 0.62), ("CA", 0.12), ("BR", 0.12), ("MX", 0.08), ("AR", 0.06)),
    "emea": (
        ("GB", 0.22),
        ("DE", 0.2),
        ("FR", 0.15),
        ("NL", 0.1),
        ("ES", 0.08),
        ("SE", 0.07),
        ("IT", 0.07),
        ("PL", 0.05),
        ("IE", 0.03),
        ("ZA", 0.03),
    ),
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

TICKET_CATEGORIES = (
    "bug",
    "billing",
    "how_to",
    "feature_request",
    "account_access",
    "performance",
    "data_quality",
    "crash",
)
_TICKET_CAT_P = np.array([0.22, 0.18, 0.22, 0.14, 0.1, 0.08, 0.06, 0.0])
_TICKET_CAT_AFTERMATH_P = np.array([0.25, 0.05, 0.05, 0.02, 0.03, 0.1, 0.0, 0.5])
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_P_BY_PLAN = ((0.4, 0.5, 0.08, 0.02), (0.25, 0.5, 0.2, 0.05), (0.15, 0.45, 0.28, 0.12))
PRIORITY_RESOLUTION_H = (72.0, 30.0, 10.0, 4.0)

FEEDBACK_CHANNELS = ("in_app", "survey", "email")
NPS_P = np.array([0.02, 0.01, 0.02, 0.03, 0.03, 0.06, 0.07, 0.12, 0.2, 0.22, 0.22])
COMMENTS = {
    "negative": (
        "The app keeps crashing since the last update.",
        "Too slow to load dashboards.",
        "Checkout failed twice.",
        "Hard to find what I need.",
        "Support took too long.",
    ),
    "neutral": (
        "It does the job.",
        "Would like more export options.",
        "OK, some rough edges.",
        "Please add dark mode.",
    ),
    "positive": (
        "Love the new dashboards!",
        "Saves my team hours every week.",
        "The AI assistant is great.",
        "Smooth and fast.",
        "Best tool we use.",
    ),
}
COMMENT_TEXTS: tuple[str, ...] = tuple(c for v in COMMENTS.values() for c in v)

ACCOUNT_WORDS = (
    (
        "Blue",
        "Bright",
        "North",
        "Silver",
        "Rapid",
        "Quiet",
        "Bold",
        "Clear",
        "Golden",
        "Iron",
        "Lunar",
        "Prime",
        "Red",
        "Summit",
        "True",
        "Urban",
        "Vivid",
        "Wild",
        "Zen",
        "Atlas",
    ),
    (
        "Harbor",
        "Peak",
        "River",
        "Forge",
        "Pixel",
        "Cedar",
        "Falcon",
        "Orbit",
        "Stone",
        "Wave",
        "Maple",
        "Vector",
        "Beacon",
        "Canyon",
        "Delta",
        "Ember",
        "Grove",
        "Lattice",
        "Meadow",
        "Nimbus",
    ),
    (
        "Labs",
        "Systems",
        "Group",
        "Analytics",
        "Health",
        "Studio",
        "Logistics",
        "Foods",
        "Capital",
        "Works",
        "Media",
        "Learning",
        "Retail",
        "Robotics",
        "Partners",
    ),
)
