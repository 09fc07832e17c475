"""Reads of the scorecard marts: SELECTs built as sqlglot trees, values as bind parameters,
run on the engine's read-only client."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from metrics.errors import WarehouseUnavailable

#: Schema of the dbt project's marts (as in metrics.sql.experiments.ExperimentTables).
MARTS_SCHEMA = "marts"


@dataclass(frozen=True)
class Condition:
    """`column op value`; `op` is one of =, >=, <, in."""

    column: str
    op: str
    value: Any


def select_sql(table: str, columns: Sequence[str], where: Sequence[Condition] = (),
               order_by: Sequence[str] = (), schema: str = MARTS_SCHEMA,
               dialect: str = "duckdb", distinct: bool = False) -> tuple[str, dict[str, Any]]:
    """A SELECT over one mart with bound values.

    >>> select_sql("dim_releases", ["platform", "app_version"], [Condition("platform", "=", "ios")],
    ...            ["app_version"])
    ('SELECT "platform", "app_version" FROM "marts"."dim_releases" WHERE "platform" = $p0 ORDER BY "app_version"', {'p0': 'ios'})
    """
    params: dict[str, Any] = {}

    def bind(value: Any) -> exp.Expression:
        name = f"p{len(params)}"
        params[name] = value
        return exp.Placeholder(this=name)

    query = exp.select(*(exp.column(c, quoted=True) for c in columns)).from_(
        exp.table_(table, db=schema, quoted=True))
    if distinct:
        query = query.distinct()
    for cond in where:
        column = exp.column(cond.column, quoted=True)
        if cond.op == "=":
            query = query.where(column.eq(bind(cond.value)))
        elif cond.op == ">=":
            query = query.where(exp.GTE(this=column, expression=bind(cond.value)))
        elif cond.op == "<":
            query = query.where(exp.LT(this=column, expression=bind(cond.value)))
        elif cond.op == "in":
            query = query.where(column.isin(*(bind(v) for v in cond.value)))
        else:
            raise ValueError(f"unsupported condition op {cond.op!r}")
    if order_by:
        query = query.order_by(*(exp.column(c, quoted=True) for c in order_by))
    return query.sql(dialect=dialect), params


def read_mart(engine, table: str, columns: Sequence[str], where: Sequence[Condition] = (),
              order_by: Sequence[str] = (), distinct: bool = False) -> list[dict[str, Any]]:
    """Rows of a mart as dicts keyed by column (inside metrics/ only; never cross to api/)."""
    sql, params = select_sql(table, columns, where, order_by, schema=engine.schema(MARTS_SCHEMA),
                             dialect=engine.client.dialect, distinct=distinct)
    try:
        rows = engine.client.query(sql, params).rows
    except Exception as exc:  # an older build without the scorecard marts
        raise WarehouseUnavailable(f"this warehouse has no {MARTS_SCHEMA}.{table} mart; rebuild it with "
                                   f"`northstar build` ({exc}).") from None
    return [dict(zip(columns, row)) for row in rows]
