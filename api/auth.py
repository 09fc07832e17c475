"""Who is asking: bearer tokens and scopes on HTTP, per-token concurrency, the audit log.

With no active token the service is open (and `northstar serve` then binds to loopback only);
once a token exists every data route needs `Authorization: Bearer <token>` with the route's
scope. A token's row-level policy travels with the request (`Caller.policy`) and is applied by
the engine dependency (`api/deps.py`), so every route that reads data through the engine
respects it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from metrics.errors import UserError
from metrics.policy import RowPolicy
from northstar.tokens import Token, TokenStore


class Unauthorized(UserError):
    code = "unauthorized"


class Forbidden(UserError):
    code = "forbidden"


class TooManyRequests(UserError):
    code = "too_many_concurrent_queries"


@dataclass(frozen=True)
class Caller:
    token: Token | None  # None: the open, localhost-only mode

    @property
    def name(self) -> str:
        return self.token.name if self.token else "anonymous"

    @property
    def policy(self) -> RowPolicy:
        if self.token is None or not self.token.policy:
            return RowPolicy((), "")
        return RowPolicy(tuple(p.to_filter() for p in self.token.policy),
                         " and ".join(p.describe() for p in self.token.policy))


class ConcurrencyLimiter:
    """At most N queries at once per token (N from the token, else the service default)."""

    def __init__(self, default_limit: int) -> None:
        self.default_limit = default_limit
        self._running: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, caller: Caller) -> str | None:
        if caller.token is None:
            return None
        limit = caller.token.max_concurrent or self.default_limit
        with self._lock:
            running = self._running.get(caller.token.id, 0)
            if running >= limit:
                raise TooManyRequests(f"token {caller.token.name!r} already has {running} queries running "
                                      f"(its limit is {limit}); retry when one has finished.", retry_after=1)
            self._running[caller.token.id] = running + 1
        return caller.token.id

    def release(self, token_id: str | None) -> None:
        if token_id is None:
            return
        with self._lock:
            self._running[token_id] -= 1


class AuditLog:
    """One JSON line per request: who, what, when, how long, how many rows, the outcome."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, **entry) -> None:
        if self.path is None:
            return
        line = json.dumps(entry, default=str, separators=(",", ":"))
        with self._lock, self.path.open("a") as out:
            out.write(line + "\n")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(store: TokenStore, presented: str | None) -> Caller:
    if not store.has_active():
        return Caller(None)
    if presented is None:
        raise Unauthorized("this service needs an API token: send 'Authorization: Bearer <token>' "
                           "(create one with `northstar tokens create`).")
    token = store.verify(presented)
    if token is None:
        raise Unauthorized("the API token is not valid (unknown, mistyped or revoked).")
    return Caller(token)


def authenticate_request(request: Request) -> Caller:
    """The caller of an HTTP request: its bearer token, else the web app's signed session
    cookie (api/app/session.py), which refers to a token and dies with it."""
    presented = bearer_token(request)
    if presented is None and request.app.state.tokens.has_active():
        from api.app.session import session_token  # the app imports this module

        token = session_token(request)
        if token is not None:
            return Caller(token)
    return authenticate(request.app.state.tokens, presented)


def require(scope: str) -> Callable[[Request], Iterator[Caller]]:
    """A dependency that admits callers holding `scope` and counts them against their
    concurrency limit for the length of the request."""

    def dependency(request: Request) -> Iterator[Caller]:
        caller = authenticate_request(request)
        if caller.token is not None and not caller.token.allows(scope):
            raise Forbidden(f"token {caller.token.name!r} has scopes {', '.join(caller.token.scopes)}; "
                            f"this route needs {scope!r}.", needed_scope=scope)
        request.state.caller = caller
        slot = request.app.state.limiter.acquire(caller)
        try:
            yield caller
        finally:
            request.app.state.limiter.release(slot)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


async def audit_middleware(request: Request, call_next):
    started = time.perf_counter()
    response = None
    try:
        response = await call_next(request)
        return response
    finally:
        audit: AuditLog = request.app.state.audit
        caller = getattr(request.state, "caller", None)
        audit.write(
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            interface="http",
            caller=caller.name if caller else None,
            token_id=caller.token.id if caller and caller.token else None,
            method=request.method,
            path=request.url.path,
            query=str(request.url.query) or None,
            body=getattr(request.state, "audit_query", None),
            status=response.status_code if response is not None else 500,
            ms=round((time.perf_counter() - started) * 1000, 3),
            rows=response.headers.get("x-northstar-rows") if response is not None else None,
        )
