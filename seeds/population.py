"""Who is in the synthetic data: accounts and users (signups, platforms, countries, internal
users), and the tables that describe them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from seeds import landing as L
from seeds.knobs import (
    ACCOUNT_WORDS,
    COUNTRIES,
    COUNTRIES_BY_REGION,
    DAY_US,
    INDUSTRIES,
    PLATFORM_MIX,
    PRE_WINDOW_MAX_DAYS,
    PRE_WINDOW_SIGNUP_SHARE,
    PURCHASE_P_BY_PLAN,
    RETAINED_SHARE,
    RETURNER_SHARE,
    RETURNER_SHARE_PRE_WINDOW,
    USERS_PER_ACCOUNT,
    WEEKLY,
)
from seeds.story import (
    EXPERIMENTS,
    INTERNAL_SHARE,
    LAUNCHES,
    NULL_COUNTRY_SHARE,
    PLANS,
    REGIONS,
    Timeline,
)

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
    names = [
        f"{ACCOUNT_WORDS[0][a]} {ACCOUNT_WORDS[1][b]} {ACCOUNT_WORDS[2][c]}" for a, b, c in zip(*words, strict=True)
    ]
    plan[0], region[0], industry[0] = PLANS.index("enterprise"), REGIONS.index("amer"), 0
    names[0] = "Northstar (internal)"
    return _Accounts(plan=plan, region=region, industry=industry, names=names)


def _make_population(
    rng: np.random.Generator, users: int, accounts: _Accounts, tl: Timeline, epoch_us: int
) -> _Population:
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
    signup_day = np.where(pre, -rng.integers(1, PRE_WINDOW_MAX_DAYS + 1, users), rng.choice(days, users, p=w / w.sum()))
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
        account=account,
        signup_day=signup_day,
        signup_us=signup_us,
        internal=internal,
        platform=platform,
        region=region,
        plan=plan,
        country=country,
        engagement=engagement,
        floor=floor,
        tau=tau,
        multi_session=multi_session,
        body_rate=body_rate,
        purchase_p=purchase_p,
        upgrade_lag=upgrade_lag,
        adopt_day=adopt_day,
        variant=np.full((users, len(EXPERIMENTS)), -1, dtype=np.int8),
        assigned_day=np.full((users, len(EXPERIMENTS)), -1, dtype=np.int32),
    )


def _accounts_table(
    rng: np.random.Generator, accounts: _Accounts, pop: _Population, account_ids: pa.Array, epoch_us: int, days: int
) -> pa.Table:
    """Accounts are created by their first user, moments before that user's signup."""
    created = np.full(accounts.n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(created, pop.account, pop.signup_us)
    empty = created == np.iinfo(np.int64).max
    # Accounts nobody joined (abandoned trials) still have a creation time.
    created[empty] = epoch_us + rng.integers(-PRE_WINDOW_MAX_DAYS * DAY_US, days * DAY_US, int(empty.sum()))
    created[~empty] -= rng.integers(1_000_000, 300_000_000, int((~empty).sum()))
    return L.table(
        "accounts",
        {
            "account_id": account_ids,
            "account_name": pa.array(accounts.names, pa.string()),
            "plan": L.take(L.strings(PLANS), accounts.plan),
            "industry": L.take(L.strings(INDUSTRIES), accounts.industry),
            "region": L.take(L.strings(REGIONS), accounts.region),
            "created_at": L.timestamps(created),
        },
    )


def _users_table(pop: _Population, user_ids: pa.Array, account_ids: pa.Array) -> pa.Table:
    """Users, written once the simulation has fixed in-window signup times."""
    return L.table(
        "users",
        {
            "user_id": user_ids,
            "account_id": account_ids.take(pa.array(pop.account)),
            "signup_at": L.timestamps(pop.signup_us),
            "country": L.take(L.strings(COUNTRIES), pop.country),
            "is_internal": pa.array(pop.internal, pa.bool_()),
        },
    )
