"""The app's pages. Each page asks the engine through the same dependencies as the JSON
routes (`api.auth.require`, `api.deps.get_engine`), and where a JSON route computes what the
page shows (readouts, scorecards, alerts) the page calls that route's function, so a page
and the API cannot disagree."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from importlib.metadata import PackageNotFoundError, files
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from api.app import session
from api.auth import Caller, Forbidden, TooManyRequests, Unauthorized, require
from api.deps import EngineDep
from api.errors import status_for
from api.routers import alerts as alerts_route
from api.routers import experiments as experiments_route
from api.routers import launches as launches_route
from api.routers import quality as quality_route
from api.routers import releases as releases_route
from metrics.errors import MetricsError, UnknownMetric
from metrics.query.request import MetricQuery
from metrics.stats.srm import check_srm

HERE = Path(__file__).resolve().parent
STATIC = "/assets/app"
CHART_LIB = "/assets/uplot"
TEMPLATES = Jinja2Templates(directory=HERE / "templates")

# Everything the pages load comes from this service; no inline script runs (page data travels
# in <script type="application/json"> blocks, which are not executed).
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def chart_library_dir() -> Path:
    """uPlot's build as shipped inside the `metaflow-card-uplot` wheel (see pyproject.toml)."""
    try:
        found = [f for f in files("metaflow-card-uplot") or () if f.name == "uPlot.iife.min.js"]
    except PackageNotFoundError:
        found = []
    if not found:
        raise RuntimeError(
            "the chart library is missing: pip install metaflow-card-uplot (a dependency "
            "of northstar; `make run` installs it)"
        )
    return Path(str(found[0].locate())).parent


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(STATIC, StaticFiles(directory=HERE / "static"), name="app-assets")
    app.mount(CHART_LIB, StaticFiles(directory=chart_library_dir()), name="chart-library")

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?{_query({'next': target})}", status_code=303)

    @app.exception_handler(PageError)
    async def page_error(request: Request, exc: PageError) -> Response:
        return render(request, "error.html", {"status": exc.status, "message": exc.message}, status_code=exc.status)


# -- who is asking ---------------------------------------------------------------------------


class SignInNeeded(Exception):
    """No token and no valid session, on a service that has tokens: show the sign-in form."""


class PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def page_caller(scope: str) -> Callable[[Request], AsyncIterator[Caller]]:
    """`api.auth.require(scope)` for pages: a missing or dead session sends the browser to the
    sign-in form instead of answering 401; a scope the token lacks is a page that says so."""
    inner = require(scope)

    async def dependency(request: Request) -> AsyncIterator[Caller]:
        try:
            caller = await anext(inner_run := inner(request))
        except Unauthorized:
            raise SignInNeeded() from None
        except (Forbidden, TooManyRequests) as exc:
            raise PageError(status_for(exc), exc.message) from None
        try:
            yield caller
        finally:
            await anext(inner_run, None)  # releases the concurrency slot

    return dependency


MetricsReader = Annotated[Caller, Depends(page_caller("metrics:read"))]
ExperimentsReader = Annotated[Caller, Depends(page_caller("experiments:read"))]


def _query(params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    settings = request.app.state.settings
    caller: Caller | None = getattr(request.state, "caller", None)
    signed_in = session.session_token(request) is not None
    response = TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "title": request.app.title,
            "path": request.url.path,
            "caller": caller,
            "signed_in": signed_in,
            "restriction": caller.policy.description if caller is not None and caller.policy else None,
            "sql_url": (f"postgresql://{settings.host}:{settings.sql_port}/northstar" if settings.sql_port else None),
            "static": STATIC,
            "chart_lib": CHART_LIB,
            **context,
        },
        status_code=status_code,
    )
    response.headers["content-security-policy"] = PAGE_POLICY
    response.headers["cache-control"] = "no-store"  # pages carry a caller's rows
    # Same-origin requests keep their Origin (a no-referrer page's form posts say `Origin: null`,
    # and sign-in checks Origin); other sites still get no referrer.
    response.headers["referrer-policy"] = "same-origin"
    return response


def guarded(call: Callable[[], Any]) -> Any:
    """Run a route function; an engine error becomes an error page with the API's status."""
    try:
        return call()
    except MetricsError as exc:
        raise PageError(status_for(exc), exc.message) from None


# -- catalog ---------------------------------------------------------------------------------


def _marks(meta: dict[str, Any]) -> dict[str, Any]:
    tags = meta.get("tags") or []
    groups = meta.get("groups") or ([meta["group"]] if meta.get("group") else [])
    return {
        "tags": [str(t) for t in (tags if isinstance(tags, list) else [tags])],
        "groups": [str(g) for g in groups],
        "certified": bool(meta.get("certified")),
        "deprecated": meta.get("deprecated"),
        "slo": meta.get("slo"),
    }


def _slo_text(slo: Any) -> str | None:
    if not isinstance(slo, dict) or "target" not in slo:
        return None
    better = "at most" if slo.get("direction") == "lower_is_better" else "at least"
    per = f" per {slo['per_days']} days" if slo.get("per_days") else ""
    warn = f" (warn at {slo['warn']})" if "warn" in slo else ""
    return f"{better} {slo['target']}{per}{warn}"


def _freshness(request: Request, names: list[str]) -> dict[str, dict[str, Any]]:
    """Newest data and test status of each metric's models: what `/v1/query` reports in its
    `meta` for that metric (definitions and build facts; no rows)."""
    out: dict[str, dict[str, Any]] = {}
    with request.app.state.engines.engine() as engine:
        for name in names:
            try:
                fresh = engine.freshness(engine.plan(MetricQuery(metrics=(name,))))
            except MetricsError:  # some metrics (cumulative ones) are only defined over time
                try:
                    fresh = engine.freshness(engine.plan(MetricQuery(metrics=(name,), group_by=("metric_time__day",))))
                except MetricsError:
                    continue
            newest = fresh.newest_metric_time
            out[name] = {
                "newest": newest.date().isoformat() if hasattr(newest, "date") else newest,
                "tests_passed": fresh.tests_passed,
            }
    return out


@router.get("/", response_class=HTMLResponse)
def catalog_page(request: Request, caller: MetricsReader, engine: EngineDep) -> HTMLResponse:
    catalog = engine.catalog()
    freshness = _freshness(request, list(catalog))
    metrics = []
    for m in catalog.values():
        marks = _marks(m.meta)
        metrics.append(
            {
                **marks,
                "name": m.name,
                "label": m.label,
                "description": m.description.strip(),
                "type": m.type,
                "owner": m.owner,
                "models": list(m.models),
                "slo": _slo_text(marks["slo"]),
                **freshness.get(m.name, {"newest": None, "tests_passed": None}),
            }
        )
    kinds = {d.name: d.kind for d in engine.dimensions()}
    saved = [
        {
            "name": q.name,
            "label": q.label,
            "description": q.description,
            "metrics": list(q.metrics),
            "group_by": list(q.group_by),
            "href": _saved_query_href(q, kinds),
        }
        for q in engine.saved_queries()
    ]
    return render(
        request,
        "catalog.html",
        {
            "metrics": metrics,
            "saved_queries": saved,
            "owners": sorted({m["owner"] for m in metrics if m["owner"]}),
            "groups": sorted({g for m in metrics for g in m["groups"] + m["tags"]}),
            "types": sorted({m["type"] for m in metrics}),
        },
    )


def _saved_query_href(query, kinds: dict[str, str]) -> str:
    """The explorer of a saved query's first metric at the query's grain and first slice."""
    state: dict[str, Any] = {"range": "all"}
    for name in query.group_by:
        if name.startswith("metric_time__"):
            state["grain"] = name.removeprefix("metric_time__")
        elif kinds.get(name.rsplit("__", 1)[-1]) == "categorical" and "slice" not in state:
            state["slice"] = name.rsplit("__", 1)[-1]  # event__platform -> platform
    if len(query.metrics) > 1 and "slice" not in state:
        state["metric2"] = query.metrics[1]
    return f"/metrics/{query.metrics[0]}?{_query(state)}"


# -- metric explorer -------------------------------------------------------------------------


def _plain_definition(info, catalog) -> list[str]:
    d = info.definition
    label = lambda name: catalog[name].label if name in catalog else name  # noqa: E731
    lines = []
    if info.type == "simple":
        lines.append(
            f"The {d.get('agg', 'aggregate')} of {d.get('expr') or d.get('measure')} "
            f"(measure {d.get('measure')}) in semantic model {d.get('semantic_model')}, "
            f"on its time {d.get('metric_time')}."
        )
        if "fill_nulls_with" in d:
            lines.append(f"A period with no rows counts as {d['fill_nulls_with']}.")
    elif info.type == "ratio":
        lines.append(
            f"{label(d['numerator'])} divided by {label(d['denominator'])}, each computed at the "
            "chosen grain and then divided (never summed across periods); no value where the "
            "denominator is zero or missing."
        )
    elif info.type == "derived":
        lines.append(f"The expression {d.get('expr')} over {', '.join(d.get('metrics', []))}.")
        for alias, offset in (d.get("offsets") or {}).items():
            lines.append(f"{alias} is taken {offset} earlier.")
    elif info.type == "cumulative":
        if d.get("window"):
            lines.append(f"Measure {d.get('measure')} over a trailing window of {d['window']}.")
        elif d.get("grain_to_date"):
            lines.append(f"Measure {d.get('measure')} accumulated {d['grain_to_date']}-to-date.")
        else:
            lines.append(f"Measure {d.get('measure')} accumulated over all time.")
    elif info.type == "conversion":
        lines.append(
            f"The {d.get('calculation')} of {d.get('entity')}s with {d.get('base_measure')} who then "
            f"have {d.get('conversion_measure')} within {d.get('window') or 'any time'}."
        )
    for f in d.get("filters", []):
        lines.append(f"Filtered to {f}.")
    return lines


@router.get("/metrics/{name}", response_class=HTMLResponse)
def explorer_page(name: str, request: Request, caller: MetricsReader, engine: EngineDep) -> HTMLResponse:
    catalog = engine.catalog()
    if name not in catalog:
        try:
            engine.metric(name)
        except UnknownMetric as exc:  # a name in the path: 404; the message names the nearest metrics
            raise PageError(status_for(exc, request.path_params), exc.message) from None
    info = catalog[name]
    kinds = {d.name: d.kind for d in engine.dimensions()}
    slices = [d for d in info.dimensions if kinds.get(d) == "categorical"]
    fresh = _freshness(request, [name]).get(name, {})
    config = {
        "metric": name,
        "label": info.label,
        "grains": list(info.grains),
        "slices": slices,
        "metrics": [{"name": m.name, "label": m.label} for m in catalog.values() if m.name != name],
        "newest": fresh.get("newest"),
        "restricted": bool(caller.policy),
    }
    project = "northstar"  # dbt_project/dbt_project.yml's name: dbt docs ids are model.<project>.<model>
    return render(
        request,
        "explorer.html",
        {
            "metric": info,
            "marks": _marks(info.meta),
            "slo": _slo_text(info.meta.get("slo")),
            "definition": _plain_definition(info, catalog),
            "fresh": fresh,
            "config": config,
            "dbt_links": [{"model": m, "href": f"/dbt-docs/#!/model/model.{project}.{m}"} for m in info.models],
        },
    )


# -- experiments -----------------------------------------------------------------------------


@router.get("/experiments", response_class=HTMLResponse)
def experiments_page(request: Request, caller: ExperimentsReader, engine: EngineDep) -> HTMLResponse:
    listed = guarded(lambda: experiments_route.list_experiments(engine)).experiments
    rows = []
    for e in listed:
        ordered = sorted(e.variants, key=lambda v: v.variant != e.control_variant)
        srm = check_srm([v.users for v in ordered]) if len(ordered) > 1 else None
        rows.append({"e": e, "srm": srm, "several": sum(v.users_in_several_variants for v in e.variants)})
    return render(request, "experiments.html", {"experiments": rows})


Correction = Literal["none", "holm-bonferroni", "benjamini-hochberg"]


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def readout_page(
    experiment_id: str,
    request: Request,
    caller: ExperimentsReader,
    engine: EngineDep,
    cuped: bool = True,
    correction: Correction = "none",
    group_by: str = "",
    metrics: Annotated[list[str], Query()] = [],
) -> HTMLResponse:
    metrics = ",".join(m for m in metrics if m) or experiments_route.DEFAULT_METRICS

    def run():
        available = experiments_route.experiment_metrics(experiment_id, engine)
        result = experiments_route.readout(
            experiment_id,
            engine,
            metrics=metrics,
            group_by=group_by,
            cuped=cuped,
            pre_days=14,
            correction=correction,
            sequential=False,
            alpha=0.05,
        )
        return available, result

    available, result = guarded(run)
    summary = next(
        e for e in experiments_route.list_experiments(engine).experiments if e.experiment_id == experiment_id
    )
    lower_is_better = {m.name: m.lower_is_better for m in available.metrics}
    rows = []
    for r in result.results:
        shown = r.cuped if cuped and r.cuped is not None and r.cuped.error is None else None
        low, high = (shown.ci_low, shown.ci_high) if shown else (r.ci_low, r.ci_high)
        rows.append(
            {
                "r": r,
                "lift": shown.relative_lift if shown else r.relative_lift,
                "ci_low": low,
                "ci_high": high,
                "p_value": shown.p_value if shown else r.p_value,
                "chance_to_win": shown.chance_to_win if shown else r.chance_to_win,
                "verdict": shown.verdict if shown else r.verdict,
                "cuped": shown is not None,
                "outcome": _outcome(low, high, lower_is_better.get(r.metric, False)),
            }
        )
    finite = [abs(v) for row in rows for v in (row["ci_low"], row["ci_high"]) if v is not None]
    scale = max(finite, default=0.1) * 1.1 or 0.1
    return render(
        request,
        "readout.html",
        {
            "experiment": summary,
            "readout": result,
            "rows": rows,
            "scale": scale,
            "metric_names": [m.name for m in available.metrics],
            "chosen": metrics.split(","),
            "options": {"cuped": cuped, "correction": correction, "group_by": group_by},
            "several": sum(v.users_in_several_variants for v in result.variants),
        },
    )


def _outcome(low: float | None, high: float | None, lower_is_better: bool) -> str:
    """'win' when the whole interval is on the better side of no change, 'lose' on the worse."""
    if low is None or high is None or low <= 0 <= high:
        return ""
    up = low > 0
    return "win" if up != lower_is_better else "lose"


# -- quality, releases, launches, alerts ------------------------------------------------------


def _spark(values: list[float | None], width: int = 120, height: int = 32) -> list[str]:
    """SVG polyline point lists of a sparkline; a missing value breaks the line (a gap)."""
    present = [v for v in values if v is not None]
    if not present:
        return []
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    lines, current = [], []
    for i, v in enumerate(values):
        if v is None:
            if current:
                lines.append(" ".join(current))
            current = []
            continue
        current.append(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}")
    if current:
        lines.append(" ".join(current))
    # A point between two gaps is a dot: a one-point polyline draws nothing.
    return [
        line if " " in line else f"{line} {float(line.split(',')[0]) + 0.1:.1f},{line.split(',')[1]}" for line in lines
    ]


TEMPLATES.env.globals["spark"] = _spark


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    caller: MetricsReader,
    engine: EngineDep,
    period: Literal["day", "week", "month"] = "week",
    platform: str | None = None,
) -> HTMLResponse:
    card = guarded(
        lambda: quality_route.quality(engine, period=period, start=None, end=None, platform=platform or None)
    )
    return render(request, "quality.html", {"card": card, "period": period, "platform": platform or ""})


@router.get("/releases", response_class=HTMLResponse)
def releases_page(
    request: Request, caller: MetricsReader, engine: EngineDep, platform: str | None = None
) -> HTMLResponse:
    found = guarded(
        lambda: releases_route.list_releases(
            engine,
            platform=platform or None,
            window_days=releases_route.DEFAULT_WINDOW_DAYS,
            alpha=releases_route.DEFAULT_ALPHA,
        )
    )
    launches = guarded(lambda: launches_route.list_launches(engine)).launches
    return render(
        request, "releases.html", {"releases": found.releases, "launches": launches, "platform": platform or ""}
    )


@router.get("/releases/{platform}/{app_version}", response_class=HTMLResponse)
def release_page(
    platform: str, app_version: str, request: Request, caller: MetricsReader, engine: EngineDep
) -> HTMLResponse:
    release = guarded(
        lambda: releases_route.get_release(
            platform,
            app_version,
            engine,
            window_days=releases_route.DEFAULT_WINDOW_DAYS,
            alpha=releases_route.DEFAULT_ALPHA,
            adoption_days=28,
        )
    )
    return render(request, "release.html", {"r": release})


@router.get("/launches/{launch_id}", response_class=HTMLResponse)
def launch_page(launch_id: str, request: Request, caller: MetricsReader, engine: EngineDep) -> HTMLResponse:
    card = guarded(
        lambda: launches_route.launch_scorecard(launch_id, engine, window_days=launches_route.DEFAULT_WINDOW_DAYS)
    )
    return render(request, "launch.html", {"card": card})


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(request: Request, caller: MetricsReader, engine: EngineDep, metric: str | None = None) -> HTMLResponse:
    found = guarded(lambda: alerts_route.list_alerts(engine, metric=metric or None, since=None, until=None))
    rows = []
    for a in found.alerts:
        day = dt.date.fromisoformat(a.date[:10])
        link = _query(
            {
                "grain": "day",
                "range": "custom",
                "start": (day - dt.timedelta(days=21)).isoformat(),
                "end": (day + dt.timedelta(days=8)).isoformat(),
                "alert": a.date[:10],
            }
        )
        rows.append({"a": a, "href": f"/metrics/{a.metric}?{link}"})
    return render(request, "alerts.html", {"alerts": rows, "metric": metric or ""})


# -- sign-in ---------------------------------------------------------------------------------


def _same_origin(request: Request) -> bool:
    """A form post from this service's own page: browsers send Origin with every POST (and
    Sec-Fetch-Site where they have it); a post from another site, or without Origin, is refused."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return False
    origin = request.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == request.headers.get("host")


def _safe_next(target: str | None) -> str:
    # Only a path on this service: never an absolute or scheme-relative URL (open redirect).
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: Annotated[str | None, Query()] = None) -> HTMLResponse:
    return render(
        request,
        "sign_in.html",
        {
            "next": _safe_next(next),
            "error": None,
            "tokens_active": (not request.app.state.settings.open and request.app.state.tokens.requires_tokens()),
        },
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    if not _same_origin(request):
        return render(
            request,
            "sign_in.html",
            {
                "next": "/",
                "error": "This form must be sent from this service's own sign-in page.",
                "tokens_active": True,
            },
            status_code=403,
        )
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    presented = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/"])[0])
    token = request.app.state.tokens.verify(presented)
    if token is None:
        return render(
            request,
            "sign_in.html",
            {"next": target, "error": "That token is not valid (unknown, mistyped or revoked).", "tokens_active": True},
            status_code=401,
        )
    response = RedirectResponse(target, status_code=303)
    key = session.session_key(request.app.state.settings.data_dir)
    response.set_cookie(
        session.COOKIE,
        session.issue(key, token),
        max_age=session.SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/sign-out")
def sign_out(request: Request) -> Response:
    if not _same_origin(request):
        raise PageError(403, "Sign out from this service's own page.")
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(session.COOKIE, path="/", httponly=True, samesite="strict")
    return response
