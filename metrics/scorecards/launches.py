"""Launch scorecards: did the launch land, and what did it cost.

Definitions (launch time L = launched_at; day k since launch is the UTC day L's date + k):

* platforms: the platforms with at least one use of the launched feature within the window
  after L (launches carry no platform of their own).
* adoption by day 0..28: users of the feature that day (`feature_users` sliced by the feature)
  and their share of that day's active users on those platforms; cumulative adopters are the
  users whose first use (fct_launch_users.first_used_at, at or after L) falls on or before it.
* time to first use: (first use - L) in days over adopters (first use within 28 days), as
  quantiles with linear interpolation.
* retention: among users active in the 28 days before L and in days 0-6 after it (24-hour
  steps from L), the share active in days 7-13, for adopters (first use in days 0-6) and
  non-adopters, with a two-proportion z-test of the difference.
* incidents and tickets tied to the feature: `incidents` and `tickets` filtered on the feature,
  in the window before and after L; incidents attributed to the launch itself (launch_id).
* NPS and CSAT of adopters vs non-adopters: feedback submitted within 28 days after L by users
  active around the launch, split by whether the user adopted the feature in that time.
* pre/post quality KPIs: crash-free user rate and errors per 1k events on the launch's
  platforms, tickets per 1k active users, NPS and CSAT, over `window_days` before L against
  `window_days` after it (cut at the end of the data).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from metrics.protocols import Engine
from metrics.query.request import Filter, FilterOp
from metrics.scorecards.common import Withheld, as_date, as_datetime, check_choice, data_days, run, run_restricted
from metrics.scorecards.marts import Condition, read_mart
from metrics.scorecards.slo import Slo
from metrics.stats.proportions import TwoProportionTest, two_proportion_z_test

DEFAULT_WINDOW_DAYS = 28
ADOPTION_DAYS = 28
QUANTILES = (0.25, 0.5, 0.75, 0.9)
PLATFORM_KPIS = ("crash_free_user_rate", "errors_per_1k_events")
GLOBAL_KPIS = ("tickets_per_1k_active_users", "nps", "csat")


@dataclass(frozen=True)
class Launch:
    launch_id: str
    feature_key: str
    launch_name: str
    tier: str
    owner_team: str
    launched_at: dt.datetime


@dataclass(frozen=True)
class AdoptionDay:
    day: int
    date: dt.date
    feature_users: int
    active_users: int
    share: float | None
    cumulative_adopters: int


@dataclass(frozen=True)
class Retention:
    users: int
    retained: int

    @property
    def rate(self) -> float | None:
        return self.retained / self.users if self.users else None


@dataclass(frozen=True)
class Feedback:
    nps_responses: int
    nps_points: int
    csat_responses: int
    csat_satisfied: int

    @property
    def nps(self) -> float | None:
        return self.nps_points / self.nps_responses if self.nps_responses else None

    @property
    def csat(self) -> float | None:
        return self.csat_satisfied / self.csat_responses if self.csat_responses else None


@dataclass(frozen=True)
class PrePost:
    metric: str
    severity: str | None
    before: float | None
    after: float | None
    direction: str | None

    @property
    def change(self) -> float | None:
        return None if self.before is None or self.after is None else self.after - self.before


@dataclass(frozen=True)
class LaunchScorecard:
    launch: Launch
    window_days: int
    pre_start: dt.datetime
    post_end: dt.datetime
    platforms: tuple[str, ...]
    adopters: int
    adoption: tuple[AdoptionDay, ...]
    time_to_first_use: dict[str, float | None]
    retention_adopters: Retention
    retention_non_adopters: Retention
    retention_test: TwoProportionTest
    incidents_caused: int | None  # None when withheld
    feature_incidents: tuple[PrePost, ...]
    feature_tickets: PrePost | None  # None when withheld
    feedback_adopters: Feedback
    feedback_non_adopters: Feedback
    quality: tuple[PrePost, ...]
    # Parts left out because the caller's row policy cannot restrict their metrics.
    withheld: tuple[Withheld, ...] = ()


def launches(engine: Engine) -> list[Launch]:
    rows = read_mart(
        engine,
        "dim_launches",
        ["launch_id", "feature_key", "launch_name", "tier", "owner_team", "launched_at"],
        order_by=["launched_at", "launch_id"],
    )
    return [Launch(**r) for r in rows]


def launch(engine: Engine, launch_id: str) -> Launch:
    found = {x.launch_id: x for x in launches(engine)}
    check_choice(launch_id, found, "launch", not_found=True)
    return found[launch_id]


def quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default, DuckDB's quantile_cont).

    >>> quantile([1.0, 2.0, 3.0, 4.0], 0.5), quantile([1.0, 2.0, 3.0, 4.0], 0.9)
    (2.5, 3.7)
    """
    if not values:
        return None
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _value(rows: list[dict[str, Any]], metric: str) -> float | None:
    if not rows or rows[0].get(metric) is None:
        return None
    return float(rows[0][metric])


def scorecard(engine: Engine, launch_id: str, window_days: int = DEFAULT_WINDOW_DAYS) -> LaunchScorecard:
    x = launch(engine, launch_id)
    first, last = data_days(engine)
    data_end = as_datetime(last + dt.timedelta(days=1))
    at = x.launched_at
    pre_start = at - dt.timedelta(days=window_days)
    post_end = min(at + dt.timedelta(days=window_days), data_end)
    feature = Filter("feature_key", FilterOp.EQ, x.feature_key)

    # platforms the feature shipped to: where it is used after the launch
    platforms: tuple[str, ...] = ()
    if at < post_end:
        used = run(engine, ["feature_users"], ["platform"], (feature,), at, post_end)
        platforms = tuple(sorted(r["platform"] for r in used if r["platform"] and r["feature_users"]))
    on_platforms = (Filter("platform", FilterOp.IN, values=platforms),) if platforms else ()

    users = read_mart(
        engine,
        "fct_launch_users",
        [
            "first_used_at",
            "days_to_first_use",
            "is_adopter",
            "is_adopter_week_1",
            "is_active_before",
            "is_active_week_1",
            "is_active_week_2",
            "nps_points",
            "nps_responses",
            "csat_satisfied",
            "csat_responses",
        ],
        [Condition("launch_id", "=", x.launch_id)],
    )
    adopters = [u for u in users if u["is_adopter"]]

    # adoption by day since launch
    adoption: list[AdoptionDay] = []
    start_day = as_date(at)
    if platforms:
        span_end = as_datetime(start_day + dt.timedelta(days=ADOPTION_DAYS + 1))
        daily_users = {
            as_date(r["metric_time__day"]): int(r["feature_users"] or 0)
            for r in run(
                engine,
                ["feature_users"],
                ["metric_time__day"],
                (feature,) + on_platforms,
                as_datetime(start_day),
                span_end,
            )
        }
        daily_active = {
            as_date(r["metric_time__day"]): int(r["active_users"] or 0)
            for r in run(engine, ["active_users"], ["metric_time__day"], on_platforms, as_datetime(start_day), span_end)
        }
        first_use_days = sorted(as_date(u["first_used_at"]) for u in adopters)
        for day in range(ADOPTION_DAYS + 1):
            date = start_day + dt.timedelta(days=day)
            if date > last:
                break
            feature_users, active = daily_users.get(date, 0), daily_active.get(date, 0)
            adoption.append(
                AdoptionDay(
                    day,
                    date,
                    feature_users,
                    active,
                    feature_users / active if active else None,
                    sum(1 for d in first_use_days if d <= date),
                )
            )

    waits = [float(u["days_to_first_use"]) for u in adopters]
    time_to_first_use = {f"p{round(q * 100)}": quantile(waits, q) for q in QUANTILES}
    time_to_first_use["mean"] = sum(waits) / len(waits) if waits else None

    cohort = [u for u in users if u["is_active_before"] and u["is_active_week_1"]]
    retained_a = Retention(
        sum(1 for u in cohort if u["is_adopter_week_1"]),
        sum(1 for u in cohort if u["is_adopter_week_1"] and u["is_active_week_2"]),
    )
    retained_n = Retention(
        sum(1 for u in cohort if not u["is_adopter_week_1"]),
        sum(1 for u in cohort if not u["is_adopter_week_1"] and u["is_active_week_2"]),
    )
    retention_test = two_proportion_z_test(retained_a.retained, retained_a.users, retained_n.retained, retained_n.users)

    def feedback(group: list[dict[str, Any]]) -> Feedback:
        return Feedback(
            sum(int(u["nps_responses"]) for u in group),
            sum(int(u["nps_points"]) for u in group),
            sum(int(u["csat_responses"]) for u in group),
            sum(int(u["csat_satisfied"]) for u in group),
        )

    def slo_direction(metric: str) -> str | None:
        slo = Slo.from_meta(metric, engine.manifest.metrics[metric].meta)
        return slo.direction.value if slo else None

    withheld: list[Withheld] = []

    def before_after(metrics: tuple[str, ...], group_by: tuple[str, ...], where: tuple[Filter, ...]):
        before = run_restricted(engine, metrics, withheld, group_by, where, pre_start, at)
        after = run_restricted(engine, metrics, withheld, group_by, where, at, post_end) if at < post_end else []
        return before, after

    def kept(metrics: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m for m in metrics if m not in {w.metric for w in withheld})

    caused = run_restricted(engine, ["incidents"], withheld, [], (Filter("launch", FilterOp.EQ, x.launch_id),))
    incidents_caused = int(_value(caused, "incidents") or 0) if kept(("incidents",)) else None
    before, after = before_after(("incidents",), ("severity",), (feature,))
    feature_incidents: tuple[PrePost, ...] = ()
    if kept(("incidents",)):
        severities = sorted({r["severity"] for r in before + after if r["severity"] is not None})

        def count(rows: list, sev: str | None) -> float:
            return float(sum(int(r["incidents"] or 0) for r in rows if sev is None or r["severity"] == sev))

        feature_incidents = tuple(
            PrePost("incidents", sev, count(before, sev), count(after, sev), "lower_is_better")
            for sev in [None, *severities]
        )
    before, after = before_after(("tickets",), (), (feature,))
    feature_tickets = (
        PrePost(
            "tickets",
            None,
            _value(before, "tickets") or 0.0,
            (_value(after, "tickets") or 0.0) if at < post_end else None,
            "lower_is_better",
        )
        if kept(("tickets",))
        else None
    )

    quality: list[PrePost] = []
    if platforms:
        before, after = before_after(PLATFORM_KPIS, (), on_platforms)
        quality += [
            PrePost(m, None, _value(before, m), _value(after, m), slo_direction(m)) for m in kept(PLATFORM_KPIS)
        ]
    before, after = before_after(GLOBAL_KPIS, (), ())
    quality += [PrePost(m, None, _value(before, m), _value(after, m), slo_direction(m)) for m in kept(GLOBAL_KPIS)]

    return LaunchScorecard(
        launch=x,
        window_days=window_days,
        pre_start=pre_start,
        post_end=max(post_end, at),
        platforms=platforms,
        adopters=len(adopters),
        adoption=tuple(adoption),
        time_to_first_use=time_to_first_use,
        retention_adopters=retained_a,
        retention_non_adopters=retained_n,
        retention_test=retention_test,
        incidents_caused=incidents_caused,
        feature_incidents=feature_incidents,
        feature_tickets=feature_tickets,
        feedback_adopters=feedback(adopters),
        feedback_non_adopters=feedback([u for u in users if not u["is_adopter"]]),
        quality=tuple(quality),
        withheld=tuple(withheld),
    )
