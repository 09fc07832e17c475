"""The HTTP application: `create_app()` wires routers, errors and the engine provider."""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from api import app as web_app
from api import errors
from api.answer_cache import AnswerCache, StoredAnswers
from api.auth import AuditLog, AuditMiddleware, ConcurrencyLimiter, require
from api.deps import open_engines
from api.graphql import router as graphql
from api.guards import BodySizeLimit, HostAllowList, SecurityHeaders
from api.mcp import server as mcp
from api.routers import (
    alerts,
    catalog,
    dbt_docs,
    experiments,
    health,
    launches,
    notifications,
    pages,
    quality,
    query,
    releases,
)
from api.schemas.errors import DATA_ROUTE_ERRORS, error_responses
from api.sql_endpoint import process as sql_process
from core.settings import Settings, get_settings
from core.tokens import TokenStore


def create_app(
    settings: Settings | None = None, sql_socket: socket.socket | None = None, flight_server=None
) -> FastAPI:
    """The application; `sql_socket` is the SQL endpoint's socket and `flight_server` the Flight
    SQL server when the caller has bound them already (`northstar serve` binds every port
    before it announces anything)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.settings = settings
        app.state.tokens = TokenStore.in_dir(settings.data_dir)
        app.state.limiter = ConcurrencyLimiter(settings.max_concurrent_per_token)
        app.state.audit = AuditLog(settings.audit_log_path, settings.audit_log_max_bytes, settings.audit_log_files)
        app.state.answers = AnswerCache()
        app.state.engines = open_engines(settings)
        app.state.sql_endpoint = app.state.sql_process = None
        if settings.sql_port and sql_socket is not None and sql_process.separate(settings):
            # A process of its own: SQL clients never hold up HTTP requests, not even for the GIL.
            app.state.sql_process = sql_process.SqlEndpointProcess(settings, sql_socket)
            app.state.sql_process.start()
        elif settings.sql_port:
            from api.sql_endpoint.server import Authenticator, SqlEndpoint, SqlLimits

            app.state.sql_endpoint = SqlEndpoint(
                app.state.engines,
                Authenticator.from_settings(settings, tokens=app.state.tokens),
                SqlLimits.from_settings(settings),
                app.state.limiter,
                audit=app.state.audit,
            )
            # Its own thread and event loop: SQL clients never hold up HTTP requests.
            await asyncio.to_thread(
                app.state.sql_endpoint.start_in_thread, settings.host, settings.sql_port, sql_socket
            )
        app.state.flight_server = flight_server
        if flight_server is None and settings.flight_port:
            from api.flight.server import FlightSqlServer, tls_of

            app.state.flight_server = FlightSqlServer(settings.host, settings.flight_port, tls_of(settings))
        if app.state.flight_server is not None:
            from api.dbt_sl.service import SemanticLayerService

            app.state.flight_server.attach(SemanticLayerService.of_app(app.state))
        async with mcp.http_transport(app, settings):
            yield
        if app.state.flight_server is not None:
            app.state.flight_server.shutdown()
        if getattr(app.state, "graphql_jobs", None) is not None:
            app.state.graphql_jobs.close()
        if app.state.sql_endpoint is not None:
            await asyncio.to_thread(app.state.sql_endpoint.stop_thread)
        if app.state.sql_process is not None:
            await asyncio.to_thread(app.state.sql_process.stop)
        app.state.engines.close()

    app = FastAPI(
        title="northstar",
        version="0.1.0",
        summary="Governed product metrics from the dbt semantic layer.",
        lifespan=lifespan,
        # A slash-redirect would be an absolute URL built from the request's Host header: a
        # path with a stray slash is a 404 naming the route instead.
        redirect_slashes=False,
        # /docs and /redoc are served by api/routers/pages.py with local assets, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    # Innermost: a repeated /v1/query is answered from its stored bytes, inside every guard and
    # the audit log.
    app.add_middleware(StoredAnswers)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        HostAllowList,
        allowed_hosts=settings.allowed_host_names,
        is_open=lambda: settings.open or not app.state.tokens.requires_tokens(),
    )
    app.add_middleware(SecurityHeaders)
    app.add_middleware(errors.RequestIdMiddleware)  # outermost: every answer has an id
    metrics_read = [Depends(require("metrics:read"))]
    for router in (catalog.router, query.router, quality.router, releases.router, launches.router, alerts.router):
        app.include_router(router, dependencies=metrics_read, responses=DATA_ROUTE_ERRORS)
    # The dbt Semantic Layer GraphQL API authenticates itself: refusals are GraphQL errors
    # with the message the dbt clients recognise.
    app.include_router(graphql.router)
    app.include_router(
        experiments.router, dependencies=[Depends(require("experiments:read"))], responses=DATA_ROUTE_ERRORS
    )
    # Delivery status is for operators: titles carry numbers no row policy has narrowed.
    app.include_router(notifications.router, dependencies=[Depends(require("admin"))], responses=DATA_ROUTE_ERRORS)
    # Open: liveness/readiness for probes, and the dbt docs site (definitions, no data rows).
    # The body-size guard answers 413 in front of these too.
    app.include_router(health.router, responses=error_responses(413))
    app.include_router(dbt_docs.router, responses=error_responses(413))
    app.include_router(pages.router)
    # MCP (streamable HTTP) for AI assistants: bearer tokens, scopes and row policies as above.
    mcp.mount(app)
    pages.mount_assets(app)
    web_app.install(app)  # the analyst's pages: catalog at /, explorer, experiments, quality
    return app
