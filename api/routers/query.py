"""Metric query routes: POST/GET /v1/query and /v1/compile."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from api.answer_cache import AnswerCache, EncodedAnswer, raw_request
from api.deps import EngineDep, SettingsDep
from api.encoding import binary_response, csv_response, incomplete_json, json_rows, negotiate, with_completeness
from api.schemas.query import (
    BuildWarning,
    CompileResponse,
    Completeness,
    Format,
    MetricQueryRequest,
    MetricQueryResponse,
)
from metrics.engine import MetricsEngine
from metrics.errors import InvalidQuery
from metrics.execution.client import to_jsonable
from metrics.protocols import Engine
from metrics.query.request import MetricQuery

router = APIRouter(prefix="/v1", tags=["query"])


def _resolve(body: MetricQueryRequest, engine: Engine) -> MetricQuery:
    """The request as a query; a saved query supplies its metrics, group_by and filters.

    A saved query fixes what it measures: `metrics` or `group_by` sent beside it must be the
    saved query's own (or absent), else the request is refused (422) rather than silently
    answering one of the two. Extra `where` filters narrow it (they are added to its own)."""
    if body.saved_query:
        saved = engine.saved_query(body.saved_query)
        for field in ("metrics", "group_by"):
            sent, own = list(getattr(body, field)), list(getattr(saved, field))
            if sent and sent != own:
                raise InvalidQuery(
                    f"saved query {saved.name!r} has {field} {own}; the request also sends {field} {sent}. "
                    f"Drop {field!r} to run the saved query, or drop 'saved_query' to run your own.",
                    field=field,
                    suggestions=own,
                )
        body = body.model_copy(
            update={
                "metrics": body.metrics or list(saved.metrics),
                "group_by": body.group_by or list(saved.group_by),
                "where": list(saved.where) + list(body.where),
                "saved_query": None,
            }
        )
    return body.to_query()


async def _answer(request: Request, body: MetricQueryRequest, engine: Engine, fmt: str, page_size: int) -> Response:
    """The answer to a query: a repeated request of the same build is served on the event loop
    as the bytes encoded the first time; anything else is computed in a worker thread."""
    answers: AnswerCache | None = getattr(request.app.state, "answers", None)
    if answers is None or not isinstance(engine, MetricsEngine):  # a row policy's answer is not kept
        return await run_in_threadpool(_computed, body, engine, fmt, page_size, None, None)
    key = (engine.build.build_id, fmt, page_size, body.model_dump_json())
    hit = answers.get(key)
    response = (
        hit.response()
        if hit is not None
        else await run_in_threadpool(_computed, body, engine, fmt, page_size, answers, key)
    )
    # The same bytes sent again are answered before routing (api/answer_cache.StoredAnswers).
    sent = raw_request(engine.build.build_id, request.scope, await request.body())
    answers.remember(sent, key, request.state.audit_query)
    return response


def _computed(
    body: MetricQueryRequest,
    engine: Engine,
    fmt: str,
    page_size: int,
    answers: AnswerCache | None,
    key: tuple | None,
) -> Response:
    result = engine.query(_resolve(body, engine))
    # One response carries at most `page_size` rows; the rest are pages of the same cached
    # answer, asked for with `offset`.
    total = len(result.rows)
    page = result.page(body.offset, page_size)
    next_offset = body.offset + page_size if body.offset + page_size < total else None
    response = _encode(page, fmt, total, next_offset, body.completeness)
    # Buckets of the whole answer that are not complete (JSON lists them in meta.incomplete).
    response.headers["X-Northstar-Incomplete"] = str(len(result.incomplete))
    response.headers["X-Northstar-Rows"] = str(len(page.rows))  # for clients, and the audit log
    response.headers["X-Northstar-Rows-Total"] = str(total)
    if next_offset is not None:
        response.headers["X-Northstar-Next-Offset"] = str(next_offset)
    if answers is not None and key is not None:
        # Stored as a hit answers (JSON says `cached`); the other encodings carry no such flag.
        stored = (
            _encode(dataclasses.replace(page, cached=True, elapsed_ms=0.0), fmt, total, next_offset, body.completeness)
            if fmt == "json"
            else response
        )
        answers.put(
            key,
            EncodedAnswer(
                bytes(stored.body),
                response.media_type,
                tuple(
                    (name, value)
                    for name, value in response.headers.items()
                    if name not in ("content-length", "content-type")
                ),
            ),
        )
    return response


def _encode(result, fmt: str, total: int, next_offset: int | None, completeness: str) -> Response:
    if completeness == "columns":
        result = with_completeness(result)
    if fmt == "csv":
        return csv_response(result)
    if fmt in ("parquet", "arrow"):
        return binary_response(result, fmt)
    return JSONResponse(
        {
            "columns": [{"name": c.name, "type": c.type} for c in result.columns],
            "rows": json_rows(result),
            "meta": {
                "build_id": result.build.build_id,
                "built_at": result.build.built_at,
                "tests_passed": result.freshness.tests_passed,
                "warnings": [BuildWarning.of(w).model_dump(mode="json") for w in result.freshness.warnings],
                "newest_metric_time": to_jsonable(result.freshness.newest_metric_time),
                "models": list(result.freshness.models),
                "cached": result.cached,
                "elapsed_ms": round(result.elapsed_ms, 3),
                "rows_total": total,
                "next_offset": next_offset,
                "incomplete": incomplete_json(result),
            },
        }
    )


# The JSON body is encoded directly (and a repeated request is answered with the stored bytes,
# api/answer_cache.py), so the model documents it rather than validating each answer; a test
# validates real answers against it.
_QUERY_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": MetricQueryResponse,
        "description": "The metric values; JSON by default, or CSV / Parquet / Arrow by `format`.",
        "content": {"text/csv": {}, "application/vnd.apache.parquet": {}, "application/vnd.apache.arrow.stream": {}},
    },
}


@router.post("/query", responses=_QUERY_RESPONSES)
async def post_query(
    body: MetricQueryRequest, request: Request, engine: EngineDep, settings: SettingsDep, format: Format | None = None
) -> Response:
    request.state.audit_query = body.model_dump(mode="json", exclude_defaults=True)
    return await _answer(request, body, engine, negotiate(format, request), settings.max_rows_per_response)


@router.get("/query", responses=_QUERY_RESPONSES)
async def get_query(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    metrics: Annotated[str, Query(description="Comma-separated metric names.")] = "",
    group_by: Annotated[str, Query(description="Comma-separated group-by names.")] = "",
    where: Annotated[list[str], Query(description="dbt-style filter strings; repeat for several.")] = [],
    start: str | None = None,
    end: str | None = None,
    order_by: Annotated[str, Query(description="Comma-separated; prefix '-' for descending.")] = "",
    limit: Annotated[int | None, Query(ge=0)] = None,
    offset: Annotated[int, Query(ge=0, description="Rows to skip (paging; see meta.next_offset).")] = 0,
    saved_query: str | None = None,
    timezone: Annotated[str | None, Query(description="IANA zone, e.g. Europe/Berlin (default UTC).")] = None,
    week_start: Annotated[str, Query(description="monday (ISO, default) or sunday.")] = "monday",
    completeness: Annotated[
        Completeness,
        Query(
            description="meta (default): incomplete buckets in meta.incomplete; columns: also a boolean "
            "<metric>__complete column per metric."
        ),
    ] = "meta",
    format: Format | None = None,
) -> Response:
    body = MetricQueryRequest(
        metrics=metrics,
        group_by=group_by,
        where=where,
        start=start,
        end=end,
        order_by=order_by,
        limit=limit,
        offset=offset,
        saved_query=saved_query,
        timezone=timezone,
        week_start=week_start,
        completeness=completeness,
    )
    request.state.audit_query = body.model_dump(mode="json", exclude_defaults=True)
    return await _answer(request, body, engine, negotiate(format, request), settings.max_rows_per_response)


@router.post("/compile", response_model=CompileResponse)
def compile_query(body: MetricQueryRequest, engine: EngineDep) -> CompileResponse:
    compiled = engine.compile(_resolve(body, engine))
    return CompileResponse(
        sql=compiled.inline_sql,
        parameterized_sql=compiled.sql,
        parameters={k: str(v) if not isinstance(v, (int, float, bool, str)) else v for k, v in compiled.params.items()},
        explanation=compiled.explanation,
    )
