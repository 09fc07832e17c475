"""Shared pieces of the scorecard routes (quality, releases, launches, alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.exceptions import RequestValidationError

from metrics.errors import InvalidQuery


@contextmanager
def bad_parameters_as_422() -> Iterator[None]:
    """A query parameter the engine rejects (unknown platform, metric, period) is an
    unprocessable request: 422 with the engine's message, which names the valid choices."""
    try:
        yield
    except InvalidQuery as exc:
        field = exc.details.get("field") or ""
        raise RequestValidationError([{"loc": ("query", field), "msg": exc.message, "type": "value_error",
                                       "suggestions": exc.details.get("suggestions")}]) from None


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
