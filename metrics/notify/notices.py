"""Notices: one thing worth telling someone, with its numbers, computed through an engine (a
`RestrictedEngine` for a destination bound to a token's row policy).

Each notice has a `subject` (what it is about: `anomaly_alerts:tickets`) and a `state` (what is
true of it now: the newest alert day). A notice whose subject and state were already delivered
to a destination is not sent again, so a rebuild with no change sends nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from metrics.errors import NotFound
from metrics.experiment_design import MULTIPLE_EXPOSURE_WARNING, experiment_health
from metrics.policy import PolicyDenied
from metrics.protocols import Engine
from metrics.query.request import MetricQuery
from metrics.scorecards import launches as launch_cards
from metrics.scorecards.alerts import alerts, checked_alerts
from metrics.scorecards.common import (
    as_date,
    data_days,
    next_period,
    period_start,
    previous_period,
)
from metrics.scorecards.quality import quality_scorecard
from metrics.scorecards.releases import all_release_health
from metrics.scorecards.slo import Status
from metrics.stats.srm import DEFAULT_SRM_THRESHOLD

#: Alerts on days older than this, counted back from the newest alert day in the data, are
#: history rather than news.
DEFAULT_LOOKBACK_DAYS = 7
#: At most this many alert days are listed in one notice (the newest).
MAX_ALERT_DAYS = 5


@dataclass(frozen=True)
class Figure:
    """One number of a notice and what it is compared with."""

    metric: str
    label: str
    period: str  # the day or period start it is about (ISO)
    value: float | None
    compared_to: str  # "expected" | "previous_period" | "target" ...
    comparison: float | None
    change: float | None = None
    relative_change: float | None = None
    status: str | None = None  # alert direction, SLO status
    lower_bound: float | None = None
    upper_bound: float | None = None


@dataclass(frozen=True)
class Notice:
    kind: str  # anomaly_alerts | slo_status | digest | regressed_release | launch_scorecard | experiment_*
    subject: str
    state: str
    title: str
    summary: str
    figures: tuple[Figure, ...]
    link: str  # a path of the HTTP API, e.g. /v1/alerts?metric=tickets


def anomaly_notices(
    engine: Engine,
    metrics: tuple[str, ...] = (),
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    adverse_only: bool = False,
) -> list[Notice]:
    """One notice per metric with alerts in the last `lookback_days` days of alerts (for an engine
    under a row policy, which cannot read the warehouse's check, the check run over its rows)."""
    try:
        found = alerts(engine)
    except PolicyDenied:
        found = checked_alerts(engine, metrics)
    if not found:
        return []
    newest_day = max(a.date for a in found)
    since = newest_day - dt.timedelta(days=lookback_days - 1)
    notices = []
    for metric in sorted({a.metric for a in found}):
        if metrics and metric not in metrics:
            continue
        recent = [a for a in found if a.metric == metric and a.date >= since and (not adverse_only or a.adverse)]
        if not recent:
            continue
        recent.sort(key=lambda a: a.date, reverse=True)
        newest = recent[0]
        label = engine.manifest.metrics[metric].label if metric in engine.manifest.metrics else metric
        days = len(recent)
        title = (
            f"{label}: {_number(newest.value)} on {newest.date.isoformat()} is {newest.direction} its expected band "
            f"({_number(newest.lower_bound)} to {_number(newest.upper_bound)}; expected {_number(newest.expected)})"
        )
        summary = (
            f"{days} anomalous day{'s' if days > 1 else ''} for {metric} since {since.isoformat()}"
            + (
                ""
                if newest.adverse is None
                else ("; worse than expected" if newest.adverse else "; better than expected")
            )
            + "."
        )
        figures = tuple(
            Figure(
                metric,
                label,
                a.date.isoformat(),
                a.value,
                "expected",
                a.expected,
                a.value - a.expected,
                (a.value / a.expected - 1) if a.expected else None,
                a.direction,
                a.lower_bound,
                a.upper_bound,
            )
            for a in recent[:MAX_ALERT_DAYS]
        )
        notices.append(
            Notice(
                "anomaly_alerts",
                f"anomaly_alerts:{metric}",
                f"{newest.date.isoformat()}:{newest.direction}",
                title,
                summary,
                figures,
                f"/v1/alerts?metric={metric}",
            )
        )
    return notices


def slo_notices(
    engine: Engine, metrics: tuple[str, ...] = (), statuses: tuple[str, ...] = ("warn", "breach"), period: str = "week"
) -> list[Notice]:
    """One notice per quality KPI whose last complete period is in one of `statuses`."""
    card = quality_scorecard(engine, period)
    notices = []
    for kpi in card.kpis:
        if kpi.severity is not None or (metrics and kpi.metric not in metrics):
            continue
        complete = [p for p in kpi.periods if p.complete]
        if not complete or complete[-1].status.value not in statuses:
            continue
        p = complete[-1]
        bound = p.warn if p.status is Status.BREACH else p.target
        title = (
            f"{kpi.label}: {p.status.value.upper()} for the {period} of {p.period_start.isoformat()}: "
            f"{_number(p.value)} against a target of {_number(p.target)} (warn at {_number(p.warn)})"
        )
        summary = (
            f"{kpi.metric} was {_number(p.value)} in the {period} starting {p.period_start.isoformat()}"
            + (f", {_number(p.previous)} the {period} before" if p.previous is not None else "")
            + "."
        )
        figures = (
            Figure(
                kpi.metric,
                kpi.label,
                p.period_start.isoformat(),
                p.value,
                "previous_period",
                p.previous,
                p.change,
                p.relative_change,
                p.status.value,
                None,
                bound,
            ),
        )
        notices.append(
            Notice(
                "slo_status",
                f"slo_status:{kpi.metric}",
                f"{period}:{p.period_start.isoformat()}:{p.status.value}",
                title,
                summary,
                figures,
                f"/v1/quality?period={period}",
            )
        )
    return notices


def digest_notice(engine: Engine, name: str, metrics: tuple[str, ...], period: str = "week") -> Notice | None:
    """The metrics' last complete period against the one before (None before two periods of data)."""
    grain = f"metric_time__{period}"
    result = engine.query(MetricQuery(metrics=tuple(metrics), group_by=(grain,)))
    newest = result.freshness.newest_metric_time
    if newest is None:
        return None
    data_end = as_date(newest) + dt.timedelta(days=1)
    # the newest period that is complete: it ends on or before the day after the data
    current = period_start(data_end - dt.timedelta(days=1), period)
    if next_period(current, period) > data_end:
        current = previous_period(current, period)
    before = previous_period(current, period)
    rows = {as_date(r[0]): r for r in result.rows if r[0] is not None}
    figures = []
    for i, metric in enumerate(metrics, start=1):
        value = rows.get(current, (None,) * (len(metrics) + 1))[i]
        previous = rows.get(before, (None,) * (len(metrics) + 1))[i]
        value = None if value is None else float(value)
        previous = None if previous is None else float(previous)
        change = value - previous if value is not None and previous is not None else None
        relative = value / previous - 1 if value is not None and previous else None
        label = engine.manifest.metrics[metric].label
        figures.append(Figure(metric, label, current.isoformat(), value, "previous_period", previous, change, relative))
    if all(f.value is None for f in figures):
        return None
    title = f"{name}: the {period} of {current.isoformat()}"
    summary = "; ".join(
        f"{f.label} {_number(f.value)} ({_signed(f.relative_change)} vs previous {period})" for f in figures
    )
    return Notice(
        "digest",
        f"digest:{name}",
        f"{period}:{current.isoformat()}",
        title,
        summary,
        tuple(figures),
        f"/v1/query?metrics={','.join(metrics)}&group_by={grain}",
    )


def release_notices(engine, platforms: tuple[str, ...] = ()) -> list[Notice]:
    """One notice per release the releases scorecard flags `regressed: true`: its crash-free user
    rate and error rate against the previous version's over the same window."""
    try:
        found = all_release_health(engine, with_adoption=False)
    except NotFound:  # a warehouse without releases has nothing to say
        return []
    notices = []
    for h in found:
        r = h.release
        if h.regressed is not True or (platforms and r.platform not in platforms):
            continue
        previous = h.previous
        figures = []
        for test, metric, label, value, comparison in (
            (
                h.crash,
                "crash_free_user_rate",
                "Crash-free user rate",
                h.current.crash_free_user_rate,
                previous.crash_free_user_rate if previous else None,
            ),
            (
                h.errors,
                "errors_per_1k_events",
                "Errors per 1k events",
                h.current.errors_per_1k_events,
                previous.errors_per_1k_events if previous else None,
            ),
        ):
            change = value - comparison if value is not None and comparison is not None else None
            status = (
                None
                if test is None
                else ("regressed" if test.regressed else "not regressed" if test.regressed is False else "not tested")
            )
            figures.append(
                Figure(
                    metric,
                    label,
                    h.window_start.date().isoformat(),
                    _float(value),
                    "previous_version",
                    _float(comparison),
                    change,
                    change / comparison if change is not None and comparison else None,
                    status,
                )
            )
        worse = [t for t in (h.crash, h.errors) if t is not None and t.regressed]
        title = (
            f"{r.platform} {r.app_version} regressed against {r.previous_app_version}: crash-free users "
            f"{_percent(h.current.crash_free_user_rate)} vs "
            f"{_percent(previous.crash_free_user_rate if previous else None)}, errors per 1k events "
            f"{_number(h.current.errors_per_1k_events)} vs "
            f"{_number(previous.errors_per_1k_events if previous else None)}"
        )
        summary = (
            f"{r.platform} {r.app_version} (released {r.released_at.date().isoformat()}), "
            f"{h.current.active_users:,} users over {h.window_start.date().isoformat()} to "
            f"{h.window_end.date().isoformat()}: "
            + "; ".join(
                f"{_TEST_LABELS[t.metric]} higher than {r.previous_app_version}'s "
                f"(p = {t.test.p_value:.2g} < {h.alpha:g})"
                for t in worse
            )
            + "."
        )
        notices.append(
            Notice(
                "regressed_release",
                f"regressed_release:{r.platform}:{r.app_version}",
                "regressed",
                title,
                summary,
                tuple(figures),
                f"/v1/releases/{r.platform}/{r.app_version}",
            )
        )
    return notices


_TEST_LABELS = {
    "crashed_user_share": "share of users who crashed",
    "error_share_of_events": "share of events with errors",
}


def launch_notices(engine, milestones: tuple[int, ...] = (7, 14, 28), launch_ids: tuple[str, ...] = ()) -> list[Notice]:
    """One notice per launch and milestone day (7, 14, 28) the data has reached: the launch
    scorecard with that many days before and after the launch."""
    try:
        found = launch_cards.launches(engine)
        _, last = data_days(engine)
    except NotFound:
        return []
    notices = []
    for launch in found:
        if launch_ids and launch.launch_id not in launch_ids:
            continue
        launch_day = as_date(launch.launched_at)
        for day in milestones:
            # day k since the launch is the launch's UTC day + k; it is reached once the data has all of it
            if launch_day + dt.timedelta(days=day) > last:
                continue
            notices.append(_launch_notice(engine, launch, day))
    return notices


def _launch_notice(engine, launch, day: int) -> Notice:
    card = launch_cards.scorecard(engine, launch.launch_id, window_days=day)
    at_day = next((a for a in card.adoption if a.day == day), None)
    period = (as_date(launch.launched_at) + dt.timedelta(days=day)).isoformat()
    figures = [
        Figure(
            "adopters", "Adopters (cumulative)", period, _float(at_day and at_day.cumulative_adopters), "launch", 0.0
        ),
        Figure(
            "feature_users",
            f"Users of {launch.feature_key} on day {day}",
            period,
            _float(at_day and at_day.feature_users),
            "active_users",
            _float(at_day and at_day.active_users),
            None,
            None,
            None if at_day is None or at_day.share is None else f"{at_day.share:.1%} of active",
        ),
    ]
    retention = card.retention_adopters, card.retention_non_adopters
    if retention[0].users or retention[1].users:
        figures.append(
            Figure(
                "week_2_retention",
                "Week-2 retention, adopters vs not",
                period,
                retention[0].rate,
                "non_adopters",
                retention[1].rate,
                _diff(retention[0].rate, retention[1].rate),
                None,
                None if card.retention_test.p_value is None else f"p = {card.retention_test.p_value:.2g}",
            )
        )
    for kpi in ((card.feature_tickets,) if card.feature_tickets else ()) + card.quality:
        figures.append(
            Figure(
                kpi.metric,
                engine.manifest.metrics[kpi.metric].label,
                period,
                kpi.after,
                f"{day}_days_before",
                kpi.before,
                kpi.change,
                kpi.change / kpi.before if kpi.change is not None and kpi.before else None,
                _verdict(kpi.change, kpi.direction),
            )
        )
    adopters = at_day.cumulative_adopters if at_day else 0
    share = "" if at_day is None or at_day.share is None else f", {at_day.share:.1%} of active users used it that day"
    title = f"{launch.launch_name}, day {day}: {adopters:,} adopters{share}"
    summary = (
        f"Launch {launch.launch_id} ({launch.feature_key}, {launch.tier}, {launch.owner_team}) on "
        f"{launch.launched_at.date().isoformat()}: the {day} days after it against the {day} days before"
        + (f" on {', '.join(card.platforms)}" if card.platforms else "")
        + "; "
        + "; ".join(f"{f.label} {_number(f.value)} vs {_number(f.comparison)}" for f in figures[2:])
        + "."
    )
    return Notice(
        "launch_scorecard",
        f"launch_scorecard:{launch.launch_id}:day{day}",
        f"day{day}",
        title,
        summary,
        tuple(figures),
        f"/v1/launches/{launch.launch_id}/scorecard?window_days={day}",
    )


def experiment_sample_notices(engine, experiment_ids: tuple[str, ...] = ()) -> list[Notice]:
    """One notice per experiment whose smallest arm has reached its planned users per arm."""
    notices = []
    for experiment, health in _experiment_health(engine, experiment_ids):
        if not health.planned_sample_reached:
            continue
        planned = health.planned_users_per_variant
        figures = tuple(
            Figure(
                "users",
                f"Users in {arm}",
                experiment.started_at.date().isoformat() if experiment.started_at else "",
                float(users),
                "planned_users_per_variant",
                float(planned),
                float(users - planned),
                users / planned - 1 if planned else None,
                "reached" if users >= planned else "short",
            )
            for arm, users in health.variants.items()
        )
        title = (
            f"{experiment.name}: the planned sample size is reached ({health.smallest_variant_users:,} users in "
            f"the smallest arm, {planned:,} planned per arm)"
        )
        summary = (
            f"Experiment {experiment.experiment_id} ({health.status}): "
            + ", ".join(f"{arm} {users:,}" for arm, users in health.variants.items())
            + f" users; planned {planned:,} per arm. The readout has the power it was planned for."
        )
        notices.append(
            Notice(
                "experiment_sample_reached",
                f"experiment_sample_reached:{experiment.experiment_id}",
                f"reached:{planned}",
                title,
                summary,
                figures,
                f"/v1/experiments/{experiment.experiment_id}/health",
            )
        )
    return notices


def experiment_health_notices(engine, experiment_ids: tuple[str, ...] = ()) -> list[Notice]:
    """One notice per experiment failing a health check: a sample ratio mismatch, or more than
    1% of its users seen in more than one arm."""
    notices = []
    for experiment, health in _experiment_health(engine, experiment_ids):
        failures = [
            name
            for name, failed in (("srm", health.srm_warning), ("multiple_exposure", health.multiple_exposure_warning))
            if failed
        ]
        if not failures:
            continue
        start = experiment.started_at.date().isoformat() if experiment.started_at else ""
        total = sum(health.variants.values())
        even = total / len(health.variants) if health.variants else 0.0
        figures = [
            Figure(
                "users",
                f"Users in {arm}",
                start,
                float(users),
                "planned_split",
                even,
                users - even,
                users / even - 1 if even else None,
                "srm" if health.srm_warning else None,
            )
            for arm, users in health.variants.items()
        ]
        figures.append(
            Figure(
                "srm_p_value",
                "Sample ratio p-value",
                start,
                health.srm_p_value,
                "threshold",
                DEFAULT_SRM_THRESHOLD,
                None,
                None,
                "fail" if health.srm_warning else "pass",
            )
        )
        figures.append(
            Figure(
                "multiple_exposure_share",
                "Share of users in more than one arm",
                start,
                health.multiple_exposure_share,
                "threshold",
                MULTIPLE_EXPOSURE_WARNING,
                None,
                None,
                "fail" if health.multiple_exposure_warning else "pass",
            )
        )
        words = {
            "srm": f"sample ratio mismatch (p = {health.srm_p_value:.2g})",
            "multiple_exposure": f"{health.multiple_exposure_share:.1%} of users in more than one arm",
        }
        title = f"{experiment.name}: health check failed: " + "; ".join(words[f] for f in failures)
        summary = (
            f"Experiment {experiment.experiment_id} ({health.status}): "
            + ", ".join(f"{arm} {users:,}" for arm, users in health.variants.items())
            + " users. "
            + " ".join(w[0].upper() + w[1:] + "." for w in health.warnings)
        )
        notices.append(
            Notice(
                "experiment_health",
                f"experiment_health:{experiment.experiment_id}",
                "+".join(failures),
                title,
                summary,
                tuple(figures),
                f"/v1/experiments/{experiment.experiment_id}/health",
            )
        )
    return notices


def _experiment_health(engine, experiment_ids: tuple[str, ...]):
    try:
        experiments = engine.experiments
        found = experiments.experiments()
    except NotFound:  # a warehouse without experiment marts
        return
    for experiment in found:
        if experiment_ids and experiment.experiment_id not in experiment_ids:
            continue
        yield (
            experiment,
            experiment_health(experiments, experiment.experiment_id, experiments.settings(experiment.experiment_id)),
        )


def _float(value) -> float | None:
    return None if value is None else float(value)


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _verdict(change: float | None, direction: str | None) -> str | None:
    """better | worse | unchanged, from a KPI's direction (None when it has none)."""
    if change is None or direction is None:
        return None
    if change == 0:
        return "unchanged"
    return "better" if (change > 0) == (direction == "higher_is_better") else "worse"


def _percent(value: float | None) -> str:
    """
    >>> _percent(0.98765), _percent(None)
    ('98.77%', 'n/a')
    """
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _number(value: float | None) -> str:
    """A number as a person reads it in a message.

    >>> _number(12007.65), _number(24.848), _number(0.99337), _number(None)
    ('12,008', '24.8', '0.993', 'n/a')
    """
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _signed(relative: float | None) -> str:
    """A relative change as a signed percentage.

    >>> _signed(0.1234), _signed(-0.05), _signed(None)
    ('+12.3%', '-5.0%', 'n/a')
    """
    return "n/a" if relative is None else f"{relative * 100:+.1f}%"


__all__ = [
    "Figure",
    "Notice",
    "anomaly_notices",
    "digest_notice",
    "experiment_health_notices",
    "experiment_sample_notices",
    "launch_notices",
    "release_notices",
    "slo_notices",
]
