"""Shared pieces of the scorecard routes (quality, releases, launches, alerts)."""

from __future__ import annotations

from typing import Any


def iso(value: Any) -> str | None:
    return None if value is None else value.isoformat()
