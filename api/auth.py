"""Who is asking: bearer tokens and scopes on HTTP, per-token concurrency, the audit log.

A data directory that has never had a token is served openly (and `northstar serve` then binds
to loopback only unless `--allow-open`); `--open` serves any directory without tokens. Once a
token has been created every data route needs `Authorization: Bearer <token>` with the route's
scope, for good: revoking the last token leaves nobody admitted, and a missing, unreadable or
invalid token store answers 503 with the cause (fail closed, `core/tokens.py`). A token's row-level policy travels with the request (`Caller.policy`) and is applied by
the engine dependency (`api/deps.py`), so every route that reads data through the engine
respects it.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request

from core.tokens import Token, TokenStore, TokenStoreUnavailable
from metrics.errors import UserError
from metrics.policy import RowPolicy


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
        return RowPolicy(
            tuple(p.to_filter() for p in self.token.policy), " and ".join(p.describe() for p in self.token.policy)
        )


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
                raise TooManyRequests(
                    f"token {caller.token.name!r} already has {running} queries running "
                    f"(its limit is {limit}); retry when one has finished.",
                    retry_after=1,
                )
            self._running[caller.token.id] = running + 1
        return caller.token.id

    def release(self, token_id: str | None) -> None:
        if token_id is None:
            return
        with self._lock:
            self._running[token_id] -= 1


class AuditLog:
    """One JSON line per HTTP request and per SQL statement: who, what, when, how long, how
    many rows, the outcome.

    The file is created 0600 (an older, wider file is narrowed on open) and rotated by size:
    beyond `max_bytes` it becomes `audit.jsonl.1` (the older ones shift up to `.N`, the oldest
    is dropped). Nothing secret is written: `scrub` removes tokens, passwords and the like from
    every value before it is serialised.
    """

    def __init__(self, path: Path | None, max_bytes: int = 10 * 1024 * 1024, files: int = 5) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.files = files
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                os.chmod(path, 0o600)

    def write(self, **entry) -> None:
        if self.path is None:
            return
        line = (json.dumps(scrub(entry), default=str, separators=(",", ":")) + "\n").encode()
        with self._lock:
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(line) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def _rotate(self) -> None:
        assert self.path is not None
        if self.files < 1:
            self.path.unlink(missing_ok=True)
            return
        for n in range(self.files - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{n + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


# Keys whose values are never written to the audit log, wherever they appear (query strings,
# bodies, SQL session parameters), compared without case, '-' or '_'.
SECRET_KEYS = frozenset(
    {
        "token",
        "accesstoken",
        "apitoken",
        "apikey",
        "key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "authorization",
        "auth",
        "bearer",
        "credentials",
        "sessionid",
        "cookie",
    }
)
REDACTED = "[redacted]"
_TOKEN_TEXT = re.compile(r"nst_[0-9a-f]+_[A-Za-z0-9_\-]+")
_SCRAM_TEXT = re.compile(r"SCRAM-SHA-256\$[^\s'\"]+")


def _secret_key(key: str) -> bool:
    return key.lower().replace("-", "").replace("_", "") in SECRET_KEYS


def scrub(value: Any) -> Any:
    """`value` with every secret replaced by "[redacted]": values under secret keys, and API
    tokens and SCRAM verifiers anywhere in text.

    >>> scrub({"where": ["region = 'nst_ab12_xyz'"], "body": {"Password": "p"}, "rows": 3})
    {'where': ["region = '[redacted]'"], 'body': {'Password': '[redacted]'}, 'rows': 3}
    """
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _secret_key(k) and v is not None else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return _SCRAM_TEXT.sub(REDACTED, _TOKEN_TEXT.sub(REDACTED, value))
    return value


def scrub_query_string(query: str) -> str | None:
    """A URL query string without the values of secret parameters (`access_token=...`).

    >>> scrub_query_string("metrics=events&access_token=nst_ab12_xyz&api-key=k")
    'metrics=events&access_token=[redacted]&api-key=[redacted]'
    """
    if not query:
        return None
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(_secret_key(k) for k, _ in pairs):
        return scrub(query)
    return scrub(urlencode([(k, REDACTED if _secret_key(k) else v) for k, v in pairs], safe="[],"))


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authenticate(store: TokenStore, presented: str | None, open_mode: bool = False) -> Caller:
    """The caller behind a request; `TokenStoreUnavailable` (503) when the store cannot say."""
    if open_mode or not store.requires_tokens():
        return Caller(None)
    try:
        store.snapshot()
    except TokenStoreUnavailable as exc:
        raise TokenStoreUnavailable(
            f"the service cannot check API tokens, so it answers no data request: "
            f"{exc.message}. An administrator must repair the token store "
            "(or serve with --open)."
        ) from None
    if presented is None:
        raise Unauthorized(
            "this service needs an API token: send 'Authorization: Bearer <token>' "
            "(create one with `northstar tokens create`)."
        )
    token = store.verify(presented)
    if token is None:
        raise Unauthorized("the API token is not valid (unknown, mistyped or revoked).")
    return Caller(token)


def authenticate_request(request: Request) -> Caller:
    """The caller of an HTTP request: its bearer token, else the web app's signed session
    cookie (api/app/session.py), which refers to a token and dies with it."""
    presented = bearer_token(request)
    open_mode = request.app.state.settings.open
    if presented is None and not open_mode and request.app.state.tokens.requires_tokens():
        from api.app.session import session_token  # the app imports this module

        token = session_token(request)  # a broken store raises TokenStoreUnavailable: 503
        if token is not None:
            return Caller(token)
    return authenticate(request.app.state.tokens, presented, open_mode)


def admit(request: Request, scope: str) -> tuple[Caller, str | None]:
    """The caller of `request` if it holds `scope`, counted against its concurrency limit: the
    slot returned must be given back (`limiter.release`) when the request ends. Raises the
    refusal (401, 403, 429, 503) otherwise."""
    caller = authenticate_request(request)
    if caller.token is not None and not caller.token.allows(scope):
        raise Forbidden(
            f"token {caller.token.name!r} has scopes {', '.join(caller.token.scopes)}; this route needs {scope!r}.",
            needed_scope=scope,
        )
    request.state.caller = caller
    return caller, request.app.state.limiter.acquire(caller)


def require(scope: str) -> Callable[[Request], AsyncIterator[Caller]]:
    """A dependency that admits callers holding `scope` and counts them against their
    concurrency limit for the length of the request.

    async: checking a token is a stat of the store and a hash (the store is reread only when
    it changed), so it runs on the event loop rather than costing two worker-thread hops on
    every request."""

    async def dependency(request: Request) -> AsyncIterator[Caller]:
        caller, slot = admit(request, scope)
        try:
            yield caller
        finally:
            request.app.state.limiter.release(slot)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


class AuditMiddleware:
    """Write each HTTP request's audit line (api/auth.py `AuditLog`) as its answer is sent.

    Plain ASGI rather than Starlette's `BaseHTTPMiddleware` (a task group and a stream per
    request, most of a cache hit's time). The line is written just before the last body chunk
    goes out, so a client holding the answer finds it in the log; a request that raised before
    answering is logged as 500. The route's `request.state.caller` and `audit_query` are read
    from the ASGI scope's state, which `Request.state` writes to."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        audit: AuditLog = scope["app"].state.audit  # this app's (a mounted app sets its own)
        answer: dict[str, Any] = {}

        def log() -> None:
            if answer.get("logged"):
                return
            answer["logged"] = True
            state = scope.get("state") or {}
            caller = state.get("caller")
            client = scope.get("client")
            query_string = scope.get("query_string", b"").decode("latin-1")
            audit.write(
                at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                interface="http",
                caller=caller.name if caller else None,
                token_id=caller.token.id if caller and caller.token else None,
                client=client[0] if client else None,
                method=scope["method"],
                path=scope["path"],
                query=scrub_query_string(query_string),
                body=state.get("audit_query"),
                status=answer.get("status", 500),
                ms=round((time.perf_counter() - started) * 1000, 3),
                rows=answer.get("rows"),
            )

        async def send_and_log(message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"x-northstar-rows":
                        answer["rows"] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                log()
            await send(message)

        try:
            await self.app(scope, receive, send_and_log)
        finally:
            log()
