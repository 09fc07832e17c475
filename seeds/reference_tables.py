"""The reference tables of the synthetic data: releases, launches, experiments and incidents,
as the story in seeds.story declares them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from seeds import landing as L
from seeds.knobs import DAY_US, HOUR_US
from seeds.story import (
    BASE_FEATURES,
    CONTROL_VARIANT,
    EXPERIMENTS,
    INCIDENT_LAUNCH_ID,
    INCIDENT_LAUNCH_INCIDENTS,
    LAUNCH_HOUR,
    LAUNCHES,
    RELEASE_HOUR,
    Timeline,
)

# ===================================================== releases, launches, ...


def _releases_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """Mobile releases; web is continuously deployed and has no versions."""
    plat, ver, at = [], [], []
    for platform in ("ios", "android"):
        for version, day in tl.releases[platform]:
            plat.append(platform)
            ver.append(version)
            at.append(epoch_us + day * DAY_US + RELEASE_HOUR * HOUR_US)
    return L.table(
        "releases",
        {
            "platform": pa.array(plat, pa.string()),
            "app_version": pa.array(ver, pa.string()),
            "released_at": L.timestamps(np.array(at)),
        },
    )


def _launches_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """The story's feature launches."""
    return L.table(
        "launches",
        {
            "launch_id": pa.array([s.launch_id for s in LAUNCHES], pa.string()),
            "feature_key": pa.array([s.feature_key for s in LAUNCHES], pa.string()),
            "launch_name": pa.array([s.launch_name for s in LAUNCHES], pa.string()),
            "tier": pa.array([s.tier for s in LAUNCHES], pa.string()),
            "owner_team": pa.array([s.owner_team for s in LAUNCHES], pa.string()),
            "launched_at": L.timestamps(
                np.array([epoch_us + tl.launch_days[s.launch_id] * DAY_US + LAUNCH_HOUR * HOUR_US for s in LAUNCHES])
            ),
        },
    )


def _experiments_table(tl: Timeline, epoch_us: int) -> pa.Table:
    """Experiments start and end at midnight UTC; a running one has no end."""
    ends = [tl.experiment_days[s.experiment_id][1] for s in EXPERIMENTS]
    return L.table(
        "experiments",
        {
            "experiment_id": pa.array([s.experiment_id for s in EXPERIMENTS], pa.string()),
            "experiment_name": pa.array([s.experiment_name for s in EXPERIMENTS], pa.string()),
            "feature_key": pa.array([s.feature_key for s in EXPERIMENTS], pa.string()),
            "hypothesis": pa.array([s.hypothesis for s in EXPERIMENTS], pa.string()),
            "control_variant": pa.array([CONTROL_VARIANT] * len(EXPERIMENTS), pa.string()),
            "started_at": L.timestamps(
                np.array([epoch_us + tl.experiment_days[s.experiment_id][0] * DAY_US for s in EXPERIMENTS])
            ),
            "ended_at": L.timestamps(
                np.array([epoch_us + (e or 0) * DAY_US for e in ends]), valid=np.array([e is not None for e in ends])
            ),
        },
    )


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
    return L.table(
        "incidents",
        {
            "incident_id": pa.array([f"inc_{i:04d}" for i in range(1, len(order) + 1)], pa.string()),
            "severity": pa.array([sev[i] for i in order], pa.string()),
            "opened_at": L.timestamps(opened_a[order]),
            "resolved_at": L.timestamps(resolved[order], valid=~open_[order]),
            "feature_key": pa.array([feature[i] for i in order], pa.string()),
            "launch_id": pa.array([launch[i] for i in order], pa.string()),
        },
    )
