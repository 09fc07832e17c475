"""An experiment's life around its readout: the plan (how many users, how long, what effect
can be seen), its governed settings (metric roles, guardrails, planned size), its health while
it runs, and the decision its goal and guardrail metrics support.

Settings live in the dbt project, in the `experiment_settings` entry of `dim_experiments`'s
`config.meta` (so they are reviewed like any model change and shown in dbt docs):

    experiment_settings:
      defaults: {goal: [...], secondary: [...], guardrails: [{metric, direction, harm_threshold}]}
      features: {<feature_key>: {...}}        # defaults of every experiment of a feature/team
      experiments: {<experiment_id>: {...}}   # one experiment's own
      planning: {eligible_model: events}      # where plans find eligible users

An experiment's settings are the defaults, overridden key by key by its feature's, then by its
own. `planned_users_per_variant` (or `plan: {metric, mde, power, alpha}` to compute it) is the
size the health check compares the arms with.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

from metrics.errors import InvalidQuery, did_you_mean, nearest
from metrics.stats.power import PowerInputs, minimum_detectable_effect, power, users_per_arm
from metrics.stats.srm import check_srm

SETTINGS_KEY = "experiment_settings"
SETTINGS_MODEL = "dim_experiments"
ROLES = ("goal", "secondary", "guardrail")
DIRECTIONS = ("lower_is_better", "higher_is_better")

MULTIPLE_EXPOSURE_WARNING = 0.01  # share of users seen in more than one arm
DAILY_IMBALANCE_P = 0.001  # GrowthBook's SRM threshold, applied to each day's split
MIN_DAILY_USERS = 20  # below this a day's split says nothing


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Guardrail:
    metric: str
    lower_is_better: bool
    harm_threshold: float = 0.0  # relative worsening tolerated before the guardrail fails


@dataclass(frozen=True)
class ExperimentSettings:
    goal: tuple[str, ...] = ()
    secondary: tuple[str, ...] = ()
    guardrails: tuple[Guardrail, ...] = ()
    planned_users_per_variant: int | None = None
    plan: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    readout_slices: tuple[
        str, ...
    ] = ()  # user attributes the build's results are sliced by  # settings that name unknown metrics, said in words

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric with a role, goal first, without repeats."""
        names = [*self.goal, *self.secondary, *(g.metric for g in self.guardrails)]
        return tuple(dict.fromkeys(names))

    def role(self, metric: str) -> str | None:
        if metric in self.goal:
            return "goal"
        if any(g.metric == metric for g in self.guardrails):
            return "guardrail"
        if metric in self.secondary:
            return "secondary"
        return None

    def guardrail(self, metric: str) -> Guardrail | None:
        return next((g for g in self.guardrails if g.metric == metric), None)


def read_settings_meta(build_directory) -> dict[str, Any]:
    """`experiment_settings` from the `config.meta` of `dim_experiments` in the build's dbt
    manifest (empty when the build has none)."""
    path = build_directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    for node in (manifest.get("nodes") or {}).values():
        if node.get("resource_type") == "model" and node.get("name") == SETTINGS_MODEL:
            meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
            return meta.get(SETTINGS_KEY) or {}
    return {}


def resolve_settings(
    meta: dict[str, Any], experiment_id: str, feature_key: str | None, known_metrics: dict[str, Any]
) -> ExperimentSettings:
    """The settings of one experiment: defaults, then its feature's, then its own; metric
    names resolved to the experiment metrics' names (an unknown name is left out and named in
    `problems`)."""
    merged: dict[str, Any] = {}
    for layer in (
        meta.get("defaults") or {},
        (meta.get("features") or {}).get(feature_key or "") or {},
        (meta.get("experiments") or {}).get(experiment_id) or {},
    ):
        merged.update(layer)
    problems: list[str] = []

    def known(name: str, what: str) -> str | None:
        if name in known_metrics:
            return known_metrics[name].name
        problems.append(
            f"{what} metric {name!r} of {experiment_id} is not an experiment metric" + did_you_mean(name, known_metrics)
        )
        return None

    goal = tuple(n for n in (known(m, "goal") for m in merged.get("goal") or ()) if n)
    secondary = tuple(n for n in (known(m, "secondary") for m in merged.get("secondary") or ()) if n)
    guardrails = []
    for raw in merged.get("guardrails") or ():
        raw = {"metric": raw} if isinstance(raw, str) else dict(raw)
        name = known(str(raw.get("metric")), "guardrail")
        if name is None:
            continue
        direction = raw.get("direction")
        lower = known_metrics[name].lower_is_better if direction is None else direction == "lower_is_better"
        guardrails.append(Guardrail(name, lower, float(raw.get("harm_threshold") or 0.0)))
    planned = merged.get("planned_users_per_variant")
    return ExperimentSettings(
        goal,
        secondary,
        tuple(guardrails),
        int(planned) if planned else None,
        dict(merged.get("plan") or {}),
        tuple(problems),
        tuple(str(s) for s in merged.get("readout_slices") or ()),
    )


# -- plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRequest:
    metric: str
    mde: float | None = None
    weeks: int | None = None
    arms: int = 2
    alpha: float = 0.05
    power: float = 0.8
    cuped: bool = True
    lookback_days: int = 28
    metric_days: int = 14
    pre_days: int = 14


@dataclass(frozen=True)
class PlanWeek:
    week: int
    users_per_arm: int
    mde: float | None  # None: no effect is detectable with so few users
    power_at_mde: float | None  # power at the requested MDE after this many weeks


@dataclass(frozen=True)
class Plan:
    request: PlanRequest
    metric: str
    eligible_users: int
    weekly_users: float
    mean: float
    variance: float
    variance_reduction: float  # CUPED's rho^2 (0 without CUPED)
    window_start: dt.datetime
    window_end: dt.datetime
    users_per_arm: int | None  # for the requested MDE
    total_users: int | None
    weeks_needed: int | None
    weeks: tuple[PlanWeek, ...]


def _datetime(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    return dt.datetime.combine(value, dt.time())


def make_plan(experiments, request: PlanRequest, plan_settings: dict[str, Any] | None = None) -> Plan:
    """Plan an experiment on `request.metric` from the warehouse: the metric's per-user mean
    and variance over the users eligible in the last `lookback_days` of data (each from its
    first row of the eligibility model, over `metric_days`, as if assigned then), the CUPED
    variance reduction from its pre-period correlation, the weekly count of new eligible users,
    then the sample size per arm for `mde` and the MDE by week for `weeks` weeks.

    Raises:
        InvalidQuery: a ratio metric, neither `mde` nor `weeks`, or no eligible users.
        UnknownMetric: not an experiment metric.
    """
    if request.mde is None and request.weeks is None:
        raise InvalidQuery(
            "a plan needs mde (the relative effect to detect, e.g. 0.05) or weeks (how long it may run).", field="mde"
        )
    if request.arms < 2:
        raise InvalidQuery("an experiment has at least 2 arms.", field="arms")
    metric = experiments.metric(request.metric)
    if metric.is_ratio:
        raise InvalidQuery(
            f"{request.metric!r} is a ratio of two per-user values; plans are made for "
            "per-user metrics (choose from "
            + ", ".join(n for n, m in experiments.metrics().items() if not m.is_ratio)
            + ").",
            field="metric",
        )
    settings = {**(plan_settings or {})}
    entry = metric.values[0]
    model_name = settings.get("eligible_model")
    if model_name:
        models = experiments.engine.graph.models
        if model_name not in models:
            raise InvalidQuery(
                f"experiment_settings.plan.eligible_model {model_name!r} is not a semantic model"
                + did_you_mean(model_name, models),
                field="eligible_model",
                suggestions=nearest(model_name, models),
            )
        entry = experiments.entry_measure(models[model_name]) or entry
    latest = experiments.engine._newest_time(experiments.engine.graph.source_of(entry.measure))
    if latest is None:
        raise InvalidQuery(f"there is no data to plan {request.metric!r} from.", field="metric")
    # Users must have had their whole metric window before the data ends.
    window_end = _datetime(latest) - dt.timedelta(days=request.metric_days)
    window_start = window_end - dt.timedelta(days=request.lookback_days)
    rendered = experiments.sql.eligible_statistics(
        list(metric.values),
        entry,
        window_start,
        window_end,
        request.metric_days,
        request.pre_days if request.cuped else None,
        experiments.population,
    )
    result = experiments.engine.client.query(rendered.sql, rendered.params)
    row = dict(zip([c.name for c in result.columns], result.rows[0]))
    n = int(row["n"] or 0)
    if n < 2:
        raise InvalidQuery(
            f"no users were eligible between {window_start:%Y-%m-%d} and {window_end:%Y-%m-%d}; "
            "lower lookback_days or metric_days.",
            field="lookback_days",
        )
    total, squares = float(row["x0_sum"] or 0), float(row["x0_sum_sq"] or 0)
    mean = total / n
    variance = max((squares - total * total / n) / (n - 1), 0.0)
    reduction = 0.0
    if request.cuped:
        pre_total, pre_squares = float(row["pre0_sum"] or 0), float(row["pre0_sum_sq"] or 0)
        cross = float(row["x0_pre0_sum"] or 0)
        pre_variance = (pre_squares - pre_total * pre_total / n) / (n - 1)
        covariance = (cross - total * pre_total / n) / (n - 1)
        if pre_variance > 0 and variance > 0:
            reduction = min(covariance * covariance / (pre_variance * variance), 1.0)
    if mean == 0:
        raise InvalidQuery(
            f"{request.metric!r} averages 0 over the eligible users, so no relative effect can be planned.",
            field="metric",
        )
    inputs = PowerInputs(mean, variance, reduction)
    weekly = n * 7.0 / request.lookback_days
    needed = total_needed = weeks_needed = None
    if request.mde is not None:
        needed = users_per_arm(inputs, request.mde, alpha=request.alpha, target_power=request.power, arms=request.arms)
        total_needed = needed * request.arms
        weeks_needed = math.ceil(total_needed / weekly)
    horizon = request.weeks or max(weeks_needed or 1, 1)
    weeks = []
    for week in range(1, horizon + 1):
        per_arm = int(weekly * week / request.arms)
        mde = minimum_detectable_effect(
            inputs, per_arm, alpha=request.alpha, target_power=request.power, arms=request.arms
        )
        reach = (
            power(inputs, request.mde, per_arm, alpha=request.alpha, arms=request.arms)
            if request.mde is not None and per_arm > 0
            else None
        )
        weeks.append(PlanWeek(week, per_arm, mde, reach))
    return Plan(
        request,
        metric.name,
        n,
        weekly,
        mean,
        variance,
        reduction,
        window_start,
        window_end,
        needed,
        total_needed,
        weeks_needed,
        tuple(weeks),
    )


# -- health --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyTraffic:
    day: dt.date
    users: dict[str, int]
    p_value: float | None  # chi-square of the day's split against the planned (equal) one
    imbalanced: bool


@dataclass(frozen=True)
class Health:
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
    daily: tuple[DailyTraffic, ...]
    imbalanced_days: tuple[dt.date, ...]
    planned_users_per_variant: int | None
    smallest_variant_users: int
    planned_sample_reached: bool | None
    warnings: tuple[str, ...]
    problems: tuple[str, ...] = ()


def experiment_health(experiments, experiment_id: str, settings: ExperimentSettings) -> Health:
    """Besides the sample ratio check: users seen in more than one arm, assignments outside the
    experiment's dates, each day's split between the arms, and whether the planned sample size
    is reached (all counted over the analysed, first-variant assignments)."""
    experiment = experiments.experiment(experiment_id)
    rendered = experiments.sql.assignment_health(experiment_id, experiments.population)
    rows = experiments.engine.client.query(rendered.sql, rendered.params).rows
    arms = [v.name for v in experiment.variants]
    by_day: dict[dt.date, dict[str, int]] = {}
    before = after = several = 0
    for day, variant, users, early, late, multi in rows:
        day = day if isinstance(day, dt.date) and not isinstance(day, dt.datetime) else _datetime(day).date()
        by_day.setdefault(day, {a: 0 for a in arms})[variant] = int(users)
        before += int(early or 0)
        after += int(late or 0)
        several += int(multi or 0)
    daily = []
    for day, counts in sorted(by_day.items()):
        values = [counts[a] for a in arms]
        p = None
        if len(values) > 1 and sum(values) >= MIN_DAILY_USERS:
            p = check_srm(values).p_value
        daily.append(DailyTraffic(day, counts, p, p is not None and p < DAILY_IMBALANCE_P))
    srm = check_srm([v.users for v in experiment.variants]) if len(arms) > 1 else None
    users = experiment.users
    share = several / users if users else 0.0
    planned = settings.planned_users_per_variant
    if planned is None and settings.plan.get("metric") and settings.plan.get("mde"):
        planning = experiments.settings_meta().get("planning") or {}
        planned = users_per_arm_for(experiments, {**planning, **settings.plan}, len(arms))
    smallest = min((v.users for v in experiment.variants), default=0)
    warnings = []
    if srm is not None and srm.mismatch:
        warnings.append(
            f"users did not split between the arms as planned (sample ratio mismatch, p = {srm.p_value:.2g})"
        )
    if share > MULTIPLE_EXPOSURE_WARNING:
        warnings.append(
            f"{several} users ({100 * share:.1f}%) were seen in more than one arm "
            f"(above {100 * MULTIPLE_EXPOSURE_WARNING:.0f}%); they are analysed in their first arm"
        )
    if before or after:
        warnings.append(
            f"{before + after} users were first assigned outside the experiment's dates "
            f"({before} before it started, {after} after it ended)"
        )
    imbalanced = tuple(d.day for d in daily if d.imbalanced)
    if imbalanced:
        warnings.append(
            "the split between the arms was off on "
            + ", ".join(str(d) for d in imbalanced)
            + f" (p < {DAILY_IMBALANCE_P} on that day)"
        )
    reached = None if planned is None else smallest >= planned
    if reached is False and experiment.status == "ended":
        warnings.append(f"the experiment ended before the planned {planned} users per arm (smallest arm: {smallest})")
    return Health(
        experiment_id,
        experiment.status,
        users,
        {v.name: v.users for v in experiment.variants},
        srm.p_value if srm else 1.0,
        bool(srm and srm.mismatch),
        several,
        share,
        share > MULTIPLE_EXPOSURE_WARNING,
        before,
        after,
        bool(before or after),
        tuple(daily),
        imbalanced,
        planned,
        smallest,
        reached,
        tuple(warnings),
        settings.problems,
    )


def users_per_arm_for(experiments, plan: dict[str, Any], arms: int) -> int | None:
    """The planned users per arm of an experiment whose settings give `plan: {metric, mde}`."""
    try:
        result = make_plan(
            experiments,
            PlanRequest(
                metric=str(plan["metric"]),
                mde=float(plan["mde"]),
                arms=arms,
                alpha=float(plan.get("alpha", 0.05)),
                power=float(plan.get("power", 0.8)),
                cuped=bool(plan.get("cuped", True)),
            ),
            plan,
        )
    except InvalidQuery:
        return None
    return result.users_per_arm


# -- decision ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    variant: str
    decision: str  # ship | roll back | keep running | no clear signal | not judged | no goal metric
    sentence: str
    winning_goals: tuple[str, ...] = ()
    losing_goals: tuple[str, ...] = ()
    failing_guardrails: tuple[str, ...] = ()


def guardrail_fails(row, guardrail: Guardrail) -> bool:
    """A guardrail fails when its change is judged, significantly in the bad direction, and
    worse than its harm threshold (a relative change; 0 = any significant harm)."""
    c = row.comparison
    if row.withheld or c.p_value is None or c.relative_lift is None or c.ci_low is None:
        return False
    worse = c.relative_lift if guardrail.lower_is_better else -c.relative_lift
    significant_worse = (c.ci_low > 0) if guardrail.lower_is_better else (c.ci_high < 0)
    return significant_worse and worse >= guardrail.harm_threshold


def _winner(row, lower_is_better: bool) -> int:
    """+1 a judged significant improvement, -1 a judged significant worsening, else 0."""
    c = row.comparison
    if row.withheld or c.ci_low is None or c.ci_high is None or c.p_value is None:
        return 0
    if c.ci_low > 0:
        return -1 if lower_is_better else 1
    if c.ci_high < 0:
        return 1 if lower_is_better else -1
    return 0


def decide(
    rows,
    settings: ExperimentSettings,
    lower_is_better: dict[str, bool],
    variants: list[str],
    planned_reached: bool | None,
    status: str,
) -> list[Decision]:
    """Per variant, what its unsliced goal and guardrail rows support, in the manner of
    GrowthBook's decision framework: roll back when a guardrail fails or a goal metric is a
    significant loser; ship when at least one goal metric is a significant winner and none of
    the above; else keep running (until the planned sample size), or no clear signal."""
    out = []
    for variant in variants:
        mine = {r.metric: r for r in rows if r.variant == variant and not r.slice}
        goals = [mine[m] for m in settings.goal if m in mine]
        if not goals:
            out.append(
                Decision(
                    variant,
                    "no goal metric",
                    f"{variant}: no goal metric is set for this "
                    "experiment in the dbt project (experiment_settings), so no decision is suggested.",
                )
            )
            continue
        withheld = next((r.withheld for r in goals if r.withheld), None)
        if withheld:
            out.append(Decision(variant, "not judged", f"{variant}: not judged: {withheld}."))
            continue
        wins = tuple(r.metric for r in goals if _winner(r, lower_is_better.get(r.metric, False)) > 0)
        losses = tuple(r.metric for r in goals if _winner(r, lower_is_better.get(r.metric, False)) < 0)
        failing_guardrails = [g for g in settings.guardrails if g.metric in mine and guardrail_fails(mine[g.metric], g)]
        failing = tuple(g.metric for g in failing_guardrails)
        if failing or losses:
            reasons = [
                f"guardrail {g.metric} is significantly worse by "
                f"{abs(mine[g.metric].comparison.relative_lift) * 100:.1f}%"
                f" (harm threshold {g.harm_threshold * 100:g}%)"
                for g in failing_guardrails
            ]
            reasons += [f"goal {m} is significantly worse" for m in losses]
            tail = f", although {', '.join(wins)} improved" if wins else ""
            out.append(
                Decision(
                    variant,
                    "roll back",
                    f"{variant}: roll back: " + "; ".join(reasons) + tail + ".",
                    wins,
                    losses,
                    failing,
                )
            )
        elif wins:
            out.append(
                Decision(
                    variant,
                    "ship",
                    f"{variant}: ship: goal {', '.join(wins)} significantly better and no guardrail fails.",
                    wins,
                    losses,
                    failing,
                )
            )
        elif status == "running" and planned_reached is not True:
            out.append(
                Decision(
                    variant,
                    "keep running",
                    f"{variant}: keep running: no goal metric is significant yet"
                    + (" and the planned sample size is not reached." if planned_reached is False else "."),
                )
            )
        else:
            out.append(
                Decision(
                    variant,
                    "no clear signal",
                    f"{variant}: no clear signal: no goal metric changed significantly and no guardrail fails.",
                )
            )
    return out
