"""Combining per-aggregate results into one row per group-by key by `UNION ALL` + `GROUP BY`.

The general way to put several aggregates side by side is a key list (`UNION` of every
aggregate's keys) left-joined to each aggregate on null-safe equality. PostgreSQL plans
`IS NOT DISTINCT FROM` joins as nested loops (it cannot hash or merge on them), which made
multi-metric queries at 10M events take tens of seconds. Stacking the aggregates instead
(each row carries its own columns, the others' are NULL) and grouping by the keys gives the
same rows with one hash aggregate: `GROUP BY` already treats NULL keys as equal, and every
aggregate holds at most one row per key, so `MAX` picks that row's value (or NULL, as the
left join did).
"""

from __future__ import annotations

from sqlglot import exp

# Each input aggregate is (alias, columns, adds_keys): an offset input (last period's value)
# must not add buckets of its own, only fill buckets others have.
Input = tuple[str, list[str], bool]


def merged_column(node: str, column: str) -> str:
    return f"{node}__{column}"


def stacked(inputs: list[Input], group_columns: list[str], spine: tuple[str, str] | None) -> list[tuple[str, str]]:
    """CTEs (name, sql) ending in `merged`: one row per key with every input's columns as
    `<alias>__<column>`. `spine` is (spine CTE sql, time column): buckets no input has are
    added with NULL values, as the key-list rendering does."""
    keys = ", ".join(group_columns)
    outputs = [merged_column(alias, c) for alias, columns, _ in inputs for c in columns]
    # A zero-row first branch that types every column from its source: later branches' bare
    # NULLs then take those types (PostgreSQL would otherwise resolve NULL-only columns of the
    # first branches as text and refuse to stack them on numbers).
    first, *_ = inputs
    typing = [f"{first[0]}.{c}" for c in group_columns] + [
        f"{alias}.{c} AS {merged_column(alias, c)}" for alias, columns, _ in inputs for c in columns
    ]
    branches = [
        f"SELECT {', '.join(typing)}, 0 AS adds_key FROM " + ", ".join(alias for alias, _, _ in inputs) + " WHERE 1 = 0"
    ]
    for alias, _columns, adds_key in inputs:
        values = [f"{alias}.{c}" if a == alias else "NULL" for a, cols, _ in inputs for c in cols]
        branches.append(
            f"SELECT {', '.join([f'{alias}.{c}' for c in group_columns] + values)}, {1 if adds_key else 0} FROM {alias}"
        )
    ctes = []
    if spine is not None:
        spine_sql, time_column = spine
        data_keys = " UNION ".join(f"SELECT {time_column} FROM {alias}" for alias, _, adds_key in inputs if adds_key)
        ctes.append(("data_keys", data_keys))
        ctes.append(("spine", spine_sql))
        nulls = ", ".join(["NULL"] * len(outputs))
        branches.append(
            f"SELECT {keys}, {nulls + ', ' if nulls else ''}1 FROM spine WHERE NOT spine.{time_column} IN "
            f"(SELECT {time_column} FROM data_keys WHERE NOT {time_column} IS NULL)"
        )
    picked = ", ".join([keys] + [f"MAX({c}) AS {c}" for c in outputs])
    ctes.append(
        (
            "merged",
            f"SELECT {picked} FROM ({' UNION ALL '.join(branches)}) AS stacked "
            f"GROUP BY {keys} HAVING MAX(adds_key) = 1",
        )
    )
    return ctes


def to_merged(tree: exp.Expr) -> exp.Expr:
    """A metric expression over `<alias>.<column>` rewritten to read `merged`."""

    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.table:
            return exp.column(merged_column(node.table, node.name), "merged")
        return node

    return tree.copy().transform(swap)
