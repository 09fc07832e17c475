"""Request-scoped dependencies: the settings and the engine of the current build."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from core.settings import Settings
from metrics.engine import EngineProvider, Limits
from metrics.policy import RestrictedEngine
from metrics.protocols import Engine


def open_engines(settings: Settings) -> EngineProvider:
    """The engine provider of the served warehouse, with the settings' guardrails. Opened
    even without a build yet: `last_error` says why, and /readyz reports it until one lands."""
    engines = EngineProvider(
        settings.warehouse_path,
        limits=Limits(
            query_timeout_s=settings.query_timeout_s,
            max_result_rows=settings.max_result_rows,
            memory_limit=settings.query_memory_limit,
            threads=settings.query_threads or None,
        ),
        postgres_dsn=settings.postgres_dsn_text,
    )
    try:
        engines.refresh(force=True)
    except Exception as exc:  # start anyway
        engines.last_error = str(exc)
    return engines


async def get_provider(request: Request) -> EngineProvider:
    return request.app.state.engines


async def get_engine(request: Request) -> AsyncIterator[Engine]:
    # Held for the whole request so a build swapped in meanwhile cannot close it under us.
    # A caller with a row-level policy (set by api.auth.require, which runs first) sees the
    # engine through it. async: checking for a new build is a readlink; only opening one
    # (seconds) goes to a worker thread, so most requests make no thread hop here.
    caller = getattr(request.state, "caller", None)
    engines: EngineProvider = request.app.state.engines
    if not engines.is_current():
        await run_in_threadpool(engines.refresh)
    with engines.engine(refresh=False) as engine:
        policy = caller.policy if caller is not None else None
        yield RestrictedEngine(engine, policy) if policy else engine


async def get_app_settings(request: Request) -> Settings:
    # async: nothing to wait for, so no worker-thread hop on every request.
    return request.app.state.settings


# The build's engine, or for a caller with a row-level policy that engine seen through it:
# either way an `Engine`, so a route uses only what both answer.
EngineDep = Annotated[Engine, Depends(get_engine)]
ProviderDep = Annotated[EngineProvider, Depends(get_provider)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
