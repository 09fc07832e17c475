"""The engine's exceptions, split by audience.

`UserError` subclasses describe something the caller can fix (a misspelt metric, a filter on
a dimension the metric cannot reach); they carry a stable `code` and, where it helps, the
nearest valid choices. `InternalError` means northstar itself is wrong or the warehouse is
unusable. No HTTP status lives here: `api/errors.py` maps classes to status codes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class MetricsError(Exception):
    """Base of every error raised by the engine."""

    code = "metrics_error"

    def __init__(self, message: str, *, internal: str | None = None, **details: Any) -> None:
        """Args:
        message: What the caller reads: never warehouse or library internals.
        internal: The underlying text (a DuckDB or sqlglot message) for the server log only.
        **details: Extra fields of the error body (field, suggestions, ...).
        """
        super().__init__(message)
        self.message = message
        self.internal = internal
        self.details = {k: v for k, v in details.items() if v is not None}


class UserError(MetricsError):
    """The request is wrong in a way the caller can fix."""

    code = "invalid_request"


class UnknownMetric(UserError):
    code = "unknown_metric"


class UnknownDimension(UserError):
    code = "unknown_dimension"


class AmbiguousDimension(UserError):
    code = "ambiguous_dimension"


class InvalidQuery(UserError):
    code = "invalid_query"


class InvalidFilter(UserError):
    code = "invalid_filter"


class UnsupportedFeature(UserError):
    """The project declares a dbt semantic-layer feature northstar cannot answer yet: the
    message names it."""

    code = "unsupported_feature"


class MetricUnavailable(UserError):
    """The metric cannot be served from this build: its SQL did not compile or the warehouse
    refused it when the build was checked (the reason is in the message)."""

    code = "metric_unavailable"


class UnknownSavedQuery(UserError):
    code = "unknown_saved_query"


class NotFound(UserError):
    code = "not_found"


class ResultTooLarge(UserError):
    """The answer would have more rows than the service allows in one result."""

    code = "result_too_large"


class QueryTimeout(MetricsError):
    """The warehouse took longer than the service allows; the query was stopped."""

    code = "query_timeout"


class QueryCancelled(MetricsError):
    """The caller cancelled the query (a cancel request, a closed connection); it was stopped."""

    code = "query_cancelled"


class InternalError(MetricsError):
    """northstar or its warehouse is broken; the caller cannot fix it."""

    code = "internal_error"


class WarehouseUnavailable(InternalError):
    code = "warehouse_unavailable"


def nearest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid names to a misspelt one, best first.

    >>> nearest("activ_users", ["active_users", "events", "sessions"])
    ['active_users']
    """
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=n, cutoff=0.6)
    if close:
        return close
    # A short name that is part of a qualified one ("country" -> "user__country").
    return [c for c in choices if name in c.split("__")][:n]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A sentence suggesting the nearest names, or an empty string."""
    close = nearest(name, choices)
    if not close:
        return ""
    return " Did you mean " + ", ".join(repr(c) for c in close) + "?"
