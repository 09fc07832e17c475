"""One service behind both dbt Semantic Layer APIs, with `/v1/query`'s rules.

- Who: the bearer token (`api.auth.authenticate`, the same store, `--open` and fail-closed
  behaviour), which must hold `metrics:read`.
- What they see: queries go through `RestrictedEngine` when the token has a row-level policy.
- How much: the token's concurrency limit (`ConcurrencyLimiter`), the engine's timeout and
  result cap (`Limits`), the engine's result cache.
- On record: one audit line per query, with the interface (graphql, flight), the caller, the
  query, the outcome, the rows and the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from api.auth import AuditLog, Caller, ConcurrencyLimiter, Forbidden, authenticate
from api.dbt_sl.request import (
    GroupBy,
    Order,
    SemanticLayerRequest,
    arrow_schema,
    arrow_table,
)
from core.tokens import TokenStore
from metrics.engine import EngineProvider, MetricsEngine
from metrics.errors import MetricsError
from metrics.policy import RestrictedEngine

SCOPE = "metrics:read"


class SemanticLayerService:
    def __init__(
        self,
        engines: EngineProvider,
        tokens: TokenStore,
        limiter: ConcurrencyLimiter,
        audit: AuditLog,
        open_mode: bool = False,
    ) -> None:
        self.engines = engines
        self.tokens = tokens
        self.limiter = limiter
        self.audit = audit
        self.open_mode = open_mode

    @classmethod
    def of_app(cls, state: Any) -> SemanticLayerService:
        return cls(state.engines, state.tokens, state.limiter, state.audit, state.settings.open)

    def caller(self, presented: str | None) -> Caller:
        """The caller a token names; raises `Unauthorized`, `Forbidden` (no metrics:read) or
        `TokenStoreUnavailable`."""
        caller = authenticate(self.tokens, presented, self.open_mode)
        if caller.token is not None and not caller.token.allows(SCOPE):
            raise Forbidden(
                f"token {caller.token.name!r} has scopes {', '.join(caller.token.scopes)}; "
                f"the dbt Semantic Layer APIs need {SCOPE!r}.",
                needed_scope=SCOPE,
            )
        return caller

    @contextmanager
    def engine(self) -> Iterator[MetricsEngine]:
        """The current build's engine, for definitions (no policy applies to those)."""
        with self.engines.engine() as engine:
            yield engine

    @staticmethod
    def restricted(engine: MetricsEngine, caller: Caller) -> Any:
        policy = caller.policy
        return RestrictedEngine(engine, policy) if policy else engine

    def query(self, caller: Caller, request: SemanticLayerRequest, interface: str) -> pa.Table:
        """Run a query for a caller: limited, restricted, cached and audited as `/v1/query`."""
        return self._audited(
            caller,
            interface,
            "query",
            request.describe(),
            lambda engine: arrow_table(engine.query(request.to_query(engine))),
        )

    def dimension_values(self, caller: Caller, metrics: tuple[str, ...], group_by: str, interface: str) -> pa.Table:
        """The distinct values of one dimension over the given metrics' rows (the caller's
        policy applies: a restricted token sees the values of the rows it may read)."""

        def run(engine: Any) -> pa.Table:
            request = SemanticLayerRequest(metrics=metrics, group_by=(GroupBy(group_by),), order_by=(Order(group_by),))
            table = arrow_table(engine.query(request.to_query(engine)))
            return table.select([0])

        return self._audited(
            caller, interface, "dimension_values", {"metrics": list(metrics), "group_by": group_by}, run
        )

    def compile(self, caller: Caller, request: SemanticLayerRequest) -> str:
        """The SQL the query runs, values inlined (the caller's policy included)."""
        with self.engine() as engine:
            restricted = self.restricted(engine, caller)
            return restricted.compile(request.to_query(restricted)).inline_sql

    def schema(self, caller: Caller, request: SemanticLayerRequest) -> pa.Schema:
        """The Arrow schema the query answers, without running it."""
        with self.engine() as engine:
            query = request.to_query(engine)
            if caller.policy:
                query = RestrictedEngine(engine, caller.policy).restrict(query)
            return arrow_schema(engine.describe(query))

    def described(self, caller: Caller, interface: str, what: dict[str, Any], run: Callable[[], Any]) -> Any:
        """Answer a definitions or catalog call (metrics, dimensions, GetTables, ...) with one
        audit line, as `/v1/metrics` has; no concurrency slot (nothing runs in the warehouse)."""
        started = time.perf_counter()
        outcome, rows, code = "error", None, None
        try:
            answer = run()
            outcome, rows = "ok", getattr(answer, "num_rows", None)
            return answer
        except MetricsError as exc:
            code = exc.code
            raise
        finally:
            self._write(caller, interface, "metadata", what, outcome, code, rows, started)

    def _audited(self, caller: Caller, interface: str, kind: str, described: dict[str, Any], run) -> pa.Table:
        started = time.perf_counter()
        outcome, rows, code = "error", None, None
        slot = self.limiter.acquire(caller)
        try:
            with self.engine() as engine:
                table = run(self.restricted(engine, caller))
            outcome, rows = "ok", table.num_rows
            return table
        except MetricsError as exc:
            code = exc.code
            raise
        finally:
            self.limiter.release(slot)
            self._write(caller, interface, kind, described, outcome, code, rows, started)

    def _write(
        self,
        caller: Caller,
        interface: str,
        kind: str,
        body: dict[str, Any],
        outcome: str,
        code: str | None,
        rows: int | None,
        started: float,
    ) -> None:
        self.audit.write(
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            interface=interface,
            caller=caller.name,
            token_id=caller.token.id if caller.token else None,
            kind=kind,
            body=body,
            outcome=outcome,
            code=code,
            rows=rows,
            ms=round((time.perf_counter() - started) * 1000, 3),
        )
