"""The dbt docs site of the build being served, at /dbt-docs/."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from api.deps import EngineDep
from api.schemas.errors import error_responses
from metrics.errors import NotFound

router = APIRouter(prefix="/dbt-docs", tags=["docs"])

# The files `dbt docs generate` writes that the static site loads; nothing else is served.
_FILES = {
    "index.html": "text/html",
    "manifest.json": "application/json",
    "catalog.json": "application/json",
    "semantic_manifest.json": "application/json",
    "run_results.json": "application/json",
}


@router.get("", include_in_schema=False)
def docs_root() -> RedirectResponse:
    return RedirectResponse("/dbt-docs/")


_RESPONSES = {
    200: {"description": "A file of the docs site.", "content": {"text/html": {}, "application/json": {}}},
    **error_responses(404, 503),
}


@router.get("/", response_class=Response, responses=_RESPONSES)
def docs_index(engine: EngineDep) -> Response:
    return docs_file("index.html", engine)


@router.get("/{name}", response_class=Response, responses=_RESPONSES)
def docs_file(name: str, engine: EngineDep) -> Response:
    if name not in _FILES:
        raise NotFound(f"/dbt-docs/{name} is not part of the docs site; try /dbt-docs/.")
    path = engine.build.directory / name
    if not path.exists():
        raise NotFound(f"this build has no {name}; rebuild with docs enabled.")
    return Response(without_host_paths(str(path), path.stat().st_mtime_ns), media_type=_FILES[name])


@lru_cache(maxsize=len(_FILES) * 2)
def without_host_paths(path: str, mtime_ns: int) -> bytes:
    """A docs file with the server's directories replaced by placeholders: dbt writes absolute
    paths (the project, the landing files in compiled SQL, the build's target and log folders)
    into its artifacts, and they tell a reader of the docs site how the host is laid out.
    Cached per file version (`mtime_ns`): the manifest is a megabyte or more."""
    content = Path(path).read_bytes()
    for directory, placeholder in _host_directories(Path(path).parent):
        content = content.replace(directory.encode(), placeholder.encode())
    return content


def _host_directories(build_dir: Path) -> list[tuple[str, str]]:
    info_path = build_dir / "build.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    named = {
        "<build>": build_dir,
        "<data_dir>": build_dir.parent.parent,
        "<dbt_project>": info.get("dbt_project"),
        "<landing>": info.get("landing"),
        "<home>": Path.home(),
    }
    pairs = []
    for placeholder, directory in named.items():
        if directory and str(directory) not in ("", "/"):
            pairs.append((str(Path(directory).resolve()), placeholder))
            pairs.append((str(directory), placeholder))
    # Longest first, so a directory inside another keeps its own name.
    return sorted(set(pairs), key=lambda pair: -len(pair[0]))
