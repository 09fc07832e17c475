"""Tool descriptions, written for the model that reads them: when to use each tool, the filter
syntax with an example, and the limits. `{max_rows}` is the service's row cap."""

from __future__ import annotations

WHERE_SYNTAX = """\
`where` is one SQL-like condition over the semantic layer, never raw columns:
  {{ Dimension('user__country') }} = 'DE'
  {{ Dimension('platform') }} in ('ios', 'android') and {{ Dimension('plan') }} != 'free'
  {{ TimeDimension('metric_time', 'day') }} >= '2026-03-01'
  {{ Entity('user') }} is not null
Dates are 'yyyy-mm-dd'. Allowed: comparisons, and/or/not, in, is null, between, like."""

LIST_METRICS = """\
List the governed metrics (name, type, label, description, the dimensions each can be sliced by, \
its time grains and owner). Call this first when a question mentions a business number, to find \
the metric's exact name; pass `search` (a substring, or a list of substrings) to narrow the list \
by name, label or description."""

LIST_SAVED_QUERIES = """\
List the saved queries of the dbt project (name, description, metrics, group_by, where): vetted \
questions an analyst already wrote down. Prefer one when it matches the question; run it by \
passing its metrics, group_by and where to query_metrics. `search` filters by name, label or \
description."""

GET_DIMENSIONS = """\
The dimensions every metric in `metrics` can be grouped or filtered by: categorical dimensions \
(type "dimension", e.g. `user__country`) and time dimensions (type "time_dimension", with their \
granularities; `metric_time` is each metric's own time). Use the names exactly as listed in \
query_metrics' group_by and in `where`. `search` filters by name."""

GET_ENTITIES = """\
The entities (join keys such as `user`) every metric in `metrics` can be grouped by, for \
group_by items of type "entity" and {{ Entity('name') }} in filters. `search` filters by name."""

GET_DIMENSION_VALUES = """\
The distinct values of one dimension (e.g. `user__country`), optionally as seen by `metrics`. \
Use it before writing a `where` filter, to spell values exactly as stored. Returns at most \
`limit` values (default 100); `truncated: true` means there are more: raise the limit or name a \
metric to narrow them."""

QUERY_METRICS = """\
Compute metrics from the governed semantic layer; the answer is the same as the HTTP API's \
/v1/query. Find names first with list_metrics and get_dimensions.

- metrics: metric names, e.g. ["active_users"].
- group_by: items like {{"name": "metric_time", "type": "time_dimension", "grain": "week"}} or \
{{"name": "user__country", "type": "dimension"}}; plain names ("metric_time__week", "country") work too.
- order_by: items like {{"name": "active_users", "descending": true}}; an ordered dimension must \
also be in group_by. For "latest"/"top N" questions use order_by with a limit rather than a date filter.
- where: {where_syntax}
- start / end: optional metric_time range, start inclusive, end exclusive ('yyyy-mm-dd').
- limit: at most this many rows.

The answer holds `columns`, `rows` (lists in column order), `row_count` and `meta` (the build, \
whether its dbt tests passed, the newest data). At most {max_rows} rows are returned: when \
`truncated` is true, narrow the query (a filter, a coarser grain, fewer group_by items, or \
order_by with a limit) rather than asking again. Your token may only see some rows (a row \
policy): answers are already restricted to them."""

GET_METRICS_COMPILED_SQL = """\
The SQL query_metrics would run for the same arguments, without running it: for explaining how \
a number is computed or reusing it in a SQL tool. Takes the same arguments as query_metrics."""

EXPLAIN_QUERY = """\
Explain how northstar would answer a query_metrics request, without running it: the semantic \
models and tables read, the joins and their fan-out safety, how each group_by name resolved, the \
filters, how inputs combine, the null policy, and the SQL. Use it when a user asks why a number \
is what it is, or before a costly query."""

GET_EXPERIMENT_READOUT = """\
The readout of an A/B experiment: per metric and variant the lift over control with its \
confidence interval, p-value, chance to win, a verdict, and health checks (sample ratio mismatch: \
`srm_warning`). `experiment_id` as the experiments catalog names it (an unknown id is an error \
listing the valid ones). `metrics`: experiment metrics (default: conversion, revenue_per_user, \
sessions_per_user, crashed); `group_by`: user slices (platform, country, plan). Needs a token \
with the experiments:read scope."""

GET_QUALITY_SCORECARD = """\
The product-quality scorecard: each quality KPI (crash-free user rate, errors per 1k events, \
incidents, MTTR, tickets per 1k active users, NPS, CSAT) per period with the previous period, \
the change, and its status against the SLO governed in the dbt project (ok, warn, breach). \
`period`: day, week (default) or month; `platform` scopes the platform KPIs. Use it for "how is \
quality / are we within SLO" questions."""

LIST_ALERTS = """\
Anomaly alerts of the daily check: days a metric fell outside its expected band (the median of \
the same weekday over the previous weeks, with a robust width). Each alert has the value, the \
expected value, the band, the direction (above/below), a score and `adverse` (worse in the \
metric's governed direction). Filter by `metric`, `since` and `until` ('yyyy-mm-dd'); at most \
`limit` alerts (newest first, default 50)."""
