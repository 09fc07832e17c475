"""Readouts and health of every experiment as rows, for the warehouse.

Each build computes them with the engine (the same code as `GET /v1/experiments/{id}/readout`
and `/health`, default options) and stores them, so that BI tools read decisions from the
`marts` tables `fct_experiment_results` and `fct_experiment_health` (dbt models over these rows,
with contracts and tests). One results row per experiment, variant, metric and slice: the
unsliced readout (`slice_key` 'all') and, per user attribute in the settings'
`readout_slices`, one row per value of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metrics.errors import MetricsError
from metrics.experiment_design import experiment_health
from metrics.experiments import Experiments, ReadoutOptions, build_readout

ALL_SLICES = "all"

# (column, type): types every supported warehouse spells the same way.
RESULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("experiment_result_key", "varchar"),
    ("experiment_id", "varchar"),
    ("control_variant", "varchar"),
    ("variant", "varchar"),
    ("metric", "varchar"),
    ("role", "varchar"),
    ("slice_key", "varchar"),
    ("slice_dimension", "varchar"),
    ("slice_value", "varchar"),
    ("control_users", "bigint"),
    ("variant_users", "bigint"),
    ("control_mean", "double precision"),
    ("variant_mean", "double precision"),
    ("absolute_lift", "double precision"),
    ("relative_lift", "double precision"),
    ("ci_low", "double precision"),
    ("ci_high", "double precision"),
    ("p_value", "double precision"),
    ("adjusted_p_value", "double precision"),
    ("chance_to_win", "double precision"),
    ("cuped_relative_lift", "double precision"),
    ("cuped_ci_low", "double precision"),
    ("cuped_ci_high", "double precision"),
    ("cuped_p_value", "double precision"),
    ("verdict", "varchar"),
    ("flags", "varchar"),
    ("decision", "varchar"),
    ("build_id", "varchar"),
)

HEALTH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("experiment_id", "varchar"),
    ("status", "varchar"),
    ("users", "bigint"),
    ("srm_p_value", "double precision"),
    ("srm_warning", "boolean"),
    ("multiple_exposure_users", "bigint"),
    ("multiple_exposure_share", "double precision"),
    ("multiple_exposure_warning", "boolean"),
    ("assigned_before_start", "bigint"),
    ("assigned_after_end", "bigint"),
    ("out_of_window_warning", "boolean"),
    ("imbalanced_days", "bigint"),
    ("planned_users_per_variant", "bigint"),
    ("smallest_variant_users", "bigint"),
    ("planned_sample_reached", "boolean"),
    ("warnings", "varchar"),
    ("build_id", "varchar"),
)


@dataclass(frozen=True)
class ExperimentTablesRows:
    results: list[tuple[Any, ...]]
    health: list[tuple[Any, ...]]
    problems: list[str]  # experiments that could not be read out, and why


def readout_metrics(experiments: Experiments, experiment_id: str) -> tuple[str, ...]:
    """The metrics a build reads out: the experiment's goal, secondary and guardrail metrics,
    or every experiment metric when it has none."""
    settings = experiments.settings(experiment_id)
    if settings.metrics:
        return settings.metrics
    return tuple(dict.fromkeys(m.name for m in experiments.metrics().values()))


def slice_key(slice_values: dict[str, Any]) -> str:
    if not slice_values:
        return ALL_SLICES
    return ",".join(f"{k}={'(none)' if v is None else v}" for k, v in slice_values.items())


def experiment_table_rows(experiments: Experiments) -> ExperimentTablesRows:
    results: list[tuple[Any, ...]] = []
    health: list[tuple[Any, ...]] = []
    problems: list[str] = []
    build_id = experiments.engine.build.build_id
    options = ReadoutOptions()
    for experiment in experiments.experiments():
        experiment_id = experiment.experiment_id
        try:
            settings = experiments.settings(experiment_id)
            h = experiment_health(experiments, experiment_id, settings)
            health.append(
                (
                    experiment_id,
                    h.status,
                    h.users,
                    h.srm_p_value,
                    h.srm_warning,
                    h.multiple_exposure_users,
                    h.multiple_exposure_share,
                    h.multiple_exposure_warning,
                    h.assigned_before_start,
                    h.assigned_after_end,
                    h.out_of_window_warning,
                    len(h.imbalanced_days),
                    h.planned_users_per_variant,
                    h.smallest_variant_users,
                    h.planned_sample_reached,
                    "; ".join(h.warnings) or None,
                    build_id,
                )
            )
            metrics = readout_metrics(experiments, experiment_id)
            readouts = [build_readout(experiments, experiment_id, metrics, (), options)]
            for dimension in settings.readout_slices:
                readouts.append(build_readout(experiments, experiment_id, metrics, (dimension,), options))
        except MetricsError as exc:
            problems.append(f"{experiment_id}: {exc.message}")
            continue
        decisions = {d.variant: d.decision for d in readouts[0].decisions}
        for readout in readouts:
            for row in readout.rows:
                c, cuped = row.comparison, row.cuped
                key = slice_key(row.slice)
                dimension, value = next(iter(row.slice.items()), (None, None))
                results.append(
                    (
                        f"{experiment_id}|{row.variant}|{row.metric}|{key}",
                        experiment_id,
                        experiment.control_variant,
                        row.variant,
                        row.metric,
                        row.role,
                        key,
                        dimension,
                        None if value is None else str(value),
                        c.control_users,
                        c.variant_users,
                        c.control_mean,
                        c.variant_mean,
                        c.absolute_lift,
                        c.relative_lift,
                        c.ci_low,
                        c.ci_high,
                        c.p_value,
                        row.slice_adjusted_p_value if row.slice else row.adjusted_p_value,
                        c.chance_to_win,
                        cuped.relative_lift if cuped else None,
                        cuped.ci_low if cuped else None,
                        cuped.ci_high if cuped else None,
                        cuped.p_value if cuped else None,
                        row.verdict,
                        ",".join(row.flags) or None,
                        None if row.slice else decisions.get(row.variant),
                        build_id,
                    )
                )
    return ExperimentTablesRows(results, health, problems)
