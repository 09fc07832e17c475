"""Catalog routes: the governed metrics, their dimensions and saved queries."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import EngineDep
from api.schemas.catalog import (
    DimensionsResponse,
    DimensionSummary,
    MetricDetail,
    MetricsResponse,
    MetricSummary,
    SavedQueriesResponse,
    SavedQuerySummary,
    Unavailable,
)

router = APIRouter(prefix="/v1", tags=["catalog"])


@router.get("/metrics", response_model=MetricsResponse)
def list_metrics(engine: EngineDep) -> MetricsResponse:
    return MetricsResponse(
        metrics=[
            MetricSummary(
                name=m.name,
                label=m.label,
                description=m.description,
                type=m.type,
                dimensions=list(m.dimensions),
                grains=list(m.grains),
                owner=m.owner,
                servable=not any(u["group_by"] is None for u in m.unavailable),
                unavailable=[Unavailable(**u) for u in m.unavailable],
            )
            for m in engine.catalog().values()
        ]
    )


@router.get("/metrics/{name}", response_model=MetricDetail)
def get_metric(name: str, engine: EngineDep) -> MetricDetail:
    m = engine.metric(name)  # an unknown name in the path: 404 (api/errors.py)
    return MetricDetail(
        name=m.name,
        label=m.label,
        description=m.description,
        type=m.type,
        dimensions=list(m.dimensions),
        grains=list(m.grains),
        owner=m.owner,
        servable=not any(u["group_by"] is None for u in m.unavailable),
        unavailable=[Unavailable(**u) for u in m.unavailable],
        qualified_dimensions=list(m.qualified_dimensions),
        models=list(m.models),
        definition=m.definition,
        meta=m.meta,
    )


@router.get("/dimensions", response_model=DimensionsResponse)
def list_dimensions(engine: EngineDep) -> DimensionsResponse:
    return DimensionsResponse(
        dimensions=[
            DimensionSummary(
                name=d.name,
                kind=d.kind,
                description=d.description,
                metrics=list(d.metrics),
                qualified_names=list(d.qualified_names),
            )
            for d in engine.dimensions()
        ]
    )


@router.get("/saved-queries", response_model=SavedQueriesResponse)
def list_saved_queries(engine: EngineDep) -> SavedQueriesResponse:
    return SavedQueriesResponse(
        saved_queries=[
            SavedQuerySummary(
                name=q.name,
                label=q.label,
                description=q.description,
                metrics=list(q.metrics),
                group_by=list(q.group_by),
                where=list(q.where),
            )
            for q in engine.saved_queries()
        ]
    )
