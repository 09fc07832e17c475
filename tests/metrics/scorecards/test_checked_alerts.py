"""The daily check recomputed through the engine (what a caller under a row policy gets, since
the warehouse's check cannot be restricted) flags exactly the days the warehouse's check
(fct_metric_alerts) flagged, with the same bands, on the unrestricted sample warehouse."""

from __future__ import annotations

import pytest

from metrics.engine import MetricsEngine
from metrics.scorecards.alerts import alerts, checked_alerts


def test_checked_alerts_match_the_warehouse_check(built_warehouse):
    engine = MetricsEngine.open(built_warehouse.warehouse)
    try:
        stored = {(a.metric, a.date): a for a in alerts(engine)}
        checked = {(a.metric, a.date): a for a in checked_alerts(engine)}
    finally:
        engine.close()
    assert stored and checked.keys() == stored.keys()
    for key, a in stored.items():
        b = checked[key]
        assert (b.direction, b.adverse) == (a.direction, a.adverse), key
        assert (b.value, b.expected, b.lower_bound, b.upper_bound, b.score) == pytest.approx(
            (a.value, a.expected, a.lower_bound, a.upper_bound, a.score)
        ), key
