"""One place that maps engine exceptions to HTTP status codes and the spec's error body:
`{"error": {"code": ..., "message": ..., "request_id": ..., <details>}}`.

One status per mistake, on every route:

- 422: anything the caller can fix in the request: a malformed or out-of-range value, a wrong
  type, an inverted range, an unknown name in the query string or body (metric, dimension,
  saved query, platform), a combination that does not fit. The body names the `field` and,
  where it helps, the nearest valid `suggestions`.
- 404: a name in the URL path that does not exist (`/v1/metrics/{name}`, an experiment, a
  release, a launch), and unknown routes.
- 401/403/429/413/503/504 as their classes say; 500 `internal_error` for a fault of the
  service, whose message never carries warehouse or library text.

The statuses are one table, `STATUS`, from exception class to status (a class takes its nearest
listed base's); `install` adds the handlers that answer with it and the fallback for exceptions
nothing maps (a bug: 500 `internal_error`, the traceback logged under the request id).

Every response carries an `X-Request-Id` header, and every error body the same id in
`error.request_id`: the internal text of an error (DuckDB's, sqlglot's, a traceback) is written
to the server log under that id, never to the client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.auth import Forbidden, TooManyRequests, Unauthorized
from core.tokens import TokenStoreUnavailable
from metrics import errors
from metrics.policy import PolicyDenied

log = logging.getLogger("northstar.api")

REQUEST_ID_HEADER = "X-Request-Id"

# The one exception -> HTTP status table. A class not listed answers the status of its nearest
# listed base class (`status_for`); an exception that is no `MetricsError` at all is a fault of
# the service: 500 `internal_error` (`install`'s fallback).
STATUS: dict[type[Exception], int] = {
    Unauthorized: 401,
    Forbidden: 403,
    PolicyDenied: 403,
    errors.NotFound: 404,
    errors.UserError: 422,
    TooManyRequests: 429,
    errors.InternalError: 500,
    errors.MetricsError: 500,
    errors.WarehouseUnavailable: 503,
    TokenStoreUnavailable: 503,
    errors.QueryTimeout: 504,
}

# Errors about a name that does not exist: 404 when the name is a parameter of the URL path
# (`/v1/metrics/{name}`), 422 like any other request mistake when it came in the query string
# or the body.
UNKNOWN_NAMES: tuple[type[errors.MetricsError], ...] = (
    errors.UnknownMetric,
    errors.UnknownSavedQuery,
    errors.UnknownDimension,
    errors.NotFound,
)

INTERNAL_MESSAGE = "the service could not answer this request (an internal error); quote the request id."


def headers_for(exc: errors.MetricsError) -> dict[str, str] | None:
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="northstar"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.details.get("retry_after", 1))}
    return None


def status_for(exc: Exception, path_params: dict[str, Any] | None = None) -> int:
    """The HTTP status of an exception, from `STATUS` by its class (nearest listed base).

    `path_params` are the URL path parameters of the request the error answers: an unknown
    name that is one of them is a resource that does not exist.

    >>> status_for(errors.UnknownMetric("unknown metric 'x'.", metric="x"))
    422
    >>> status_for(errors.UnknownMetric("unknown metric 'x'.", metric="x"), {"name": "x"})
    404
    >>> status_for(errors.WarehouseUnavailable("no build")), status_for(KeyError("x"))
    (503, 500)
    """
    status = next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)
    if status == 422 and path_params and isinstance(exc, UNKNOWN_NAMES):
        named = {str(v) for v in exc.details.values() if isinstance(v, str)}
        if named & {str(v) for v in path_params.values()}:
            return 404
    return status


def request_id(request: Request) -> str:
    """The id of this request (set by `RequestIdMiddleware`; made here for requests it missed)."""
    state = request.scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex
    return state["request_id"]


class RequestIdMiddleware:
    """Give each HTTP request an id and answer it in the `X-Request-Id` header."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        rid = state.setdefault("request_id", uuid.uuid4().hex)

        async def send_with_id(message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": headers + [(b"x-request-id", rid.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_id)


def error_body(code: str, message: str, **details) -> dict:
    return {"error": {"code": code, "message": message, **details}}


def _respond(
    request: Request, status: int, code: str, message: str, headers: dict | None = None, **details
) -> JSONResponse:
    rid = request_id(request)
    details = {k: v for k, v in details.items() if v is not None}
    return JSONResponse(
        error_body(code, message, **details, request_id=rid),
        status_code=status,
        headers={**(headers or {}), REQUEST_ID_HEADER: rid},
    )


def _problem(err: dict) -> dict:
    if err.get("type") == "json_invalid":
        # loc is ("body", <character offset>): say what is wrong and where
        at = err.get("loc", ("body", None))[-1]
        reason = (err.get("ctx") or {}).get("error") or "JSON decode error"
        return {"field": "body", "problem": f"not valid JSON ({reason}) at character {at}"}
    loc = err.get("loc", ())
    location = ".".join(str(p) for p in loc if p not in ("body", "query", "path")) or (str(loc[0]) if loc else "")
    problem = {"field": location, "problem": err.get("msg")}
    expected = (err.get("ctx") or {}).get("expected")
    if err.get("type") == "literal_error" and expected:
        # "'a' or 'b'": the valid choices, nearest first
        choices = [c.strip().strip("'") for c in str(expected).replace(" or ", ", ").split(",") if c.strip()]
        given = err.get("input")
        problem["suggestions"] = (errors.nearest(str(given), choices) if isinstance(given, str) else []) or choices
    return problem


def internal_error(request: Request, exc: BaseException) -> JSONResponse:
    """The answer to an exception no handler maps (a bug): the traceback goes to the log under
    the request id, the client gets 500 `internal_error` with the id and no internals."""
    log.error("request %s: unexpected %s", request_id(request), type(exc).__name__, exc_info=exc)
    return _respond(request, 500, "internal_error", INTERNAL_MESSAGE)


class UnexpectedErrors:
    """Innermost middleware: an exception no handler maps becomes the `internal_error` answer
    here, inside the other middleware, so that answer is audited and carries the security
    headers and the request id like any other."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:
            if started:  # part of the answer is out: nothing else can be said
                raise
            await internal_error(Request(scope), exc)(scope, receive, send)


def install(app: FastAPI) -> None:
    """The error handlers, and the fallback for exceptions none of them maps. Call before
    adding other middleware, so the fallback is the innermost; `RequestIdMiddleware` is added
    by `create_app` last, outermost, so the guards' own refusals (413, 421) carry the id too."""

    app.add_middleware(UnexpectedErrors)

    @app.exception_handler(errors.MetricsError)
    async def metrics_error(request: Request, exc: errors.MetricsError) -> JSONResponse:
        status = status_for(exc, request.path_params)
        message = exc.message
        if status == 500:
            # the service's own fault: the words stay in the log, the client gets the id
            log.error("request %s: %s: %s (%s)", request_id(request), exc.code, exc.message, exc.internal or "")
            message = INTERNAL_MESSAGE
        elif exc.internal:
            log.info("request %s: %s: %s", request_id(request), exc.code, exc.internal)
        return _respond(request, status, exc.code, message, headers_for(exc), **exc.details)

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        problems = [_problem(err) for err in exc.errors()]
        message = "; ".join(f"{p['field'] or 'request'}: {p['problem']}" for p in problems)
        first = problems[0] if problems else {}
        return _respond(
            request,
            422,
            "invalid_request",
            message or "invalid request",
            problems=problems,
            field=first.get("field") or None,
            suggestions=first.get("suggestions"),
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        status = exc.status_code
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words for a body it could not decode at all (not JSON, wrong encoding):
            # a request the caller can fix, like any other malformed input
            code, status = "invalid_body", 422
            message = (
                f"the request body could not be read (Content-Type "
                f"{request.headers.get('content-type') or 'missing'!r}); send a JSON object with "
                "Content-Type: application/json."
            )
        return _respond(request, status, code, message, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
        # an exception raised by a middleware outside `UnexpectedErrors`
        return internal_error(request, exc)
