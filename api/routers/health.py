"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import ProviderDep
from api.schemas.errors import ErrorDetail
from api.schemas.query import BuildWarning

router = APIRouter(tags=["health"])


class Ready(BaseModel):
    status: str
    build_id: str
    built_at: str | None
    tests_passed: bool | None
    warning: str | None
    warnings: list[BuildWarning] = Field(
        default_factory=list, description="Warn-severity dbt tests that found rows in the served build."
    )


class Unavailable(BaseModel):
    status: str
    error: ErrorDetail


class Live(BaseModel):
    status: str


@router.get("/healthz", response_model=Live)
def healthz() -> dict:
    """The process is up (says nothing about the warehouse)."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Ready,
    responses={
        503: {"model": Unavailable, "description": "The served warehouse cannot answer; `error.message` says why."}
    },
)
def readyz(provider: ProviderDep) -> JSONResponse:
    """Ready when the current build's warehouse opens and answers a query."""
    try:
        build = provider.check_published()
        return JSONResponse(
            {
                "status": "ready",
                "build_id": build.build_id,
                "built_at": build.built_at,
                "tests_passed": build.tests_passed,
                "warning": provider.last_error,
                "warnings": [BuildWarning.of(w).model_dump(mode="json") for w in build.warnings],
            }
        )
    except Exception as exc:  # readiness reports the cause rather than failing the probe with a 500
        return JSONResponse(
            {"status": "unavailable", "error": {"code": "warehouse_unavailable", "message": str(exc)}}, status_code=503
        )
