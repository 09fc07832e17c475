"""`POST /api/graphql` (and `/graphql`): the dbt Semantic Layer GraphQL API over northstar's
engine, executed by Ariadne (schema-first, so `schema.graphql` states the types and fields the
clients request, by dbt's names).

`environmentId` is required by the schema, as the clients send it, and otherwise ignored: a
northstar server serves one environment, the build it currently publishes.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import graphql
from ariadne import (
    MutationType,
    QueryType,
    ScalarType,
    format_error,
    graphql_sync,
    load_schema_from_path,
    make_executable_schema,
)
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from graphql import FieldNode, GraphQLSyntaxError, OperationDefinitionNode
from graphql import parse as parse_graphql
from pydantic import BaseModel

from api.auth import Forbidden, Unauthorized, bearer_token
from api.dbt_sl import catalog
from api.dbt_sl.request import (
    GroupBy,
    Order,
    SemanticLayerRequest,
    ipc_bytes,
    json_result,
)
from api.dbt_sl.service import SemanticLayerService
from api.graphql.jobs import QueryJobs
from api.schemas.errors import error_responses
from core.tokens import TokenStoreUnavailable
from metrics.errors import InvalidQuery, MetricsError

log = logging.getLogger("northstar.graphql")

# The message the dbt clients map to their AuthError (the exact text; the cause goes in
# extensions.detail).
NOT_AUTHORIZED = "User is not authorized"

# `query(queryId)` waits this long for a running query to finish before it answers RUNNING.
LONG_POLL_S = 5.0

query = QueryType()
mutation = MutationType()
big_int = ScalarType("BigInt", serializer=int, value_parser=int)
json_scalar = ScalarType("JSON")


def _engine(info) -> Any:
    return info.context["engine"]


def _names(items: list[dict[str, Any]] | None) -> list[str]:
    return [item["name"] for item in items or []]


def _group_by(item: dict[str, Any]) -> GroupBy:
    return GroupBy(item["name"], item.get("timeGranularity") or item.get("grain"))


@query.field("environmentInfo")
def resolve_environment_info(_, info, environmentId: int) -> dict[str, Any]:
    engine = _engine(info)
    dialect = engine.client.dialect.upper()
    return {
        "sqlDialect": dialect,
        "hasMetricsDefined": bool(engine.metric_names()),
        "dialect": dialect,
        "dialectSupportedBySlg": False,
    }


@query.field("metrics")
def resolve_metrics(_, info, environmentId: int) -> list[dict[str, Any]]:
    return catalog.metrics(_engine(info))


@query.field("metricsPaginated")
def resolve_metrics_paginated(
    _,
    info,
    environmentId: int,
    search: str | None = None,
    groupBy: list[dict[str, Any]] | None = None,
    pageNum: int | None = None,
    pageSize: int | None = None,
) -> dict[str, Any]:
    engine = _engine(info)
    items = (
        catalog.metrics_for_dimensions(engine, [_group_by(g).column for g in groupBy])
        if groupBy
        else catalog.metrics(engine)
    )
    return catalog.page(catalog.search(items, search), pageNum, pageSize)


@query.field("dimensions")
def resolve_dimensions(_, info, environmentId: int, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return catalog.dimensions(_engine(info), _names(metrics))


@query.field("dimensionsPaginated")
def resolve_dimensions_paginated(
    _,
    info,
    environmentId: int,
    metrics: list[dict[str, Any]],
    search: str | None = None,
    pageNum: int | None = None,
    pageSize: int | None = None,
) -> dict[str, Any]:
    items = catalog.dimensions(_engine(info), _names(metrics))
    return catalog.page(catalog.search(items, search), pageNum, pageSize)


@query.field("measures")
def resolve_measures(_, info, environmentId: int, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return catalog.measures(_engine(info), _names(metrics))


@query.field("entities")
def resolve_entities(_, info, environmentId: int, metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return catalog.entities(_engine(info), _names(metrics))


@query.field("entitiesPaginated")
def resolve_entities_paginated(
    _,
    info,
    environmentId: int,
    metrics: list[dict[str, Any]] | None = None,
    search: str | None = None,
    pageNum: int | None = None,
    pageSize: int | None = None,
) -> dict[str, Any]:
    engine = _engine(info)
    names = _names(metrics) or engine.metric_names()
    if metrics:
        items = catalog.entities(engine, names)
    else:  # every entity of any metric
        seen: dict[str, dict[str, Any]] = {}
        for name in names:
            for entity in catalog.entities(engine, [name]):
                seen.setdefault(entity["name"], entity)
        items = [seen[n] for n in sorted(seen)]
    return catalog.page(catalog.search(items, search), pageNum, pageSize)


@query.field("metricsForDimensions")
def resolve_metrics_for_dimensions(_, info, environmentId: int, groupBy: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return catalog.metrics_for_dimensions(_engine(info), [_group_by(g).column for g in groupBy])


@query.field("queryableGranularities")
def resolve_queryable_granularities(_, info, environmentId: int, metrics: list[dict[str, Any]]) -> list[str]:
    return catalog.queryable_granularities(_engine(info), _names(metrics))


@query.field("savedQueries")
def resolve_saved_queries(_, info, environmentId: int) -> list[dict[str, Any]]:
    return catalog.saved_queries(_engine(info))


@query.field("query")
def resolve_query(_, info, environmentId: int, queryId: str, pageNum: int = 1) -> dict[str, Any]:
    job = info.context["jobs"].wait(_owner(info), queryId, LONG_POLL_S)
    result: dict[str, Any] = {
        "queryId": job.id,
        "status": job.status,
        "sql": job.sql,
        "error": job.error,
        "totalPages": job.total_pages,
        "arrowResult": None,
        "jsonResult": None,
    }
    if job.status == "SUCCESSFUL":
        page = job.page(pageNum or 1)
        result["arrowResult"] = base64.b64encode(ipc_bytes(page)).decode()

        def json_page(*_, orient: str = "TABLE", encoded: bool = True) -> str:
            text = json_result(page, orient)
            return base64.b64encode(text.encode()).decode() if encoded else text

        result["jsonResult"] = json_page
    return result


def _request(
    metrics=None, groupBy=None, where=None, orderBy=None, limit=None, savedQuery=None, readCache=None, **_
) -> SemanticLayerRequest:
    order = []
    for item in orderBy or []:
        if bool(item.get("metric")) == bool(item.get("groupBy")):
            raise InvalidQuery("each orderBy entry names either a metric or a groupBy item.", field="orderBy")
        descending = bool(item.get("descending"))
        if item.get("metric"):
            order.append(Order(item["metric"]["name"], metric=True, descending=descending))
        else:
            g = item["groupBy"]
            order.append(Order(g["name"], grain=g.get("timeGranularity") or g.get("grain"), descending=descending))
    return SemanticLayerRequest(
        metrics=tuple(_names(metrics)),
        group_by=tuple(_group_by(g) for g in groupBy or []),
        where=tuple(w["sql"] for w in where or []),
        order_by=tuple(order),
        limit=limit,
        saved_query=savedQuery,
        read_cache=True if readCache is None else readCache,
    )


def _owner(info) -> str | None:
    caller = info.context["caller"]
    return caller.token.id if caller.token else None


@mutation.field("createQuery")
def resolve_create_query(_, info, environmentId: int, **params) -> dict[str, Any]:
    request = _request(**params)
    service: SemanticLayerService = info.context["service"]
    caller = info.context["caller"]
    job = info.context["jobs"].submit(
        _owner(info), lambda: service.compile(caller, request), lambda: service.query(caller, request, "graphql")
    )
    return {"queryId": job.id}


@mutation.field("createDimensionValuesQuery")
def resolve_create_dimension_values_query(
    _, info, environmentId: int, groupBy: list[dict[str, Any]], metrics: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if len(groupBy) != 1:
        raise InvalidQuery("createDimensionValuesQuery takes exactly one groupBy item.", field="groupBy")
    names = tuple(_names(metrics))
    if not names:
        raise InvalidQuery(
            "createDimensionValuesQuery needs the metrics whose rows the values come from.", field="metrics"
        )
    column = _group_by(groupBy[0]).column
    service: SemanticLayerService = info.context["service"]
    caller = info.context["caller"]
    request = SemanticLayerRequest(metrics=names, group_by=(GroupBy(column),))
    job = info.context["jobs"].submit(
        _owner(info),
        lambda: service.compile(caller, request),
        lambda: service.dimension_values(caller, names, column, "graphql"),
    )
    return {"queryId": job.id}


@mutation.field("compileSql")
def resolve_compile_sql(_, info, environmentId: int, **params) -> dict[str, Any]:
    return {"sql": info.context["service"].compile(info.context["caller"], _request(**params))}


@mutation.field("cancelQuery")
def resolve_cancel_query(_, info, environmentId: int, queryId: str) -> dict[str, Any]:
    # A running query is not interrupted (the warehouse timeout bounds it); its answer is dropped.
    return {"queryId": info.context["jobs"].cancel(_owner(info), queryId).id}


schema = make_executable_schema(
    load_schema_from_path(str(Path(__file__).with_name("schema.graphql"))), query, mutation, big_int, json_scalar
)

router = APIRouter(tags=["dbt semantic layer"])


def _error(message: str, status: int = 200, code: str | None = None, detail: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"message": message}
    if code:
        error["extensions"] = {"code": code, **({"detail": detail} if detail else {})}
    return JSONResponse({"data": None, "errors": [error]}, status_code=status)


def jobs_of(app) -> QueryJobs:
    if getattr(app.state, "graphql_jobs", None) is None:
        app.state.graphql_jobs = QueryJobs()
    return app.state.graphql_jobs


class GraphQLError(BaseModel):
    message: str
    extensions: dict[str, Any] | None = None


class GraphQLErrorBody(BaseModel):
    """GraphQL's own error shape: what dbt Semantic Layer clients read."""

    data: None = None
    errors: list[GraphQLError]


def _graphql_errors(description: str) -> dict[str, Any]:
    return {"model": GraphQLErrorBody, "description": description}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _graphql_errors("The body is not a JSON object with a `query` string."),
    401: _graphql_errors("No valid API token: `User is not authorized`."),
    403: _graphql_errors("The token lacks the `metrics:read` scope: `User is not authorized`."),
    503: _graphql_errors("The token store cannot be read (the service fails closed)."),
    **error_responses(413),
}


@router.post("/api/graphql", summary="The dbt Semantic Layer GraphQL API", responses=_RESPONSES)
@router.post("/graphql", include_in_schema=False)
async def graphql_endpoint(request: Request) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        return _error("the request body must be a JSON object with 'query' (and 'variables').", 400)
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return _error("the request body must be a JSON object with 'query' (and 'variables').", 400)
    # The audit line says what was asked (the root fields: metrics, dimensions, createQuery, ...)
    # and, below, whether it failed: GraphQL answers 200 either way.
    request.state.audit_query = {
        "operationName": body.get("operationName"),
        "fields": root_fields(body),
        "variables": body.get("variables"),
    }
    service = SemanticLayerService.of_app(request.app.state)
    try:
        caller = service.caller(bearer_token(request))
    except Unauthorized as exc:
        return _error(NOT_AUTHORIZED, 401, "UNAUTHENTICATED", exc.message)
    except Forbidden as exc:
        return _error(NOT_AUTHORIZED, 403, "FORBIDDEN", exc.message)
    except TokenStoreUnavailable as exc:
        return _error(exc.message, 503, "UNAVAILABLE")
    request.state.caller = caller
    jobs = jobs_of(request.app)

    def execute() -> tuple[bool, dict[str, Any]]:
        with service.engine() as engine:
            return graphql_sync(
                schema,
                body,
                context_value={"engine": engine, "service": service, "caller": caller, "jobs": jobs},
                debug=False,
                error_formatter=client_error,
            )

    _, result = await run_in_threadpool(execute)
    if result.get("errors"):
        request.state.audit_query["errors"] = [e.get("message") for e in result["errors"]][:5]
    return JSONResponse(result)


def client_error(error: graphql.GraphQLError, debug: bool = False) -> dict[str, Any]:
    """A GraphQL error as the client sees it: the engine's user-facing message, GraphQL's own
    (a field that does not exist, a missing argument), or, for a fault of the service, a
    request id whose details are in the server log."""
    original = error.original_error
    if original is None or isinstance(original, (MetricsError, graphql.GraphQLError)):
        return format_error(error, debug=False)
    request_id = uuid.uuid4().hex
    log.error("graphql request %s failed", request_id, exc_info=original)
    formatted = format_error(error, debug=False)
    formatted["message"] = (
        f"the service could not answer this request (an internal error); quote request id {request_id}."
    )
    return formatted


def root_fields(body: dict[str, Any]) -> list[str] | None:
    """The root fields of the request's operation (all operations' if it names none), or None
    when the document does not parse (the GraphQL answer then says why)."""
    try:
        document = parse_graphql(body["query"])
    except GraphQLSyntaxError:
        return None
    wanted = body.get("operationName")
    return [
        selection.name.value
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
        and (not wanted or (definition.name and definition.name.value == wanted))
        for selection in definition.selection_set.selections
        if isinstance(selection, FieldNode)
    ]
