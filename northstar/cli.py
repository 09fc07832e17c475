"""The `northstar` command: generate, build, serve, query.

Errors are printed as one clear line (no traceback) and exit with status 1: a bad setting, an
unreadable directory, a missing extra, an unreachable database. (Click reports a bad flag
the same way, with status 2.)
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import Settings
from metrics.errors import MetricsError
from northstar.extras import extra_for, missing_extra_error, require

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="northstar: governed product metrics from landing files, dbt and a semantic layer.",
)
console = Console(stderr=True)


def _settings(**overrides) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _error(text: str) -> typer.Exit:
    # escaped: a message may hold brackets (`pip install -e '.[postgres]'`) rich would read as markup
    console.print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def one_line_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MetricsError as exc:
            raise _error(exc.message) from None
        except ValidationError as exc:  # a NORTHSTAR_* setting or flag of the wrong shape
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
            more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
            raise _error(
                f"setting {where} (NORTHSTAR_{where.upper()}): {first.get('msg')}, got {first.get('input')!r}{more}."
            ) from None
        except ImportError as exc:  # an optional extra imported on a path `require` did not guard
            extra = extra_for(exc.name)
            if extra is None:
                raise
            raise _error(missing_extra_error(extra, exc.name or "?", "this command").message) from None
        except (OSError, ValueError) as exc:
            raise _error(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def _require_extras(settings: Settings) -> None:
    """A PostgreSQL or Spark warehouse needs its extra: say which before doing any work."""
    if settings.warehouse_type in ("postgres", "spark"):
        require(settings.warehouse_type, f"NORTHSTAR_WAREHOUSE={settings.warehouse_type}")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@app.command()
@one_line_errors
def generate(
    out: Annotated[Path, typer.Option(help="Landing directory to write.")] = Path("data/landing"),
    users: Annotated[int, typer.Option(help="Number of users; events come to about users x days x 0.5.")] = 5500,
    days: Annotated[int, typer.Option(help="Days of activity.")] = 90,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 7,
) -> None:
    """Generate synthetic landing data that follows the landing contract."""
    from seeds.generator import generate as run_generator

    with _progress() as progress:
        task = progress.add_task("generating", total=days)
        summary = run_generator(
            out,
            users=users,
            days=days,
            seed=seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    table = Table("table", "rows", title=f"landing data in {out}")
    for name, rows in summary.tables.items():
        table.add_row(name, f"{rows:,}")
    Console().print(table)


@app.command()
@one_line_errors
def build(
    landing: Annotated[Path | None, typer.Option(help="Landing directory (default: the committed sample).")] = None,
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse path to publish (a symlink).")] = None,
    dbt_project: Annotated[Path | None, typer.Option(help="dbt project directory.")] = None,
    docs: Annotated[bool, typer.Option(help="Also generate the dbt docs site.")] = True,
    warehouse_type: Annotated[
        str | None,
        typer.Option(
            help="duckdb (default), postgres (needs NORTHSTAR_POSTGRES_DSN) or spark (NORTHSTAR_SPARK_MASTER)."
        ),
    ] = None,
) -> None:
    """Run the dbt project over landing files into a new warehouse; publish it if every test passed."""
    settings = _settings(landing=landing, warehouse=warehouse, dbt_project=dbt_project, warehouse_type=warehouse_type)
    result = _build(settings, docs=docs)
    console.print(
        f"[green]built[/] {result.build_id} in {result.seconds:.1f}s ({result.nodes} dbt nodes) "
        f"-> {settings.warehouse_path}",
        highlight=False,
    )
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning.describe())}", highlight=False, soft_wrap=True)
    if result.warnings:
        console.print(
            f"{len(result.warnings)} warning(s): the data is served; see build.json "
            f"({result.directory / 'build.json'}).",
            highlight=False,
            soft_wrap=True,
        )
    for entry in result.unservable:
        console.print(f"[yellow]cannot serve:[/] metric {escape(entry.describe())}", highlight=False, soft_wrap=True)
    if result.dry_run_seconds is not None:
        console.print(
            f"dry run: every metric compiled and explained in {result.dry_run_seconds:.2f}s"
            + (
                f"; {len(result.unservable)} cannot be served (queries of them answer 422)" if result.unservable else ""
            ),
            highlight=False,
            soft_wrap=True,
        )


def _build(settings: Settings, docs: bool = True):
    from northstar.build import build as run_build

    _require_extras(settings)
    with _progress() as progress:
        task = progress.add_task("dbt build", total=None)
        result = run_build(
            settings.landing,
            settings.warehouse_path,
            settings.dbt_project,
            docs=docs,
            keep=settings.keep_builds,
            warehouse_type=settings.warehouse_type,
            postgres_dsn=settings.postgres_dsn_text,
            spark_master=settings.spark_master,
            progress=lambda done, total, _: progress.update(task, completed=done, total=total),
        )
    _notify_after_build(settings)
    return result


def _notify_after_build(settings: Settings) -> None:
    """Evaluate the notification subscriptions against the build just published; a failure
    to notify is reported, never a failed build."""
    if not settings.notify_config_path.exists():
        return
    from northstar.notify.runner import run as notify

    try:
        sent = notify(settings, log=lambda line: console.print(f"notify: {escape(line)}", highlight=False))
    except MetricsError as exc:
        console.print(f"[yellow]notify:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        return
    failed = sum(s.status == "failed" for s in sent)
    if failed:
        console.print(
            f"[yellow]notify:[/] {failed} notification(s) failed; see GET /v1/notifications.", highlight=False
        )


class PortInUse(Exception):
    """A port `northstar serve` needs is taken: one line, exit status 2."""


def _flight_server(settings: Settings, tls):
    """The Flight SQL server, listening (it answers once the app attaches the service).

    gRPC binds with SO_REUSEPORT, which would let two servers share a port: a plain socket
    bound first proves the port is free (and is released for the server right away)."""
    from api.flight.server import FlightSqlServer

    _bind(settings.host, settings.flight_port, "Flight SQL", "--flight-port").close()
    try:
        return FlightSqlServer(settings.host, settings.flight_port, tls)
    except Exception as exc:  # gRPC reports a failed bind as a generic start failure
        raise PortInUse(
            f"port {settings.flight_port} on {settings.host} (Flight SQL) could not be bound ({exc}); "
            "choose another with --flight-port P"
        ) from None


def _bind(host: str, port: int, what: str, flag: str):
    """A socket bound to host:port (listening starts with the server), or `PortInUse`."""
    import errno
    import socket

    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            reason = "is in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
            raise PortInUse(f"port {port} on {host} ({what}) {reason}; choose another with {flag} P") from None
        raise
    sock.set_inheritable(True)
    return sock


@app.command()
@one_line_errors
def serve(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse to serve.")] = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port.")] = None,
    sql_port: Annotated[
        int | None, typer.Option(help="PostgreSQL-wire SQL port (default 5433; 0 turns it off).")
    ] = None,
    landing: Annotated[Path | None, typer.Option(help="Landing data to build from if no warehouse exists.")] = None,
    dbt_project: Annotated[Path | None, typer.Option(help="dbt project directory.")] = None,
    open_mode: Annotated[
        bool | None,
        typer.Option(
            "--open", help="Serve without API tokens even if this data directory has them (NORTHSTAR_OPEN=1)."
        ),
    ] = None,
    allow_open: Annotated[
        bool | None,
        typer.Option(
            "--allow-open",
            help="Serve without API tokens on a non-loopback interface (anyone who reaches it reads everything).",
        ),
    ] = None,
    warehouse_type: Annotated[
        str | None,
        typer.Option(
            help="duckdb (default), postgres (needs NORTHSTAR_POSTGRES_DSN) or spark (NORTHSTAR_SPARK_MASTER)."
        ),
    ] = None,
    notify: Annotated[
        bool,
        typer.Option(
            "--notify", help="Also evaluate and send notifications every NORTHSTAR_NOTIFY_INTERVAL_S seconds."
        ),
    ] = False,
    flight_port: Annotated[
        int | None,
        typer.Option(help="Arrow Flight SQL port of the dbt Semantic Layer API (default 8815; 0 turns it off)."),
    ] = None,
    flight_tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for Flight SQL over TLS.")] = None,
    flight_tls_key: Annotated[Path | None, typer.Option(help="PEM private key for Flight SQL over TLS.")] = None,
) -> None:
    """Serve the HTTP API (building the sample warehouse first if there is none)."""
    import ipaddress

    import uvicorn

    from api.main import create_app
    from core.tokens import TokenStore, TokenStoreUnavailable

    settings = _settings(
        warehouse=warehouse,
        host=host,
        port=port,
        sql_port=sql_port,
        landing=landing,
        dbt_project=dbt_project,
        open=open_mode,
        allow_open=allow_open,
        warehouse_type=warehouse_type,
        flight_port=flight_port,
        flight_tls_cert=flight_tls_cert,
        flight_tls_key=flight_tls_key,
    )
    _require_extras(settings)
    try:
        loopback = settings.host == "localhost" or ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = False
    store = TokenStore.in_dir(settings.data_dir)
    notes: list[str] = []
    if settings.open or not store.requires_tokens():
        # Open: explicitly (--open), or a data directory that has never had a token.
        if not loopback and not settings.allow_open:
            raise ValueError(
                ("--open" if settings.open else "no API token exists, so the service")
                + f" would be open to anyone who reaches {settings.host}; "
                + ("" if settings.open else "create one (`northstar tokens create --name NAME --scope metrics:read`), ")
                + "bind to 127.0.0.1, or add --allow-open (NORTHSTAR_ALLOW_OPEN=1) to mean it."
            )
        if settings.open:
            notes.append(
                "[yellow]open mode (--open):[/] every request is answered without a token"
                + (", the tokens of this data directory are ignored" if store.requires_tokens() else "")
                + ("" if loopback else f", on {settings.host} (--allow-open)")
                + "."
            )
        else:
            notes.append(
                "[yellow]open mode:[/] no API token has ever been created for this data directory, every "
                "request is answered without one"
                + ("" if loopback else f" on {settings.host} (--allow-open)")
                + "; create tokens with `northstar tokens create`."
            )
    else:
        if settings.sql_auth == "trust" and settings.sql_password is None and settings.sql_port:
            raise ValueError(
                "NORTHSTAR_SQL_AUTH=trust would open the SQL endpoint of a data directory that has "
                "API tokens; unset it, or serve with --open to mean it."
            )
        try:
            active = sum(t.active for t in store.list())
            notes.append(
                f"API tokens required ({active} active in {store.path})."
                if active
                else f"[yellow]no active API token[/] in {store.path}: every data request is refused until one "
                "is created (tokens once existed, so the service stays closed; --open serves it openly)."
            )
        except TokenStoreUnavailable as exc:
            notes.append(
                f"[bold red]token store unusable:[/] {exc.message}; every data request answers 503 and SQL "
                "logins are refused until it is repaired (fail closed)."
            )
    from api.flight.server import tls_of

    flight_tls = tls_of(settings) if settings.flight_port else None
    if settings.flight_port and not loopback and flight_tls is None:
        # Bearer tokens in plaintext gRPC would cross the network readable.
        raise ValueError(
            f"the Flight SQL endpoint on {settings.host} needs TLS: give --flight-tls-cert and "
            "--flight-tls-key, bind to 127.0.0.1, or turn it off with --flight-port 0."
        )
    # Bind both ports before announcing anything (or spending minutes on a build): a taken port
    # is one line and exit status 2.
    try:
        http_socket = _bind(settings.host, settings.port, "HTTP", "--port")
        sql_socket = (
            _bind(settings.host, settings.sql_port, "SQL endpoint", "--sql-port") if settings.sql_port else None
        )
        flight_server = _flight_server(settings, flight_tls) if settings.flight_port else None
    except PortInUse as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True)
    if not settings.warehouse_path.exists():
        console.print(
            f"no warehouse at {settings.warehouse_path}; building it from {settings.landing}", highlight=False
        )
        _build(settings)
    console.print(
        f"serving on http://{settings.host}:{settings.port}  (docs: /docs, dbt docs: /dbt-docs/)", highlight=False
    )
    if settings.sql_port:
        console.print(f"SQL endpoint on postgresql://{settings.host}:{settings.sql_port}/northstar", highlight=False)
        # SQL workers and the HTTP loop share the GIL: a thread waiting for it gets it after
        # at most this interval (default 5 ms), so a shorter one bounds HTTP latency under load.
        sys.setswitchinterval(0.001)
    if flight_server is not None:
        console.print(f"Flight SQL (dbt Semantic Layer) on {flight_server.location}", highlight=False)
    if notify:
        from northstar.notify.runner import start_background

        start_background(settings, log=lambda line: console.print(f"notify: {escape(line)}", highlight=False))
    # No `server` banner: responses do not advertise the server software and its version.
    # No per-request access line either: the audit log (data/audit.jsonl) records every request
    # (caller, status, rows, ms), and formatting a second line costs a cache hit a tenth of
    # its time.
    config = uvicorn.Config(
        create_app(settings, sql_socket=sql_socket, flight_server=flight_server),
        log_level="info",
        server_header=False,
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[http_socket])


@app.command()
@one_line_errors
def query(
    metrics: Annotated[str, typer.Option(help="Comma-separated metric names.")],
    group_by: Annotated[str, typer.Option(help="Comma-separated group-by names.")] = "",
    where: Annotated[list[str] | None, typer.Option(help="dbt-style filter, repeatable.")] = None,
    start: Annotated[str | None, typer.Option(help="Inclusive start (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Exclusive end (YYYY-MM-DD).")] = None,
    order_by: Annotated[str, typer.Option(help="Comma-separated; '-' prefix for descending.")] = "",
    limit: Annotated[int | None, typer.Option(help="Maximum rows.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for buckets and bounds (default UTC).")] = None,
    week_start: Annotated[str, typer.Option(help="monday (ISO, default) or sunday.")] = "monday",
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse to query.")] = None,
    sql: Annotated[bool, typer.Option("--sql", help="Print the SQL instead of running it.")] = False,
) -> None:
    """Run the same query as the HTTP API and print it as a table."""
    from metrics.engine import MetricsEngine
    from metrics.execution.client import to_jsonable
    from metrics.query.request import query_from_text

    settings = _settings(warehouse=warehouse)
    metric_query = query_from_text(
        metrics=metrics,
        group_by=group_by,
        where=where or [],
        start=start,
        end=end,
        order_by=order_by,
        limit=limit,
        timezone=timezone,
        week_start=week_start,
    )
    engine = MetricsEngine.open(settings.warehouse_path, postgres_dsn=settings.postgres_dsn_text)
    try:
        if sql:
            print(engine.compile(metric_query).inline_sql)
            return
        result = engine.query(metric_query)
    finally:
        engine.close()
    # A value that is not complete (metrics.query.completeness) is marked `*` (partial bucket)
    # or `?` (not known: its window is not in the data), with the reasons under the table.
    table = Table(*[c.name for c in result.columns])
    width = len(result.metric_names)
    marks = {(i.bucket, i.metric): "?" if i.nulled else "*" for i in result.incomplete}
    bucket_index = next(
        (k for k, c in enumerate(result.columns[: len(result.columns) - width]) if c.name.startswith("metric_time")),
        None,
    )
    for row, complete in zip(result.rows, result.complete or [()] * len(result.rows)):
        cells = ["" if v is None else str(to_jsonable(v)) for v in row]
        bucket = row[bucket_index] if bucket_index is not None else None
        for j, ok in enumerate(complete):
            if not ok:
                name = result.metric_names[j]
                cell = len(cells) - width + j
                cells[cell] = (cells[cell] + " " + marks.get((bucket, name), "*")).strip()
        table.add_row(*cells)
    Console().print(table)
    console.print(f"{len(result.rows)} rows from build {result.build.build_id}", highlight=False)
    reasons = sorted({(i.reason.value, i.metric, i.message.split(";")[0]) for i in result.incomplete})
    if reasons:
        console.print("* partial bucket, ? not known (null):", highlight=False)
        for reason, metric, message in reasons[:10]:
            console.print(f"  {metric}: {reason}: {message}", highlight=False)


@app.command()
@one_line_errors
def mcp(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse to serve.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory holding tokens.json and the audit log.")] = None,
) -> None:
    """Serve the MCP tools (semantic layer for AI assistants) on stdin/stdout; the API token
    comes from NORTHSTAR_TOKEN."""
    import os

    from api.mcp.server import serve_stdio

    serve_stdio(_settings(warehouse=warehouse, data_dir=data_dir), os.environ.get("NORTHSTAR_TOKEN") or None)


notify_app = typer.Typer(no_args_is_help=True, help="Notifications: evaluate subscriptions and deliver them.")
app.add_typer(notify_app, name="notify")


@notify_app.command("run")
@one_line_errors
def notify_run(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse to evaluate.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (tokens, the state table).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Subscriptions file (default <dbt project>/northstar.yml).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be sent; send and record nothing.")
    ] = False,
) -> None:
    """Evaluate every subscription against the published build and send what is new (digests:
    run it on a schedule)."""
    import json

    from northstar.notify.runner import run as notify

    settings = _settings(warehouse=warehouse, data_dir=data_dir, notify_config=config)
    if not settings.notify_config_path.exists():
        raise _error(f'no subscriptions file at {settings.notify_config_path}; see README "Notifications".')
    sent = notify(settings, dry_run=dry_run, log=lambda line: console.print(escape(line), highlight=False))
    if dry_run:
        for s in sent:
            print(
                json.dumps(
                    {"destination": s.destination, "subscription": s.subscription, "status": s.status, "body": s.body},
                    default=str,
                )
            )
    failed = sum(s.status == "failed" for s in sent)
    console.print(
        f"{sum(s.status == 'sent' for s in sent)} sent, {failed} failed, "
        f"{sum(s.status == 'would_send' for s in sent)} would be sent",
        highlight=False,
    )
    if failed:
        raise typer.Exit(1)


tokens_app = typer.Typer(no_args_is_help=True, help="API tokens: create, list, revoke (stored hashed).")
app.add_typer(tokens_app, name="tokens")


def _token_store(data_dir: Path | None):
    from core.tokens import TokenStore

    return TokenStore.in_dir(_settings(data_dir=data_dir).data_dir)


@tokens_app.command("create")
@one_line_errors
def tokens_create(
    name: Annotated[str, typer.Option(help="Who or what uses the token, e.g. 'metabase-emea'.")],
    scope: Annotated[list[str], typer.Option(help="metrics:read, experiments:read or admin; repeatable.")],
    row_filter: Annotated[
        list[str] | None,
        typer.Option(help="Row-level policy added to every query, e.g. region=emea or account_id=a1,a2; repeatable."),
    ] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Concurrent queries allowed (429 beyond).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory holding tokens.json.")] = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from core.tokens import PolicyFilter

    policy = [PolicyFilter.parse(text) for text in row_filter or []]
    token, plain = _token_store(data_dir).create(name, scope, policy, max_concurrent)
    console.print(
        f"created token {token.id} ({token.name}; scopes {', '.join(token.scopes)}"
        + (f"; rows where {' and '.join(p.describe() for p in token.policy)}" if token.policy else "")
        + "). It is shown once; store it now:",
        highlight=False,
    )
    print(plain)


@tokens_app.command("list")
@one_line_errors
def tokens_list(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory holding tokens.json.")] = None,
) -> None:
    """List tokens (never their secrets)."""
    table = Table("id", "name", "scopes", "row policy", "created", "revoked")
    for token in _token_store(data_dir).list():
        table.add_row(
            token.id,
            token.name,
            ", ".join(token.scopes),
            " and ".join(p.describe() for p in token.policy) or "-",
            token.created_at,
            token.revoked_at or "-",
        )
    Console().print(table)


@tokens_app.command("revoke")
@one_line_errors
def tokens_revoke(
    token: Annotated[str, typer.Argument(help="Token id or name.")],
    data_dir: Annotated[Path | None, typer.Option(help="Data directory holding tokens.json.")] = None,
) -> None:
    """Revoke a token; a running server refuses it from its next request."""
    revoked = _token_store(data_dir).revoke(token)
    console.print(f"revoked token {revoked.id} ({revoked.name})", highlight=False)


rollups_app = typer.Typer(no_args_is_help=True, help="Rollups: suggest saved queries to materialize.")
app.add_typer(rollups_app, name="rollups")


@rollups_app.command("suggest")
@one_line_errors
def rollups_suggest(
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse whose rollups already answer some queries.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory holding the audit log.")] = None,
    audit_log: Annotated[Path | None, typer.Option(help="Audit log to read (default <data dir>/audit.jsonl).")] = None,
    top: Annotated[int, typer.Option(help="How many rollups to suggest.")] = 5,
) -> None:
    """Read the audit log and print saved queries with table exports (YAML to paste into the
    dbt project) that would answer the slowest logged queries, with their estimated rows and
    the time they took."""
    from metrics.engine import MetricsEngine
    from metrics.rollups import suggest
    from northstar.rollups import logged_queries, suggestions_yaml

    settings = _settings(warehouse=warehouse, data_dir=data_dir, audit_log=audit_log)
    path = settings.audit_log_path
    if not path.exists():
        raise _error(f"no audit log at {path}; the service writes one as it answers queries.")
    engine = MetricsEngine.open(settings.warehouse_path, postgres_dsn=settings.postgres_dsn_text)
    try:
        queries, unreadable = logged_queries(path, engine)
        suggestions, skipped = suggest(engine, queries, top=top)
    finally:
        engine.close()
    if unreadable:
        skipped["entries this build cannot read as a query"] = unreadable
    print(suggestions_yaml(suggestions, skipped, len(queries)), end="")


experiments_app = typer.Typer(no_args_is_help=True, help="Experiments: plan one from the warehouse.")
app.add_typer(experiments_app, name="experiments")


@experiments_app.command("plan")
@one_line_errors
def experiments_plan(
    metric: Annotated[str, typer.Option(help="Experiment metric, e.g. conversion.")],
    mde: Annotated[float | None, typer.Option(help="Relative effect to detect (0.05 is +5%).")] = None,
    weeks: Annotated[int | None, typer.Option(help="Weeks the experiment may run: the MDE by week.")] = None,
    arms: Annotated[int, typer.Option(help="Arms including control.")] = 2,
    alpha: Annotated[float, typer.Option(help="Two-sided significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Power to reach at the MDE.")] = 0.8,
    cuped: Annotated[bool, typer.Option(help="Count on CUPED's variance reduction.")] = True,
    warehouse: Annotated[Path | None, typer.Option(help="Warehouse to plan from.")] = None,
) -> None:
    """Users per arm and weeks for an effect, or the effect detectable by week (as
    GET /v1/experiments/plan)."""
    from metrics.engine import MetricsEngine
    from metrics.experiment_design import PlanRequest, make_plan

    settings = _settings(warehouse=warehouse)
    engine = MetricsEngine.open(settings.warehouse_path, postgres_dsn=settings.postgres_dsn_text)
    try:
        experiments = engine.experiments
        plan = make_plan(
            experiments,
            PlanRequest(metric=metric, mde=mde, weeks=weeks, arms=arms, alpha=alpha, power=power, cuped=cuped),
            experiments.settings_meta().get("planning") or {},
        )
    finally:
        engine.close()
    console.print(
        f"{plan.metric}: {plan.eligible_users} eligible users from {plan.window_start:%Y-%m-%d} to "
        f"{plan.window_end:%Y-%m-%d} (about {plan.weekly_users:.0f} a week); per-user mean "
        f"{plan.mean:.4g}, variance {plan.variance:.4g}"
        + (f", CUPED removes {100 * plan.variance_reduction:.1f}% of it" if cuped else ""),
        highlight=False,
    )
    if plan.users_per_arm is not None:
        console.print(
            f"to detect {100 * mde:+.1f}% with power {power:g} at alpha {alpha:g}: {plan.users_per_arm} users "
            f"per arm, {plan.total_users} in all, about {plan.weeks_needed} weeks",
            highlight=False,
        )
    table = Table("week", "users per arm", "MDE", *(["power at MDE"] if mde is not None else []))
    for week in plan.weeks:
        cells = [str(week.week), str(week.users_per_arm), "-" if week.mde is None else f"{100 * week.mde:.1f}%"]
        if mde is not None:
            cells.append(f"{week.power_at_mde:.2f}" if week.power_at_mde is not None else "-")
        table.add_row(*cells)
    Console().print(table)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
