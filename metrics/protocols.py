"""What the code that takes "an engine" may ask of it.

Scorecards, notices, the HTTP routers, the SQL endpoint and the MCP tools are handed either a
`MetricsEngine` or, for a caller with a row-level policy, a `RestrictedEngine` (metrics/policy.py)
that sees the same engine through the policy. Both satisfy `Engine`; a function typed with it
uses nothing a restricted caller is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from metrics.engine import BuildInfo, CompiledQuery, DimensionInfo, MetricInfo, MetricsEngine, QueryResult
    from metrics.execution.client import ResultColumn, ResultSet
    from metrics.experiments import Experiments
    from metrics.policy import RestrictedEngine
    from metrics.query.plan import QueryPlan
    from metrics.query.request import MetricQuery
    from metrics.semantic.graph import SemanticGraph
    from metrics.semantic.manifest import SemanticManifest
    from metrics.semantic.model import SavedQuery
    from metrics.sql.marts import Condition, MartTable


class Engine(Protocol):
    """An engine of one build: its definitions, metric queries and mart reads."""

    # -- definitions (never data) --------------------------------------------------------

    @property
    def manifest(self) -> SemanticManifest: ...

    @property
    def graph(self) -> SemanticGraph: ...

    @property
    def build(self) -> BuildInfo: ...

    def catalog(self) -> dict[str, MetricInfo]: ...

    def metric(self, name: str) -> MetricInfo: ...

    def metric_names(self) -> list[str]: ...

    def dimensions(self) -> list[DimensionInfo]: ...

    def saved_queries(self) -> list[SavedQuery]: ...

    def saved_query(self, name: str) -> SavedQuery: ...

    # -- metric queries ------------------------------------------------------------------

    def plan(self, query: MetricQuery) -> QueryPlan: ...

    def compile(self, query: MetricQuery) -> CompiledQuery: ...

    def query(self, query: MetricQuery) -> QueryResult: ...

    @property
    def experiments(self) -> Experiments: ...

    # -- marts ---------------------------------------------------------------------------

    def mart_tables(self) -> dict[str, tuple[MartTable, tuple[ResultColumn, ...]]]: ...

    def read_mart(self, statement: Any) -> ResultSet: ...

    def mart_rows(
        self,
        table: str,
        columns: Sequence[str],
        where: Sequence[Condition] = (),
        order_by: Sequence[str] = (),
        distinct: bool = False,
    ) -> list[dict[str, Any]]: ...


if TYPE_CHECKING:
    # Checked by mypy, never run: both engines implement the protocol.
    def _implementations(engine: MetricsEngine, restricted: RestrictedEngine) -> tuple[Engine, Engine]:
        return engine, restricted
