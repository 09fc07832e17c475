"""The MCP server (official `mcp` SDK): tool registration and the two transports.

`build_server(gate)` registers the tools; `run_stdio` serves them on stdin/stdout
(`northstar mcp`); `HttpTransport` serves them as streamable HTTP inside the FastAPI app at
`/mcp`, stateless (every POST is a whole exchange, so each request is authenticated on its own
and no session outlives a revoked token) with JSON responses.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import Field
from starlette.types import Receive, Scope, Send

from api.auth import Forbidden, authenticate, bearer_token
from api.errors import error_body, headers_for, status_for
from api.mcp import descriptions as text
from api.mcp import tools
from api.mcp.gate import CALLER_KEY, Gate, ToolRefused
from api.mcp.tools import GroupByParam, OrderByParam
from metrics.errors import MetricsError
from metrics.scorecards.common import Period

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
INSTRUCTIONS = (
    "northstar answers product-metric questions from governed dbt definitions. Find metric names with "
    "list_metrics, their dimensions with get_dimensions, then call query_metrics. Quality, alerts and "
    "experiments have their own tools. Answers are capped in rows; narrow a query rather than paging."
)

Metrics = Annotated[list[str], Field(description="Metric names from list_metrics.")]
GroupBy = Annotated[list[GroupByParam | str] | None, Field(description="Dimensions, time dimensions or entities.")]
OrderByItems = Annotated[list[OrderByParam | str] | None, Field(description="Metrics or group_by items to sort by.")]
Where = Annotated[str | None, Field(description="A filter such as {{ Dimension('user__country') }} = 'DE'.")]
Limit = Annotated[int | None, Field(ge=0, description="At most this many rows.")]
Bound = Annotated[str | None, Field(description="metric_time bound, yyyy-mm-dd (start inclusive, end exclusive).")]
Search = Annotated[str | None, Field(description="Substring to filter by.")]


def _request(ctx: Context) -> Any | None:
    try:
        return ctx.request_context.request
    except ValueError:  # no request context: called outside a transport (never over stdio/HTTP)
        return None


def build_server(gate: Gate) -> MCPServer:
    server = MCPServer("northstar", instructions=INSTRUCTIONS, version="0.1.0")

    def run(ctx: Context, tool: str, arguments: dict[str, Any], work, scope: str = "metrics:read"):
        try:
            return gate.call(_request(ctx), tool, arguments, work, scope)
        except ToolRefused as exc:
            raise ToolError(str(exc)) from None

    def query_arguments(**kwargs) -> dict[str, Any]:
        return {
            k: (
                [i if isinstance(i, str) else i.model_dump(exclude_defaults=True) for i in v]
                if isinstance(v, list) and k in ("group_by", "order_by")
                else v
            )
            for k, v in kwargs.items()
            if v is not None
        }

    @server.tool(description=text.LIST_METRICS, annotations=READ_ONLY)
    def list_metrics(
        ctx: Context,
        search: Annotated[
            str | list[str] | None, Field(description="Substring(s) of the name, label or description.")
        ] = None,
    ) -> dict[str, Any]:
        return run(
            ctx,
            "list_metrics",
            query_arguments(search=search),
            lambda engine, defs: {"metrics": tools.list_metrics(defs, search)},
        )

    @server.tool(description=text.LIST_SAVED_QUERIES, annotations=READ_ONLY)
    def list_saved_queries(ctx: Context, search: Search = None) -> dict[str, Any]:
        return run(
            ctx,
            "list_saved_queries",
            query_arguments(search=search),
            lambda engine, defs: {"saved_queries": tools.list_saved_queries(defs, search)},
        )

    @server.tool(description=text.GET_DIMENSIONS, annotations=READ_ONLY)
    def get_dimensions(ctx: Context, metrics: Metrics, search: Search = None) -> dict[str, Any]:
        return run(
            ctx,
            "get_dimensions",
            query_arguments(metrics=metrics, search=search),
            lambda engine, defs: {"dimensions": tools.get_dimensions(defs, metrics, search)},
        )

    @server.tool(description=text.GET_ENTITIES, annotations=READ_ONLY)
    def get_entities(ctx: Context, metrics: Metrics, search: Search = None) -> dict[str, Any]:
        return run(
            ctx,
            "get_entities",
            query_arguments(metrics=metrics, search=search),
            lambda engine, defs: {"entities": tools.get_entities(defs, metrics, search)},
        )

    @server.tool(description=text.GET_DIMENSION_VALUES, annotations=READ_ONLY)
    def get_dimension_values(
        ctx: Context,
        dimension: Annotated[str, Field(description="A dimension name, e.g. user__country.")],
        metrics: Annotated[list[str] | None, Field(description="Read the values these metrics see.")] = None,
        limit: Annotated[
            int, Field(ge=1, le=1000, description="At most this many values.")
        ] = tools.DEFAULT_DIMENSION_VALUES,
    ) -> dict[str, Any]:
        return run(
            ctx,
            "get_dimension_values",
            query_arguments(dimension=dimension, metrics=metrics, limit=limit),
            lambda engine, defs: tools.get_dimension_values(engine, defs, dimension, metrics, limit),
        )

    @server.tool(
        description=text.QUERY_METRICS.format(max_rows=gate.max_rows, where_syntax=text.WHERE_SYNTAX),
        annotations=READ_ONLY,
    )
    def query_metrics(
        ctx: Context,
        metrics: Metrics,
        group_by: GroupBy = None,
        order_by: OrderByItems = None,
        where: Where = None,
        limit: Limit = None,
        start: Bound = None,
        end: Bound = None,
    ) -> dict[str, Any]:
        arguments = query_arguments(
            metrics=metrics, group_by=group_by, order_by=order_by, where=where, limit=limit, start=start, end=end
        )

        def work(engine, defs):
            query = tools.metric_query(metrics, group_by, order_by, where, limit, start, end)
            return tools.result_body(engine.query(query), gate.max_rows)

        return run(ctx, "query_metrics", arguments, work)

    @server.tool(description=text.GET_METRICS_COMPILED_SQL, annotations=READ_ONLY)
    def get_metrics_compiled_sql(
        ctx: Context,
        metrics: Metrics,
        group_by: GroupBy = None,
        order_by: OrderByItems = None,
        where: Where = None,
        limit: Limit = None,
        start: Bound = None,
        end: Bound = None,
    ) -> dict[str, Any]:
        arguments = query_arguments(
            metrics=metrics, group_by=group_by, order_by=order_by, where=where, limit=limit, start=start, end=end
        )
        return run(
            ctx,
            "get_metrics_compiled_sql",
            arguments,
            lambda engine, defs: {
                "sql": engine.compile(
                    tools.metric_query(metrics, group_by, order_by, where, limit, start, end)
                ).inline_sql
            },
        )

    @server.tool(description=text.EXPLAIN_QUERY, annotations=READ_ONLY)
    def explain_query(
        ctx: Context,
        metrics: Metrics,
        group_by: GroupBy = None,
        order_by: OrderByItems = None,
        where: Where = None,
        limit: Limit = None,
        start: Bound = None,
        end: Bound = None,
    ) -> dict[str, Any]:
        arguments = query_arguments(
            metrics=metrics, group_by=group_by, order_by=order_by, where=where, limit=limit, start=start, end=end
        )

        def work(engine, defs):
            compiled = engine.compile(tools.metric_query(metrics, group_by, order_by, where, limit, start, end))
            return {"explanation": compiled.explanation, "sql": compiled.inline_sql}

        return run(ctx, "explain_query", arguments, work)

    @server.tool(description=text.GET_EXPERIMENT_READOUT, annotations=READ_ONLY)
    def get_experiment_readout(
        ctx: Context,
        experiment_id: Annotated[str, Field(description="The experiment's id.")],
        metrics: Annotated[
            list[str] | None, Field(description="Experiment metrics (default: the standard four).")
        ] = None,
        group_by: Annotated[list[str] | None, Field(description="User slices: platform, country, plan.")] = None,
        cuped: bool = True,
        sequential: bool = False,
    ) -> dict[str, Any]:
        from api.routers import experiments

        def work(engine, defs):
            answer = experiments.readout(
                experiment_id,
                engine,
                metrics=",".join(metrics) if metrics else experiments.DEFAULT_METRICS,
                group_by=",".join(group_by or ()),
                cuped=cuped,
                pre_days=14,
                correction="none",
                sequential=sequential,
                alpha=0.05,
            )
            return answer.model_dump(mode="json")

        return run(
            ctx,
            "get_experiment_readout",
            query_arguments(
                experiment_id=experiment_id, metrics=metrics, group_by=group_by, cuped=cuped, sequential=sequential
            ),
            work,
            scope="experiments:read",
        )

    @server.tool(description=text.GET_QUALITY_SCORECARD, annotations=READ_ONLY)
    def get_quality_scorecard(
        ctx: Context,
        period: Annotated[Period, Field(description="day, week or month.")] = "week",
        platform: Annotated[str | None, Field(description="Scope platform KPIs to one platform.")] = None,
        start: Bound = None,
        end: Bound = None,
    ) -> dict[str, Any]:
        from api.routers import quality

        def work(engine, defs):
            card = quality.quality(engine, period=period, start=start, end=end, platform=platform)
            return card.model_dump(mode="json")

        return run(
            ctx, "get_quality_scorecard", query_arguments(period=period, platform=platform, start=start, end=end), work
        )

    @server.tool(description=text.LIST_ALERTS, annotations=READ_ONLY)
    def list_alerts(
        ctx: Context,
        metric: Annotated[str | None, Field(description="Only this metric's alerts.")] = None,
        since: Bound = None,
        until: Bound = None,
        limit: Annotated[int, Field(ge=1, le=1000, description="At most this many alerts, newest first.")] = 50,
    ) -> dict[str, Any]:
        from api.routers import alerts

        def work(engine, defs):
            found = alerts.list_alerts(engine, metric=metric, since=since, until=until).alerts
            newest = sorted(found, key=lambda a: (a.date, a.metric), reverse=True)
            body: dict[str, Any] = {
                "alerts": [a.model_dump(mode="json") for a in newest[:limit]],
                "total": len(found),
                "truncated": len(found) > limit,
            }
            if body["truncated"]:
                body["note"] = (
                    f"{len(found)} alerts match; the newest {limit} are shown. Narrow with metric, since or until."
                )
            return body

        return run(ctx, "list_alerts", query_arguments(metric=metric, since=since, until=until, limit=limit), work)

    return server


def serve_stdio(settings, token: str | None) -> None:
    """Serve the tools on stdin/stdout until the client closes them (`northstar mcp`).

    The token is checked before anything is served (a missing or revoked one is one clear
    error) and again on every call; stdout carries only the protocol.
    """
    import anyio

    from api.auth import AuditLog, ConcurrencyLimiter
    from core.tokens import TokenStore
    from metrics.engine import EngineProvider, Limits

    tokens = TokenStore.in_dir(settings.data_dir)
    authenticate(tokens, token, settings.open)
    provider = EngineProvider(
        settings.warehouse_path,
        limits=Limits(query_timeout_s=settings.query_timeout_s, max_result_rows=settings.max_result_rows),
        postgres_dsn=settings.postgres_dsn_text,
    )
    provider.refresh(force=True)
    gate = Gate(
        tokens,
        provider,
        ConcurrencyLimiter(settings.max_concurrent_per_token),
        AuditLog(settings.audit_log_path, settings.audit_log_max_bytes, settings.audit_log_files),
        open_mode=settings.open,
        stdio_token=token,
        max_rows=settings.mcp_max_rows,
    )
    try:
        anyio.run(build_server(gate).run_stdio_async)
    finally:
        provider.close()


class HttpTransport:
    """The streamable-HTTP transport as an ASGI app behind the HTTP API's bearer tokens.

    Authentication happens here, per HTTP request, with the API's own rules (`authenticate`,
    the `metrics:read` scope to enter at all); the admitted caller is left on the request's
    state, where the audit middleware and the tools find it. Per-tool scopes and the row
    policy are applied by the gate.
    """

    def __init__(self, gate: Gate, tokens, open_mode) -> None:
        self.gate = gate
        self.tokens = tokens
        self.open_mode = open_mode  # a callable: settings may change between requests in tests
        self.server = build_server(gate)
        # The app's HostAllowList middleware guards Host headers; the SDK's own check would
        # refuse every name but loopback.
        self.manager = StreamableHTTPSessionManager(
            app=self.server._lowlevel_server,
            stateless=True,
            json_response=True,
            security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )

    @asynccontextmanager
    async def running(self):
        async with self.manager.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        request = Request(scope, receive)
        try:
            caller = authenticate(self.tokens, bearer_token(request), self.open_mode())
            if caller.token is not None and not caller.token.allows("metrics:read"):
                raise Forbidden(
                    f"token {caller.token.name!r} has scopes {', '.join(caller.token.scopes)}; "
                    "the MCP endpoint needs 'metrics:read'.",
                    needed_scope="metrics:read",
                )
        except MetricsError as exc:
            response = JSONResponse(
                error_body(exc.code, exc.message, **exc.details), status_code=status_for(exc), headers=headers_for(exc)
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})[CALLER_KEY] = caller
        await self.manager.handle_request(scope, receive, send)


class McpRoute:
    """The `/mcp` endpoint of the FastAPI app: forwards to the transport its lifespan started."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport: HttpTransport | None = getattr(scope["app"].state, "mcp", None)
        if transport is None:  # pragma: no cover - only before the lifespan has run
            from starlette.responses import JSONResponse

            await JSONResponse(error_body("unavailable", "the MCP endpoint is starting."), status_code=503)(
                scope, receive, send
            )
            return
        await transport(scope, receive, send)


def mount(app) -> None:
    """Serve MCP's streamable HTTP at `/mcp` (started by `http_transport` in the lifespan)."""
    from starlette.routing import Route

    app.router.routes.append(Route("/mcp", endpoint=McpRoute(), include_in_schema=False))


@asynccontextmanager
async def http_transport(app, settings):
    """Start the `/mcp` transport for the app's lifespan, over the app's own token store,
    engines, limiter and audit log."""
    state = app.state
    gate = Gate(
        state.tokens, state.engines, state.limiter, state.audit, open_mode=settings.open, max_rows=settings.mcp_max_rows
    )
    state.mcp = HttpTransport(gate, state.tokens, lambda: settings.open)
    async with state.mcp.running():
        yield
