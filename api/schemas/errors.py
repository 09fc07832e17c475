"""The error body every route answers with (spec/http-api.md), published in the OpenAPI spec
so that clients, and the fuzz test, know each status code a route can return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class ErrorDetail(BaseModel):
    # Errors carry details beside code and message (problems, suggestions, retry_after, ...).
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


_DESCRIPTIONS = {
    400: "The request names something unknown or combines things that do not fit.",
    401: "A token is required and none (or an unknown one) was sent.",
    403: "The token lacks the scope, or its row-level policy forbids the request.",
    404: "No such resource (metric, experiment, launch, release, file).",
    413: "The request body is larger than the server accepts.",
    422: "The request does not match the schema (types, ranges, required fields).",
    429: "Too many queries in flight for this token; retry after `Retry-After` seconds.",
    503: "No warehouse build can be served yet, or the API token store cannot be used (fail closed).",
    504: "The query ran longer than the query timeout.",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status with the error body."""
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in codes}


# What any route that reads the warehouse may answer besides 200.
DATA_ROUTE_ERRORS = error_responses(400, 401, 403, 404, 413, 422, 429, 503, 504)
