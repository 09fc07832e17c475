"""Response bodies of the catalog routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Unavailable(BaseModel):
    reason: str = Field(description="Why this build cannot serve the metric (from its dry run).")
    group_by: str | None = Field(default=None, description="Only when grouped by this item; null: at all.")


class MetricSummary(BaseModel):
    name: str
    label: str
    description: str
    type: str
    dimensions: list[str]
    grains: list[str]
    owner: str | None = None
    servable: bool = Field(
        default=True,
        description="False when this build cannot serve the metric at all; a query of it answers 422 with the reason.",
    )
    unavailable: list[Unavailable] = Field(default_factory=list)


class MetricsResponse(BaseModel):
    metrics: list[MetricSummary]


class MetricDetail(MetricSummary):
    qualified_dimensions: list[str]
    models: list[str]
    definition: dict[str, Any]
    meta: dict[str, Any]


class DimensionSummary(BaseModel):
    name: str
    kind: str
    description: str | None
    metrics: list[str]
    qualified_names: list[str]


class DimensionsResponse(BaseModel):
    dimensions: list[DimensionSummary]


class SavedQuerySummary(BaseModel):
    name: str
    label: str | None
    description: str | None
    metrics: list[str]
    group_by: list[str]
    where: list[str]


class SavedQueriesResponse(BaseModel):
    saved_queries: list[SavedQuerySummary]
