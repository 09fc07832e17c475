"""dbt-style filter templates (`{{ Dimension('user__country') }} = 'US'`) as checked
expression trees.

The template is never pasted into SQL: its `Dimension`/`TimeDimension`/`Entity`/`Metric` calls are
replaced by placeholder identifiers, the result is parsed by sqlglot, every node is checked
against a small allow-list (comparisons, boolean logic, IN, IS NULL, BETWEEN, LIKE, literals),
and each placeholder is then swapped for the resolved column expression.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp

from metrics.errors import InvalidFilter

_CALL = re.compile(
    r"\{\{\s*((?:Dimension|TimeDimension|Entity|Metric)\((?:[^()'\"]|'[^']*'|\"[^\"]*\")*\))"
    r"(?:\s*\.\s*grain\(\s*(['\"])([^'\"]+)\2\s*\))?\s*\}\}"
)

# `{{ Metric('revenue', group_by=['user']) }}`: a metric's value per entity, as MetricFlow reads it.
_METRIC_CALL = re.compile(r"\{\{\s*Metric\(\s*(['\"])([^'\"]+)\1\s*,\s*(?:group_by\s*=\s*)?\[([^\]]*)\]\s*\)\s*\}\}")
_QUOTED = re.compile(r"\s*(['\"])([^'\"]+)\1\s*")

_ALLOWED = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.LT,
    exp.LTE,
    exp.GT,
    exp.GTE,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.In,
    exp.Is,
    exp.Between,
    exp.Like,
    exp.ILike,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Neg,
    exp.Tuple,
    exp.Column,
    exp.Identifier,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.Lower,
    exp.Upper,
    exp.Coalesce,
    exp.Var,
)


@dataclass(frozen=True)
class MetricReference:
    """A metric in a filter, evaluated per combination of the entities in `group_by`."""

    metric: str
    group_by: tuple[str, ...]


@dataclass(frozen=True)
class ParsedFilter:
    """A filter template as an expression whose columns are named `__ref_N` (dimensions,
    entities, time dimensions) and `__metric_N` (metrics per entity)."""

    tree: exp.Expr
    references: tuple[str, ...]
    metrics: tuple[MetricReference, ...] = ()


@lru_cache(maxsize=1024)
def parse_filter_template(template: str, dialect: str = "duckdb") -> ParsedFilter:
    """Parse one dbt `where` template.

    >>> parse_filter_template("{{ Dimension('user__country') }} = 'US'").references
    ('user__country',)
    """
    references: list[str] = []
    metrics: list[MetricReference] = []

    def replace_metric(match: re.Match[str]) -> str:
        names = [part for part in match.group(3).split(",") if part.strip()]
        group_by = []
        for part in names:
            quoted = _QUOTED.fullmatch(part)
            if quoted is None:
                raise InvalidFilter(
                    f"cannot read the group_by list of {match.group(0)!r}: "
                    "write entity names as quoted strings, e.g. group_by=['user']."
                )
            group_by.append(quoted.group(2))
        if not group_by:
            raise InvalidFilter(
                f"{match.group(0)!r} needs the entities to compute the metric by, "
                "e.g. {{ Metric('revenue', group_by=['user']) }}."
            )
        metrics.append(MetricReference(match.group(2), tuple(group_by)))
        return f"__metric_{len(metrics) - 1}"

    def replace(match: re.Match[str]) -> str:
        kind, name, grain = _call_parts(match.group(1), template)
        grain = match.group(3) or grain
        if kind == "Metric":
            raise InvalidFilter(
                f"cannot read {match.group(0)!r}: a metric in a filter names the entities "
                "it is computed by, e.g. {{ Metric('revenue', group_by=['user']) }}."
            )
        reference = f"{name}__{grain.lower()}" if grain else name
        references.append(reference)
        return f"__ref_{len(references) - 1}"

    text = _CALL.sub(replace, _METRIC_CALL.sub(replace_metric, template))
    if "{{" in text or "{%" in text:
        raise InvalidFilter(
            f"cannot read filter {template!r}: use {{{{ Dimension('entity__name') }}}}, "
            "{{ TimeDimension('metric_time', 'day') }} or {{ Entity('name') }} for columns."
        )
    try:
        tree = sqlglot.parse_one(text, read=dialect)
    except sqlglot.errors.ParseError as exc:
        raise InvalidFilter(
            f"cannot parse filter {template!r}: it is incomplete or malformed (a comparison "
            "without a value, an unclosed quote or parenthesis?).",
            internal=str(exc),
        ) from None
    for node in tree.walk():
        if not isinstance(node, _ALLOWED):
            raise InvalidFilter(
                f"filter {template!r} uses {type(node).__name__}, which filters may not contain; "
                "use comparisons, AND/OR/NOT, IN, IS NULL, BETWEEN and LIKE over dimensions and literals."
            )
        if isinstance(node, exp.Column) and not node.name.startswith(("__ref_", "__metric_")):
            raise InvalidFilter(
                f"filter {template!r} names the column {node.sql()!r} directly; wrap it as "
                f"{{{{ Dimension('{node.name}') }}}} so it is checked against the semantic layer."
            )
    return ParsedFilter(tree, tuple(references), tuple(metrics))


def _call_parts(call: str, template: str) -> tuple[str, str, str | None]:
    """`Dimension('host__tier', entity_path=['listing'])` -> ("Dimension", "listing__host__tier", None);
    `TimeDimension('metric_time', 'week')` -> (..., "metric_time", "week"). The call is only
    parsed (Python syntax tree), never evaluated; only string arguments are accepted."""
    try:
        # Names are read as written: a backslash is a character, never an escape.
        node = ast.parse(call.replace("\\", "\\\\"), mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
        raise InvalidFilter(f"cannot read {call!r} in filter {template!r}.")

    def text(arg: ast.expr) -> str:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        raise InvalidFilter(f"cannot read {call!r} in filter {template!r}: arguments are quoted names.")

    def names(arg: ast.expr) -> list[str]:
        if isinstance(arg, (ast.List, ast.Tuple)):
            return [text(e) for e in arg.elts]
        raise InvalidFilter(f"cannot read {call!r} in filter {template!r}: entity_path is a list of entity names.")

    kind = node.func.id
    if not node.args:
        raise InvalidFilter(f"cannot read {call!r} in filter {template!r}: it names no column.")
    name = text(node.args[0])
    grain = None
    path: list[str] = []
    for arg in node.args[1:]:
        if isinstance(arg, (ast.List, ast.Tuple)):
            path = names(arg)
        else:
            grain = text(arg)
    for keyword in node.keywords:
        if keyword.arg == "entity_path":
            path = names(keyword.value)
        elif keyword.arg in ("time_granularity_name", "time_granularity", "grain"):
            grain = text(keyword.value)
        else:
            raise InvalidFilter(
                f"filter {template!r}: {kind}(..., {keyword.arg}=...) is not supported; "
                "entity_path and the time granularity are."
            )
    return kind, "__".join([*path, name]), grain
