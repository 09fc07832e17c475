"""The API reference for people (Swagger UI at /docs, ReDoc at /redoc), served with every
asset by this service. The app's pages (the catalog at /, ...) are in api/app/.

FastAPI's own /docs and /redoc load their scripts from a public CDN, so they are blank on a
machine without internet access or behind a network that blocks CDNs. The same Swagger UI and
ReDoc builds ship inside the `fastapi-offline` package (a registry package, nothing copied into
this repository); they are mounted at /assets/api-docs/ and the pages point there.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

API_DOCS_ASSETS = "/assets/api-docs"

router = APIRouter(include_in_schema=False)


def mount_assets(app: FastAPI) -> None:
    """Serve the Swagger UI and ReDoc builds of the installed `fastapi-offline` package."""
    app.mount(API_DOCS_ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="api-docs-assets")


@router.get("/favicon.ico", response_class=FileResponse)
def favicon() -> FileResponse:
    return FileResponse(str(files("fastapi_offline") / "static" / "favicon.png"), media_type="image/png")


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        oauth2_redirect_url="/docs/oauth2-redirect",
        swagger_js_url=f"{API_DOCS_ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{API_DOCS_ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{API_DOCS_ASSETS}/favicon.png",
    )


@router.get("/docs/oauth2-redirect", response_class=HTMLResponse)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


# ReDoc's sidebar shows its maker's logo from the maker's CDN (and hides it when that fails).
# The page's policy keeps the browser from asking: nothing on this page leaves the service.
_REDOC_POLICY = "frame-ancestors 'none'; img-src 'self' data:; connect-src 'self'"


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    page = get_redoc_html(
        openapi_url=request.app.openapi_url,
        title=f"{request.app.title} API",
        redoc_js_url=f"{API_DOCS_ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{API_DOCS_ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    page.headers["content-security-policy"] = _REDOC_POLICY
    return page
