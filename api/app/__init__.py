"""The analyst's web app: catalog, metric explorer, experiment readouts and quality pages.

Pages are rendered on the server (Jinja2) from the same engine dependencies as the JSON routes,
so tokens, row policies, the cache and freshness apply to them unchanged; the explorer's chart
asks `/v1/query` itself from the browser, so what it plots is by construction what the API
answers. `install(app)` adds the routes and serves the app's own files and the chart library.
"""

from __future__ import annotations

from api.app.pages import install

__all__ = ["install"]
