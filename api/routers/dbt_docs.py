"""The dbt docs site of the build being served, at /dbt-docs/."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from api.deps import EngineDep
from api.schemas.errors import error_responses
from metrics.errors import NotFound

router = APIRouter(prefix="/dbt-docs", tags=["docs"])

# The files `dbt docs generate` writes that the static site loads; nothing else is served.
_FILES = {"index.html": "text/html", "manifest.json": "application/json",
          "catalog.json": "application/json", "semantic_manifest.json": "application/json",
          "run_results.json": "application/json"}


@router.get("", include_in_schema=False)
def docs_root() -> RedirectResponse:
    return RedirectResponse("/dbt-docs/")


_RESPONSES = {200: {"description": "A file of the docs site.", "content": {"text/html": {}, "application/json": {}}},
              **error_responses(404, 503)}


@router.get("/", response_class=FileResponse, responses=_RESPONSES)
def docs_index(engine: EngineDep) -> FileResponse:
    return docs_file("index.html", engine)


@router.get("/{name}", response_class=FileResponse, responses=_RESPONSES)
def docs_file(name: str, engine: EngineDep) -> FileResponse:
    if name not in _FILES:
        raise NotFound(f"/dbt-docs/{name} is not part of the docs site; try /dbt-docs/.")
    path = engine.build.directory / name
    if not path.exists():
        raise NotFound(f"this build has no {name}; rebuild with docs enabled.")
    return FileResponse(path, media_type=_FILES[name])
