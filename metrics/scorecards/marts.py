"""Reads of the scorecard marts, through the engine (which applies a caller's row policy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from metrics.protocols import Engine
from metrics.sql.marts import Condition

__all__ = ["Condition", "read_mart"]


def read_mart(
    engine: Engine,
    table: str,
    columns: Sequence[str],
    where: Sequence[Condition] = (),
    order_by: Sequence[str] = (),
    distinct: bool = False,
) -> list[dict[str, Any]]:
    """Rows of a mart as dicts keyed by column (inside metrics/ only; never cross to api/)."""
    return engine.mart_rows(table, columns, where, order_by, distinct)
