"""Scorecards over the metric pack: quality KPIs against governed SLOs, release health,
launch scorecards and the daily anomaly alerts. Numbers come from semantic-layer metric
queries (`MetricQuery`) and from reads of dbt marts (`marts.py`); nothing here speaks HTTP."""
