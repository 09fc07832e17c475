"""Rollups: saved queries the build materializes into its warehouse with the engine's SQL.

Declared the dbt way: a saved query's `exports` with `export_as: table` (dbt's spec; `schema`
and `alias` name the table, defaulting to the `rollups` schema and the export's name), or
`config.meta.rollup: true` to keep one only for serving (table `rollups.<saved query name>`).
The table holds exactly the saved query's answer, computed by the same plan and renderer as
`/v1/query`, so it cannot drift from the metric definitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metrics.protocols import Engine

if TYPE_CHECKING:
    from metrics.query.request import MetricQuery
    from metrics.semantic.model import SavedQuery

DEFAULT_SCHEMA = "rollups"


@dataclass(frozen=True)
class Rollup:
    saved_query: str
    schema: str
    table: str
    exported: bool  # under a public name (an export), or for serving only (meta.rollup)


def declared_rollups(semantic_manifest: dict[str, Any], manifest: dict[str, Any] | None = None) -> list[Rollup]:
    """Every rollup the project declares: its saved queries' table exports (from the semantic
    manifest) and those with `config.meta.rollup: true` (from dbt's manifest, which keeps
    the config)."""
    rollups: list[Rollup] = []
    seen: set[tuple[str, str]] = set()

    def add(rollup: Rollup) -> None:
        key = (rollup.schema, rollup.table)
        if key in seen:
            raise ValueError(f"two rollups write {rollup.schema}.{rollup.table}; give one another alias.")
        seen.add(key)
        rollups.append(rollup)

    for saved in semantic_manifest.get("saved_queries") or []:
        for export in saved.get("exports") or []:
            config = export.get("config") or {}
            if str(config.get("export_as", "")).lower() != "table":
                continue
            add(Rollup(saved["name"], config.get("schema_name") or config.get("schema") or DEFAULT_SCHEMA,
                       config.get("alias") or export["name"], True))
    exported = {r.saved_query for r in rollups}
    for node in ((manifest or {}).get("saved_queries") or {}).values():
        meta = (node.get("config") or {}).get("meta") or node.get("meta") or {}
        if meta.get("rollup") is True and node["name"] not in exported:
            add(Rollup(node["name"], DEFAULT_SCHEMA, node["name"], False))
    return rollups


@dataclass(frozen=True)
class Route:
    """Which rollup answers a query (`table`, schema-qualified), or why none can."""

    table: str | None
    reasons: dict[str, str]

    def explain(self) -> dict[str, Any]:
        if self.table is not None:
            return {"answered_by": self.table}
        return {"answered_by": None, "why_not": self.reasons or {"": "the build has no rollups"}}


class RollupRouter:
    """Answers a query from a rollup of the served build only when that is exact.

    Exact here means the query is the rollup's saved query up to order: the same metrics and
    group-by items (in any order), the same filters, UTC buckets and ISO weeks, and no time
    range; its own order and limit are applied to the stored rows. A subset of the metrics is
    not taken (the stored keys are those where any of the saved query's metrics has data),
    nor a coarser grain or a range (see the README for what is left).
    """

    def __init__(self, engine: Engine, built: dict[str, dict[str, Any]]) -> None:
        self._rollups: list[tuple[str, str, SavedQuery]] = []
        for name, info in sorted(built.items()):
            try:
                saved = engine.saved_query(name)
            except Exception:  # a build's rollup whose saved query is gone from the manifest
                continue
            self._rollups.append((name, info["table"], saved))

    @classmethod
    def for_build(cls, engine: Engine, directory: Path) -> RollupRouter:
        info_file = directory / "build.json"
        built: dict[str, dict[str, Any]] = {}
        if info_file.exists():
            built = json.loads(info_file.read_text()).get("rollups") or {}
        return cls(engine, built)

    def route(self, query: MetricQuery) -> Route:
        from metrics.query.request import WeekStart

        reasons: dict[str, str] = {}
        for name, table, saved in self._rollups:
            why = None
            if set(query.metrics) != set(saved.metrics):
                why = f"its metrics are {sorted(saved.metrics)}"
            elif set(query.group_by) != set(saved.group_by):
                why = f"its group-by is {sorted(saved.group_by)}"
            elif query.where or set(query.where_sql) != set(saved.where):
                why = f"its filters are {list(saved.where)}"
            elif query.start is not None or query.end is not None:
                why = "it is not filtered by time; a time range is answered from raw"
            elif query.timezone is not None or query.week_start is not WeekStart.MONDAY:
                why = "its buckets are UTC days and ISO weeks"
            elif query.limit is not None and not query.order_by:
                why = "a limit without an order picks arbitrary rows"
            if why is None:
                return Route(table, {})
            reasons[table] = why
        return Route(None, reasons)
