"""Row-level policies: filters bound to a caller that every answer it gets must respect.

`RestrictedEngine` wraps a `MetricsEngine` for one caller:

- metric queries get the policy's filters added with AND, so no filter in a request can widen
  them; a metric that cannot be filtered by a policy field (incidents have no region) is
  refused rather than answered unrestricted;
- experiment readouts count only the users whose attributes pass the policy;
- mart reads (scorecards, the SQL endpoint's `marts.*`) see each mart through a condition: the
  policy on the mart's own column of that name, else on its users (`user_id`); a mart with
  neither is refused, except the reference marts that describe the product rather than its
  customers (releases, launches, experiments);
- anything else (raw SQL, the client) is refused: denial is the default, access is what has
  been shown to respect the policy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlglot import exp

from metrics.errors import AmbiguousDimension, InternalError, UnknownDimension, UserError
from metrics.query.request import Filter, MetricQuery
from metrics.sql.marts import MARTS_SCHEMA, Condition, MartTable, column_restriction, users_restriction

if TYPE_CHECKING:
    from metrics.engine import BuildInfo, CompiledQuery, DimensionInfo, MetricInfo, MetricsEngine, QueryResult
    from metrics.execution.client import ResultColumn, ResultSet
    from metrics.experiments import Experiments
    from metrics.query.plan import Planner, QueryPlan
    from metrics.semantic.graph import SemanticGraph
    from metrics.semantic.manifest import SemanticManifest
    from metrics.semantic.model import SavedQuery

_Answer = TypeVar("_Answer")


class PolicyDenied(UserError):
    """The caller's row-level policy does not allow this request."""

    code = "forbidden_by_policy"


@dataclass(frozen=True)
class RowPolicy:
    filters: tuple[Filter, ...]
    description: str

    def __bool__(self) -> bool:
        return bool(self.filters)


# Marts that describe the product (what shipped, launched or was tested, and when), not its
# customers (and the calendar of the time spine): every caller may read them whole.
REFERENCE_MARTS = frozenset({"dim_releases", "dim_launches", "dim_experiments", "metricflow_time_spine"})
USER_COLUMN = "user_id"


class RestrictedEngine:
    """A `MetricsEngine` seen through a row-level policy; an `Engine` (metrics/protocols.py)."""

    def __init__(self, engine: MetricsEngine, policy: RowPolicy) -> None:
        self._engine = engine
        self.policy = policy

    # -- definitions, never data: what a restricted caller may use unchanged ----------------

    @property
    def manifest(self) -> SemanticManifest:
        return self._engine.manifest

    @property
    def graph(self) -> SemanticGraph:
        return self._engine.graph

    @property
    def planner(self) -> Planner:
        """Plans from the definitions (which measures a metric reads); running a plan goes
        through `query`, under the policy."""
        return self._engine.planner

    @property
    def build(self) -> BuildInfo:
        return self._engine.build

    def catalog(self) -> dict[str, MetricInfo]:
        return self._engine.catalog()

    def metric(self, name: str) -> MetricInfo:
        return self._engine.metric(name)

    def metric_names(self) -> list[str]:
        return self._engine.metric_names()

    def dimensions(self) -> list[DimensionInfo]:
        return self._engine.dimensions()

    def saved_queries(self) -> list[SavedQuery]:
        return self._engine.saved_queries()

    def saved_query(self, name: str) -> SavedQuery:
        return self._engine.saved_query(name)

    # -- metric queries --------------------------------------------------------------------

    def restrict(self, query: MetricQuery) -> MetricQuery:
        return dataclasses.replace(query, where=query.where + self.policy.filters)

    def _guarded(self, method: Callable[[MetricQuery], _Answer], query: MetricQuery) -> _Answer:
        try:
            return method(self.restrict(query))
        except (UnknownDimension, AmbiguousDimension) as exc:
            field = exc.details.get("field")
            if field in {f.field for f in self.policy.filters}:
                raise PolicyDenied(
                    f"this token may only read rows where {self.policy.description}, and "
                    f"{', '.join(query.metrics)} cannot be filtered by {field!r}; ask for metrics that can.",
                    field=field,
                ) from None
            raise

    def plan(self, query: MetricQuery) -> QueryPlan:
        return self._guarded(self._engine.plan, query)

    def compile(self, query: MetricQuery) -> CompiledQuery:
        return self._guarded(self._engine.compile, query)

    def query(self, query: MetricQuery) -> QueryResult:
        return self._guarded(self._engine.query, query)

    @property
    def experiments(self) -> Experiments:
        """Experiments counted over the users the policy allows: its filters must be attributes
        of the user (region, plan, account...), since a readout counts users, not rows."""
        try:
            return self._engine.experiments.restricted(self.policy.filters)
        except (UnknownDimension, AmbiguousDimension) as exc:
            raise PolicyDenied(
                f"this token may only read rows where {self.policy.description}, and experiment readouts "
                f"count users, which cannot be filtered by {exc.details.get('field')!r}.",
                field=exc.details.get("field"),
            ) from None

    # -- marts ---------------------------------------------------------------------------

    def mart_tables(self) -> dict[str, tuple[MartTable, tuple[ResultColumn, ...]]]:
        """Every mart with the policy's condition attached (a mart the policy cannot restrict
        is listed as it is, and refused when read)."""
        return {
            name: (self._view(mart, columns)[0], columns)
            for name, (mart, columns) in self._engine.mart_tables().items()
        }

    def read_mart(self, statement: Any) -> ResultSet:
        """A client's SELECT over `marts.*`, each mart read through the policy."""
        views = {name: self._view(mart, columns) for name, (mart, columns) in self._engine.mart_tables().items()}
        for table in statement.find_all(exp.Table):
            if (table.db or "").lower() != MARTS_SCHEMA or not isinstance(table.this, exp.Identifier):
                continue  # CTEs; anything else is refused by the rewrite
            refusal = views.get(table.name if table.this.quoted else table.name.lower(), (None, None))[1]
            if refusal:
                raise PolicyDenied(refusal, table=table.name)
        return self._engine.read_mart(statement, {name: mart for name, (mart, _) in views.items()})

    def mart_rows(
        self,
        table: str,
        columns: Sequence[str],
        where: Sequence[Condition] = (),
        order_by: Sequence[str] = (),
        distinct: bool = False,
    ) -> list[dict[str, Any]]:
        entry = self._engine.mart_tables().get(table)
        if entry is None:  # the base engine names the missing mart
            return self._engine.mart_rows(table, columns, where, order_by, distinct)
        mart, refusal = self._view(*entry)
        if refusal:
            raise PolicyDenied(refusal, table=table)
        return self._engine.mart_rows(table, columns, where, order_by, distinct, mart=mart)

    def _view(self, mart: MartTable, columns: tuple[ResultColumn, ...]) -> tuple[MartTable, str | None]:
        """The mart as the policy lets it be read, or the reason it cannot be read."""
        if mart.name in REFERENCE_MARTS:
            return mart, None
        names = {c.name for c in columns}
        condition = column_restriction(self.policy.filters, names)
        if condition is None and USER_COLUMN in names:
            try:
                experiments = self.experiments  # resolves the policy on user attributes, or refuses
            except PolicyDenied as exc:
                return mart, exc.message
            population = experiments.population
            if population is None:  # `restricted` always sets one
                raise InternalError("restricted experiments without a population")
            condition = users_restriction(experiments.sql.population_sql(population), USER_COLUMN)
        if condition is None:
            fields = ", ".join(sorted({f.field.split("__")[-1] for f in self.policy.filters}))
            return mart, (
                f"this token may only read rows where {self.policy.description}; marts.{mart.name} has "
                f"neither a {fields} column nor a {USER_COLUMN} column to restrict it by, so it is "
                "not available to this token."
            )
        return dataclasses.replace(mart, restriction=condition), None

    # Anything else (raw SQL, the client, ...) is refused: denial is the default. Hidden from
    # the type checker, which then holds callers to the members above (the `Engine` protocol)
    # instead of letting `__getattr__` answer for any name.
    if not TYPE_CHECKING:

        def __getattr__(self, name: str):
            raise PolicyDenied(
                f"this token may only read rows where {self.policy.description}; "
                f"'{name}' cannot be restricted that way, so it is not available to this "
                "token; metric queries are."
            )
