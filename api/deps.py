"""Request-scoped dependencies: the settings and the engine of the current build."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from metrics.engine import EngineProvider, MetricsEngine
from metrics.policy import RestrictedEngine
from northstar.settings import Settings


async def get_provider(request: Request) -> EngineProvider:
    return request.app.state.engines


def get_engine(request: Request) -> Iterator[MetricsEngine]:
    # Held for the whole request so a build swapped in meanwhile cannot close it under us.
    # A caller with a row-level policy (set by api.auth.require, which runs first) sees the
    # engine through it.
    caller = getattr(request.state, "caller", None)
    with request.app.state.engines.engine() as engine:
        policy = caller.policy if caller is not None else None
        yield RestrictedEngine(engine, policy) if policy else engine


async def get_app_settings(request: Request) -> Settings:
    # async: nothing to wait for, so no worker-thread hop on every request.
    return request.app.state.settings


EngineDep = Annotated[MetricsEngine, Depends(get_engine)]
ProviderDep = Annotated[EngineProvider, Depends(get_provider)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
