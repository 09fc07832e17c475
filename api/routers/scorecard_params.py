"""Shared pieces of the scorecard routes (quality, releases, launches, alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def bad_parameters_as_422() -> Iterator[None]:
    """A query parameter the engine rejects (unknown platform, metric, period, an inverted
    range) is an unprocessable request. Every `UserError` is already 422 with its own code, the
    field and the valid choices (`api/errors.py`), the same as on /v1/query; this block only
    marks where a route's parameters reach the engine."""
    yield


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
