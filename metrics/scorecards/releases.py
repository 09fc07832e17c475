"""Release health: adoption of each app version by day since its release, and its crash-free
user rate and error rate against the previous version of the same platform over the same days,
with a regression flag from a two-proportion z-test.

Comparison window: from the release's `released_at` for `window_days` days (default 14), cut
at the end of the data. Both versions are measured over that same window (the previous version
by its users who have not upgraded yet), so a week with more crashes everywhere does not count
against the new version. A version is regressed when its crashed-user share (crashed_users /
active_users) or its error share (errors / events) is higher than the previous version's with a
two-sided p-value below `alpha` (default 0.01). A test that cannot run (no users or events
of either version in the window: `empty_sample`; both shares 0 or 1: `no_variance`) says
neither yes nor no: its `regressed` is None with the reason, and so is the release's unless
another test found a regression; a first release with no previous version is None too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from metrics.errors import NotFound
from metrics.protocols import Engine
from metrics.query.request import Filter, FilterOp
from metrics.scorecards.common import as_date, as_datetime, check_choice, data_days, platform_filter, run
from metrics.scorecards.marts import read_mart
from metrics.stats.proportions import EMPTY_SAMPLE, NO_VARIANCE, TwoProportionTest, two_proportion_z_test

DEFAULT_WINDOW_DAYS = 14
DEFAULT_ADOPTION_DAYS = 28
DEFAULT_ALPHA = 0.01


@dataclass(frozen=True)
class Release:
    platform: str
    app_version: str
    released_at: dt.datetime
    previous_app_version: str | None


@dataclass(frozen=True)
class AdoptionDay:
    day: int  # days since release: day 0 is the UTC day of released_at
    date: dt.date
    version_users: int
    platform_users: int
    share: float | None


@dataclass(frozen=True)
class VersionSample:
    app_version: str
    active_users: int
    crashed_users: int
    events: int
    errors: int
    crash_free_user_rate: float | None
    errors_per_1k_events: float | None


@dataclass(frozen=True)
class RateComparison:
    """One rate of the release against the previous version: a two-proportion z-test."""

    metric: str
    test: TwoProportionTest
    regressed: bool | None  # None: the test could not run (test.error says why)


@dataclass(frozen=True)
class ReleaseHealth:
    release: Release
    window_start: dt.datetime
    window_end: dt.datetime
    alpha: float
    current: VersionSample
    previous: VersionSample | None
    crash: RateComparison | None
    errors: RateComparison | None
    adoption: tuple[AdoptionDay, ...]

    @property
    def regressed(self) -> bool | None:
        """True when a test found a regression; False when every test ran and none did; None
        when that cannot be said (see `regressed_reason`)."""
        tests = (self.crash, self.errors)
        if any(c is not None and c.regressed for c in tests):
            return True
        return None if self.regressed_reason else False

    @property
    def regressed_reason(self) -> str | None:
        """Why `regressed` is None, in words; None when it is not."""
        if any(c is not None and c.regressed for c in (self.crash, self.errors)):
            return None
        if self.previous is None:
            return "no previous version of the platform to compare with"
        reasons = []
        for c, what in ((self.crash, "crash test"), (self.errors, "error test")):
            if c is not None and c.regressed is None:
                reasons.append(f"{what}: {_REASONS.get(c.test.error or '', c.test.error)}")
        return "; ".join(reasons) or None


def releases(engine: Engine, platform: str | None = None) -> list[Release]:
    rows = read_mart(
        engine,
        "dim_releases",
        ["platform", "app_version", "released_at", "previous_app_version"],
        order_by=["platform", "released_at", "app_version"],
    )
    found = [Release(r["platform"], r["app_version"], r["released_at"], r["previous_app_version"]) for r in rows]
    if platform is not None:
        check_choice(platform, {r.platform for r in found}, "platform")
        found = [r for r in found if r.platform == platform]
    return found


def release(engine: Engine, platform: str, app_version: str) -> Release:
    every = releases(engine)
    check_choice(platform, {r.platform for r in every}, "platform", not_found=True)
    versions = {r.app_version: r for r in every if r.platform == platform}
    check_choice(app_version, versions, f"{platform} app version", not_found=True)
    return versions[app_version]


def _sample(row: dict[str, Any] | None, version: str) -> VersionSample:
    row = row or {}
    return VersionSample(
        version,
        int(row.get("active_users") or 0),
        int(row.get("crashed_users") or 0),
        int(row.get("events") or 0),
        int(row.get("errors") or 0),
        row.get("crash_free_user_rate"),
        row.get("errors_per_1k_events"),
    )


_REASONS = {
    EMPTY_SAMPLE: "no data for one of the versions in the window (empty_sample)",
    NO_VARIANCE: "both versions have a share of 0 or 1, nothing to test (no_variance)",
}


def _compare(metric: str, x1: int, n1: int, x0: int, n0: int, alpha: float) -> RateComparison:
    # a crashed user without an event in the window would make a share above 1
    test = two_proportion_z_test(min(x1, n1), n1, min(x0, n0), n0)
    if test.p_value is None:
        return RateComparison(metric, test, None)
    worse = test.difference is not None and test.difference > 0
    return RateComparison(metric, test, bool(worse and test.p_value < alpha))


def adoption(engine: Engine, rel: Release, days: int = DEFAULT_ADOPTION_DAYS) -> tuple[AdoptionDay, ...]:
    """Share of the platform's daily active users on the version, day 0..`days` since release."""
    first, last = data_days(engine)
    start = as_date(rel.released_at)
    if start > last:
        return ()
    by_version = run(engine, ["active_users"], ["metric_time__day", "app_version"], platform_filter(rel.platform))
    totals = run(engine, ["active_users"], ["metric_time__day"], platform_filter(rel.platform))
    version_users = {
        as_date(r["metric_time__day"]): int(r["active_users"] or 0)
        for r in by_version
        if r["app_version"] == rel.app_version
    }
    platform_users = {as_date(r["metric_time__day"]): int(r["active_users"] or 0) for r in totals}
    out = []
    for day in range(days + 1):
        date = start + dt.timedelta(days=day)
        if date > last:
            break
        if date < first:
            continue
        users, total = version_users.get(date, 0), platform_users.get(date, 0)
        out.append(AdoptionDay(day, date, users, total, users / total if total else None))
    return tuple(out)


def health(
    engine: Engine,
    rel: Release,
    window_days: int = DEFAULT_WINDOW_DAYS,
    alpha: float = DEFAULT_ALPHA,
    adoption_days: int = DEFAULT_ADOPTION_DAYS,
    with_adoption: bool = True,
) -> ReleaseHealth:
    _, last = data_days(engine)
    data_end = as_datetime(last + dt.timedelta(days=1))
    start = rel.released_at
    end = min(start + dt.timedelta(days=window_days), data_end)
    versions = [rel.app_version] + ([rel.previous_app_version] if rel.previous_app_version else [])
    rows: dict[str, dict[str, Any]] = {}
    if start < end:
        where = platform_filter(rel.platform) + (Filter("app_version", FilterOp.IN, values=tuple(versions)),)
        for row in run(
            engine,
            ["active_users", "crashed_users", "events", "errors", "crash_free_user_rate", "errors_per_1k_events"],
            ["app_version"],
            where,
            start,
            end,
        ):
            rows[row["app_version"]] = row
    current = _sample(rows.get(rel.app_version), rel.app_version)
    previous = (
        _sample(rows.get(rel.previous_app_version), rel.previous_app_version) if rel.previous_app_version else None
    )
    crash = errors = None
    if previous is not None:
        crash = _compare(
            "crashed_user_share",
            current.crashed_users,
            current.active_users,
            previous.crashed_users,
            previous.active_users,
            alpha,
        )
        errors = _compare(
            "error_share_of_events", current.errors, current.events, previous.errors, previous.events, alpha
        )
    return ReleaseHealth(
        rel,
        start,
        max(start, end),
        alpha,
        current,
        previous,
        crash,
        errors,
        adoption(engine, rel, adoption_days) if with_adoption else (),
    )


def release_health(engine: Engine, platform: str, app_version: str, **options) -> ReleaseHealth:
    return health(engine, release(engine, platform, app_version), **options)


def all_release_health(engine: Engine, platform: str | None = None, **options) -> list[ReleaseHealth]:
    found = releases(engine, platform)
    if not found:
        raise NotFound("the warehouse has no releases.")
    return [health(engine, r, **options) for r in found]
