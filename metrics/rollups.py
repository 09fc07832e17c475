"""Rollups: saved queries the build materializes into its warehouse with the engine's SQL.

Declared the dbt way: a saved query's `exports` with `export_as: table` (dbt's spec; `schema`
and `alias` name the table, defaulting to the `rollups` schema and the export's name), or
`config.meta.rollup: true` to keep one only for serving (table `rollups.<saved query name>`).
The table holds exactly the saved query's answer, computed by the same plan and renderer as
`/v1/query`, so it cannot drift from the metric definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
