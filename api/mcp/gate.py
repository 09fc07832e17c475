"""Who may call a tool, with which engine, and what is written down: the HTTP API's rules for MCP.

Every tool call goes through `Gate.call`: the caller (a bearer token checked by the HTTP
guard, or the stdio token from the environment, re-checked on every call so a revoked token
stops working at once), the tool's scope, the token's concurrency limit, the engine of the
current build seen through the token's row policy, one audit line (`interface: "mcp"`), and
engine errors turned into tool errors whose text names the problem and the nearest valid
choices.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError

from api.auth import AuditLog, Caller, ConcurrencyLimiter, Forbidden, Unauthorized, authenticate
from core.tokens import TokenStore
from metrics.engine import EngineProvider
from metrics.errors import MetricsError, UserError
from metrics.policy import RestrictedEngine

T = TypeVar("T")

#: Where the HTTP guard leaves the authenticated caller (the request's `state`).
CALLER_KEY = "caller"


class ToolRefused(Exception):
    """A tool call the gate answers with an error for the model (carries the message)."""


@dataclass
class Gate:
    tokens: TokenStore
    provider: EngineProvider
    limiter: ConcurrencyLimiter
    audit: AuditLog
    open_mode: bool = False
    stdio_token: str | None = None  # the stdio transport's token (NORTHSTAR_TOKEN)
    max_rows: int = 200

    def caller(self, request: Any | None) -> Caller:
        """The caller of a tool call: from the HTTP request the guard admitted, else stdio's token."""
        if request is not None:
            caller = request.scope.get("state", {}).get(CALLER_KEY)
            if caller is None:  # the guard always sets it; a request that bypassed it gets nothing
                raise Unauthorized("this MCP request carries no authenticated caller.")
            return caller
        caller = authenticate(self.tokens, self.stdio_token, self.open_mode)
        return caller

    def call(
        self,
        request: Any | None,
        tool: str,
        arguments: dict[str, Any],
        work: Callable[[Any, Any], T],
        scope: str = "metrics:read",
    ) -> T:
        """Run `work(engine, definitions)` for one tool call: `engine` is what the caller may
        read (its row policy applied), `definitions` the build's unrestricted engine for the
        catalog (definitions, never rows)."""
        started = time.perf_counter()
        caller: Caller | None = None
        outcome, rows = "ok", None
        try:
            caller = self.caller(request)
            if caller.token is not None and not caller.token.allows(scope):
                raise Forbidden(
                    f"token {caller.token.name!r} has scopes {', '.join(caller.token.scopes)}; "
                    f"the tool {tool!r} needs {scope!r}.",
                    needed_scope=scope,
                )
            slot = self.limiter.acquire(caller)
            try:
                with self.provider.engine() as engine:
                    policy = caller.policy
                    answer = work(RestrictedEngine(engine, policy) if policy else engine, engine)
            finally:
                self.limiter.release(slot)
            if isinstance(answer, dict) and isinstance(answer.get("rows"), list):
                rows = len(answer["rows"])
            return answer
        except MetricsError as exc:
            outcome = exc.code
            raise ToolRefused(_describe(exc)) from None
        except RequestValidationError as exc:  # a router function's own parameter check
            outcome = "invalid_request"
            raise ToolRefused("; ".join(str(e.get("msg")) for e in exc.errors())) from None
        finally:
            self.audit.write(
                at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                interface="mcp",
                transport="http" if request is not None else "stdio",
                caller=caller.name if caller else None,
                token_id=caller.token.id if caller and caller.token else None,
                tool=tool,
                arguments=arguments,
                status=outcome,
                ms=round((time.perf_counter() - started) * 1000, 3),
                rows=rows,
            )


def _describe(exc: MetricsError) -> str:
    """The message a model reads: the code, the problem, and the valid choices when known.

    >>> from metrics.errors import UnknownMetric
    >>> _describe(UnknownMetric("unknown metric 'x'.", suggestions=["a", "b"]))
    "unknown_metric: unknown metric 'x'. Valid choices include: a, b."
    """
    text = f"{exc.code}: {exc.message}"
    suggestions = exc.details.get("suggestions")
    if isinstance(exc, UserError) and suggestions and not all(repr(s) in exc.message for s in suggestions[:3]):
        text += " Valid choices include: " + ", ".join(str(s) for s in suggestions[:10]) + "."
    return text
