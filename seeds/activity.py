"""What the synthetic users do, a block of days at a time: sessions and events (with refunds and
exact duplicates), errors and crashes, support tickets, feedback, experiment assignments."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from seeds import landing as L
from seeds.knobs import (
    _BODY_CUM,
    _ET,
    _EV,
    _FK,
    _TICKET_CAT_AFTERMATH_P,
    _TICKET_CAT_P,
    _USAGE_CODES,
    _USAGE_CUM,
    ANDROID,
    BAD_RELEASE_CRASH_TYPE,
    COMMENT_TEXTS,
    COMMENTS,
    CRASH_P,
    DAY_US,
    ERROR_RATE,
    ERROR_TYPE_NAMES,
    ERROR_TYPES,
    EVENT_NAMES,
    FEATURES,
    FEEDBACK_CHANNELS,
    FEEDBACK_P,
    HOUR_US,
    IOS,
    MAX_DAILY_ACTIVE_P,
    MOBILE_WEB_SESSION_SHARE,
    NPS_P,
    PRIORITIES,
    PRIORITY_P_BY_PLAN,
    PRIORITY_RESOLUTION_H,
    REGION_UTC_OFFSET_H,
    REVENUE_MEAN_BY_PLAN,
    SESSION_GAP_MEAN_S,
    SEVERITIES,
    STRATA,
    TICKET_CATEGORIES,
    TICKET_P,
    WARNING_RATE,
    WEB,
    WEEKLY,
)
from seeds.population import _Population
from seeds.story import (
    ANONYMOUS_ERROR_SHARE,
    BAD_RELEASE_CRASH_MULTIPLIER,
    BAD_RELEASE_NPS_SHIFT,
    BAD_RELEASE_TICKET_MULTIPLIER,
    CONTROL_VARIANT,
    DOUBLE_ASSIGNMENT_SHARE,
    EXPERIMENTS,
    LAUNCHES,
    PARTIAL_REFUND_SHARE,
    PLATFORMS,
    REFUND_SHARE,
    TREATMENT_VARIANT,
    Timeline,
)

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
    counters: dict[str, int] = field(
        default_factory=lambda: {"event": 0, "session": 0, "error": 0, "ticket": 0, "feedback": 0}
    )
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


def _simulate_sessions(
    w: _World, rng: np.random.Generator, day0: int, ndays: int, u0: int, u1: int
) -> tuple[_Block, dict[str, np.ndarray]]:
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
        treated = (
            (pop.variant[s_user, e] == 1) & (ad >= 0) & (s_day >= ad) & (s_day < (end if end is not None else tl.days))
        )
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
        ud_first_start[su] - rng.integers(5_000_000, 120_000_000, len(su)), day_start
    )

    blk = _Block(
        ud_user=ud_user,
        ud_day=ud_day,
        ud_first_start=ud_first_start,
        ud_first_sess=ud_first_sess,
        s_user=s_user,
        s_day=s_day,
        s_platform=s_platform,
        s_version=s_version,
        s_start=s_start,
        s_duration=duration,
        s_ids=L.hex_ids("ses_", w.take_ids("session", n_s), w.salts["session"]),
        enrolments=enrolments,
    )
    draws = {"n_ev": n_ev, "signup": signup, "buy": buy, "abandon": abandon, "offsets": offsets, "first_ev": first_ev}
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
    for ev, feat in (
        ("search", "search"),
        ("comment_added", "comments"),
        ("share", "sharing"),
        ("signup", "onboarding"),
        ("checkout_started", "checkout"),
        ("purchase", "checkout"),
    ):
        fk[name == _EV[ev]] = _FK[feat]
    used = np.nonzero((name == _EV["feature_used"]) | ((name == _EV["page_view"]) & (rng.random(n) < 0.4)))[0]
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
        ev_sess[order],
        name[order],
        fk[order],
        ts[order],
        cents[order],
        revenue_valid[order],
    )
    return L.table(
        "events",
        {
            "event_id": L.hex_ids("evt_", w.take_ids("event", n), w.salts["event"]),
            "user_id": w.user_ids.take(pa.array(blk.s_user[ev_sess])),
            "session_id": blk.s_ids.take(pa.array(ev_sess)),
            "event_name": L.take(L.strings(EVENT_NAMES), name),
            "event_ts": L.timestamps(ts),
            "platform": L.take(L.strings(PLATFORMS), blk.s_platform[ev_sess]),
            "app_version": L.take(w.versions, blk.s_version[ev_sess]),
            "feature_key": L.take(L.strings(FEATURES), fk),
            "revenue_usd": L.decimal_cents(cents, revenue_valid),
        },
    )


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
    return L.table(
        "events",
        {
            "event_id": L.hex_ids("evt_", w.take_ids("event", n), w.salts["event"]),
            "user_id": src.column("user_id").combine_chunks(),
            "session_id": src.column("session_id").combine_chunks(),
            "event_name": pa.array(["refund"] * n, type=pa.string()),
            "event_ts": L.timestamps(refund_ts),
            "platform": src.column("platform").combine_chunks(),
            "app_version": src.column("app_version").combine_chunks(),
            "feature_key": src.column("feature_key").combine_chunks(),
            "revenue_usd": L.decimal_cents(refund_cents, np.ones(n, dtype=bool)),
        },
    )


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
    return L.table(
        "errors",
        {
            "error_id": L.hex_ids("err_", w.take_ids("error", n), w.salts["error"]),
            "user_id": pc.if_else(mask, pa.scalar(None, pa.string()), w.user_ids.take(pa.array(blk.s_user[sess]))),
            "session_id": pc.if_else(mask, pa.scalar(None, pa.string()), blk.s_ids.take(pa.array(sess))),
            "occurred_at": L.timestamps(occurred),
            "platform": L.take(L.strings(PLATFORMS), blk.s_platform[sess]),
            "app_version": L.take(w.versions, blk.s_version[sess]),
            "severity": L.take(L.strings(SEVERITIES), severity),
            "error_type": L.take(L.strings(ERROR_TYPE_NAMES), etype),
        },
    )


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
    return L.table(
        "support_tickets",
        {
            "ticket_id": L.hex_ids("tkt_", w.take_ids("ticket", n), w.salts["ticket"]),
            "account_id": w.account_ids.take(pa.array(pop.account[users[order]])),
            "user_id": L.take(w.user_ids, user_code[order]),
            "created_at": L.timestamps(created[order]),
            "resolved_at": L.timestamps(resolved[order], valid=resolved_valid[order]),
            "category": L.take(L.strings(TICKET_CATEGORIES), category[order]),
            "priority": L.take(L.strings(PRIORITIES), priority[order]),
            "feature_key": L.take(L.strings(FEATURES), feature[order]),
        },
    )


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
    csat_valid = np.select(
        [channel == 1, channel == 0], [rng.random(n) < 0.5, ~nps_valid | (rng.random(n) < 0.3)], rng.random(n) < 0.3
    )
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
    return L.table(
        "feedback",
        {
            "feedback_id": L.hex_ids("fb_", w.take_ids("feedback", n), w.salts["feedback"]),
            "user_id": w.user_ids.take(pa.array(users[order])),
            "submitted_at": L.timestamps(submitted[order]),
            "channel": L.take(L.strings(FEEDBACK_CHANNELS), channel[order]),
            "nps_score": L.int32s(nps[order], nps_valid[order]),
            "csat_score": L.int32s(csat[order], csat_valid[order]),
            "comment": L.take(L.strings(COMMENT_TEXTS), comment[order]),
            "feature_key": L.take(L.strings(FEATURES), feature[order]),
        },
    )


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
    return L.table(
        "experiment_assignments",
        {
            "experiment_id": L.take(L.strings([s.experiment_id for s in EXPERIMENTS]), exp_a[order]),
            "user_id": w.user_ids.take(pa.array(user_a[order])),
            "variant": L.take(L.strings((CONTROL_VARIANT, TREATMENT_VARIANT)), var_a[order]),
            "assigned_at": L.timestamps(at_a[order]),
        },
    )
