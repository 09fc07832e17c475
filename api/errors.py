"""One place that maps engine exceptions to HTTP status codes and the spec's error body:
`{"error": {"code": ..., "message": ..., <details>}}`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from metrics import errors

STATUS: dict[type[errors.MetricsError], int] = {
    errors.NotFound: 404,
    errors.UnknownSavedQuery: 404,
    errors.UnsupportedFeature: 422,
    errors.MetricUnavailable: 422,
    errors.UserError: 400,
    errors.WarehouseUnavailable: 503,
    errors.BuildFailed: 409,
    errors.InternalError: 500,
    errors.MetricsError: 500,
}


class MetricNotFound(errors.UnknownMetric):
    """An unknown metric named in a URL path: the resource does not exist."""


from api.auth import Forbidden, TooManyRequests, Unauthorized  # noqa: E402
from metrics.policy import PolicyDenied  # noqa: E402

STATUS = {MetricNotFound: 404, Unauthorized: 401, Forbidden: 403, PolicyDenied: 403, TooManyRequests: 429,
          errors.QueryTimeout: 504, **STATUS}


def headers_for(exc: errors.MetricsError) -> dict[str, str] | None:
    if isinstance(exc, Unauthorized):
        return {"WWW-Authenticate": 'Bearer realm="northstar"'}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.details.get("retry_after", 1))}
    return None


def status_for(exc: errors.MetricsError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_body(code: str, message: str, **details) -> dict:
    return {"error": {"code": code, "message": message, **details}}


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.MetricsError)
    async def metrics_error(_: Request, exc: errors.MetricsError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, **exc.details), status_code=status_for(exc),
                            headers=headers_for(exc))

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError | ValidationError) -> JSONResponse:
        problems = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                # loc is ("body", <character offset>): say what is wrong and where
                at = err.get("loc", ("body", None))[-1]
                reason = (err.get("ctx") or {}).get("error") or "JSON decode error"
                problems.append({"field": "body", "problem": f"not valid JSON ({reason}) at character {at}"})
                continue
            loc = err.get("loc", ())
            location = ".".join(str(p) for p in loc if p not in ("body", "query")) or (loc[0] if loc else "")
            problems.append({"field": location, "problem": err.get("msg")})
        message = "; ".join(f"{p['field'] or 'request'}: {p['problem']}" for p in problems)
        return JSONResponse(error_body("invalid_request", message or "invalid request", problems=problems),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words for a body it could not decode at all (not JSON, wrong encoding)
            code = "invalid_body"
            message = (f"the request body could not be read (Content-Type "
                       f"{request.headers.get('content-type') or 'missing'!r}); send a JSON object with "
                       "Content-Type: application/json.")
        return JSONResponse(error_body(code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))
