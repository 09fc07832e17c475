"""Superset's series limits over semantic.metrics: a query joined with its own top-N
(`JOIN (SELECT ... LIMIT n) AS series_limit ON ...`), and "group remaining as Others" over a
LEFT JOIN of that top-N. Each is answered as plain metric queries: the top-N first, then the
main query filtered to (or away from) the slices it returned, so every value is the governed
metric. The statements themselves are answered by the caller's `answer` (semantic_sql)."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from api.sql_endpoint.semantic_errors import _unsupported
from api.sql_endpoint.semantic_tables import SqlAnswer, _table_kind
from api.sql_endpoint.semantic_trees import conjuncts, literal_node, own, pg_name
from api.sql_endpoint.statements import SqlError
from metrics.engine import MetricsEngine
from metrics.sql.marts import cte_references

#: How the caller answers a statement (a top-N, a main query, the others).
Answer = Callable[[exp.Expression, MetricsEngine], SqlAnswer]


def resolve_series_limits(statement: exp.Expression, engine: MetricsEngine, answer: Answer) -> exp.Expression:
    """Superset's series limit: a query over semantic.metrics joined with its own top-N,

        SELECT ..., platform, SUM(sessions) FROM semantic.metrics
        JOIN (SELECT platform AS platform__, SUM(sessions) AS mme_inner__ FROM semantic.metrics
              WHERE ... GROUP BY platform ORDER BY mme_inner__ DESC LIMIT 2) AS series_limit
          ON platform = platform__ [AND country = country__] ...

    is two metric queries: the top-N is answered first, and the main query is then filtered to
    the slice values it returned (`platform IN (...)`, or one AND group per row for several
    columns), as an inner join on them would.

    A `LEFT [OUTER] JOIN` of the same top-N keeps every row of the main query: the top-N has one
    row per key, so the join changes no value, and the main query is answered unfiltered. With
    `WHERE series_limit.platform__ IS NOT NULL` it is the inner join again; with `... IS NULL`
    the main query is filtered to the slices outside the top-N (a NULL slice among them). Other
    reads of the top-N's columns (which a LEFT JOIN leaves NULL outside the top-N) are refused
    with the forms that are supported, but for the relabelling of answer_series_others. Other
    joins are left for the usual refusal."""
    ctes = cte_references(statement)

    def top_n_join(select: exp.Select) -> exp.Join | None:
        joins = select.args.get("joins") or []
        if len(joins) != 1 or select.args.get("laterals"):
            return None
        join = joins[0]
        subquery = join.this
        if (
            not isinstance(subquery, exp.Subquery)
            or not isinstance(subquery.this, exp.Select)
            or not _series_limit_join_kind(join)
            or join.args.get("using")
            or subquery.this.args.get("limit") is None
            or join.args.get("on") is None
            or not any(_table_kind(t, ctes) == "semantic" for t in subquery.find_all(exp.Table))
        ):
            return None
        return join

    if not any(top_n_join(s) for s in statement.find_all(exp.Select)):
        return statement
    statement = statement.copy()
    ctes = cte_references(statement)  # by node identity: the copy's own references
    for select in list(statement.find_all(exp.Select)):
        join = top_n_join(select)
        if join is None:
            continue
        subquery = join.this
        alias = subquery.alias_or_name.lower()
        top = subquery.this
        outputs = {pg_name(p).lower() for p in top.expressions}
        pairs: list[tuple[exp.Column, str]] = []
        for condition in conjuncts(join.args["on"]):
            if not isinstance(condition, exp.EQ):
                return statement  # not the series-limit form: refused as a join later
            sides = [condition.this, condition.expression]
            if not all(isinstance(c, exp.Column) for c in sides):
                return statement

            def of_top(column: exp.Column) -> bool:
                table = column.table.lower()
                return table == alias or (not table and column.name.lower() in outputs)

            inside = [c for c in sides if of_top(c)]
            if len(inside) != 1:
                return statement
            outside = next(c for c in sides if c is not inside[0])
            if inside[0].name.lower() not in outputs:
                raise SqlError("42703", f"column {alias}.{inside[0].name} does not exist")
            pairs.append((outside, inside[0].name.lower()))
        keeps = (
            "matches" if _series_limit_join_kind(join) == "INNER" else _left_join_reading(select, join, alias, outputs)
        )
        found = answer(top.copy(), engine)
        names = [c.name.lower() for c in found.columns]
        positions = [names.index(name) for _, name in pairs]
        # An inner join never matches a NULL key.
        keys = [tuple(row[i] for i in positions) for row in found.rows]
        keys = list(dict.fromkeys(k for k in keys if all(v is not None for v in k)))
        if not keys:
            condition: exp.Expression = exp.false()
        elif len(pairs) == 1:
            condition = exp.In(this=pairs[0][0].copy(), expressions=[literal_node(k[0]) for k in keys])
        else:
            condition = exp.or_(
                *[
                    exp.and_(
                        *[
                            exp.EQ(this=column.copy(), expression=literal_node(value))
                            for (column, _), value in zip(pairs, key)
                        ]
                    )
                    for key in keys
                ]
            )
        join.pop()
        if keeps == "matches":
            select.where(condition, copy=False)
        elif keeps == "others" and keys:
            # Outside the top-N: no match, which a NULL key never has.
            select.where(
                exp.or_(
                    exp.Not(this=exp.Paren(this=condition)),
                    *[exp.Is(this=column.copy(), expression=exp.Null()) for column, _ in pairs],
                ),
                copy=False,
            )
    return statement


def _series_limit_join_kind(join: exp.Join) -> str | None:
    """INNER for `[INNER] JOIN`, LEFT for `LEFT [OUTER] JOIN`, else None (not a series limit)."""
    side, kind = (join.side or "").upper(), (join.kind or "").upper()
    if not side and kind in ("", "INNER"):
        return "INNER"
    if side == "LEFT" and kind in ("", "OUTER"):
        return "LEFT"
    return None


def _left_join_reading(select: exp.Select, join: exp.Join, alias: str, outputs: set[str]) -> str:
    """What a LEFT-joined top-N keeps of the main query: "all" when its columns are not read,
    "matches" with `<alias>.<column> IS NOT NULL` in the WHERE (the inner join), "others" with
    `<alias>.<column> IS NULL` (the slices outside the top-N); those conditions are dropped
    here. Any other read of its columns, whose NULLs outside the top-N a metric query cannot
    produce, is refused."""
    where = select.args.get("where")
    conditions = conjuncts(where.this) if where else []
    kept_conjuncts = list(conditions)
    kinds: set[str] = set()
    for column in list(select.find_all(exp.Column)):
        table = column.table.lower()
        if not own(select, column) or column.find_ancestor(exp.Join) is join:
            continue
        if table != alias and (table or column.name.lower() not in outputs):
            continue
        test = column.parent
        if isinstance(test, exp.Is) and isinstance(test.expression, exp.Null):
            negated = bool(test.args.get("negate"))
            if isinstance(test.parent, exp.Not):
                test, negated = test.parent, not negated
            matched = [c for c in conditions if test is c or (isinstance(c, exp.Paren) and c.this is test)]
            if matched:
                kept_conjuncts = [c for c in kept_conjuncts if c is not matched[0]]
                kinds.add("matches" if negated else "others")
                continue
        raise _unsupported(
            f"{column.sql(dialect='postgres')} is NULL outside the top-N of a LEFT JOIN, which a metric query "
            "cannot produce; join the top-N with JOIN (or LEFT JOIN ... WHERE "
            f"{alias}.<column> IS [NOT] NULL) to keep only its slices (or only the others), relabel the others "
            f"with CASE WHEN {alias}.<column> IS NOT NULL THEN <column> ELSE '<label>' END in the select list "
            "and GROUP BY, or leave its columns unread to keep every slice."
        )
    if not kinds:
        return "all"
    if len(kinds) > 1:
        raise _unsupported(
            f"a query cannot keep both the top-N ({alias}.<column> IS NOT NULL) and the others "
            f"({alias}.<column> IS NULL): it would answer no rows."
        )
    if kept_conjuncts:
        where.set("this", exp.and_(*[c.copy() for c in kept_conjuncts]))
    else:
        where.pop()
    return kinds.pop()


def answer_series_others(statement: exp.Expression, engine: MetricsEngine, answer: Answer) -> SqlAnswer | None:
    """Superset's "group remaining as Others" (get_sqla_query with group_others_when_limit_reached):

        SELECT ..., CASE WHEN (series_limit.platform__ IS NOT NULL) THEN platform ELSE 'Others' END
          AS platform, SUM(m) FROM semantic.metrics LEFT OUTER JOIN (<top-N>) AS series_limit
          ON platform = platform__ ... GROUP BY CASE WHEN ... END, ...

    is the top-N's slices (the inner join) followed by one 'Others' row per remaining group:
    the governed metric over every slice outside the top-N (`WHERE series_limit.platform__ IS
    NULL`), not a sum of their values. None when the statement is not of this form."""
    if not isinstance(statement, exp.Select):
        return None
    joins = statement.args.get("joins") or []
    if len(joins) != 1 or _series_limit_join_kind(joins[0]) != "LEFT" or not isinstance(joins[0].this, exp.Subquery):
        return None
    alias = joins[0].this.alias_or_name.lower()

    def relabelled(case: exp.Expression) -> tuple[exp.Column, exp.Column, exp.Expression] | None:
        """(the top-N column tested, the slice kept, the label of the others) of a relabelling CASE."""
        ifs = case.args.get("ifs") or []
        if not isinstance(case, exp.Case) or case.this is not None or len(ifs) != 1:
            return None
        test, then, label = ifs[0].this, ifs[0].args.get("true"), case.args.get("default")
        while isinstance(test, exp.Paren):
            test = test.this
        negated = False
        if isinstance(test, exp.Not):
            test, negated = test.this, True
            while isinstance(test, exp.Paren):
                test = test.this
        if not (
            isinstance(test, exp.Is)
            and isinstance(test.expression, exp.Null)
            and bool(test.args.get("negate")) != negated
            and isinstance(test.this, exp.Column)
            and test.this.table.lower() == alias
            and isinstance(then, exp.Column)
            and isinstance(label, (exp.Literal, exp.Null))
        ):
            return None
        return test.this, then, label

    cases = [c for c in statement.find_all(exp.Case) if own(statement, c) and relabelled(c)]
    if not cases:
        return None
    if statement.args.get("order") or statement.args.get("offset"):
        raise _unsupported(
            "grouping the slices outside a series limit as one label cannot be combined with "
            "ORDER BY or OFFSET; order the rows in the client."
        )
    tested = next(relabelled(c)[0] for c in cases)
    top_n, others = statement.copy(), statement.copy()
    # The top-N's slices: each CASE is its slice, the join an inner one.
    for case in [c for c in top_n.find_all(exp.Case) if own(top_n, c) and relabelled(c)]:
        case.replace(relabelled(case)[1].copy())
    top_n.args["joins"][0].set("side", None)
    top_n.args["joins"][0].set("kind", None)
    # The others: each CASE is its label (out of GROUP BY), only the slices outside the top-N.
    group = others.args.get("group")
    if group is not None:
        kept = [g for g in group.expressions if not relabelled(g)]
        if kept:
            group.set("expressions", kept)
        else:
            group.pop()
    for case in [c for c in others.find_all(exp.Case) if own(others, c) and relabelled(c)]:
        case.replace(relabelled(case)[2].copy())
    others.where(exp.Is(this=tested.copy(), expression=exp.Null()), copy=False)
    first, rest = answer(top_n, engine), answer(others, engine)
    rows = first.rows + rest.rows
    limit = statement.args.get("limit")
    if limit is not None:
        rows = rows[: int(limit.expression.this)] if isinstance(limit.expression, exp.Literal) else rows
    return SqlAnswer(first.columns, rows)
