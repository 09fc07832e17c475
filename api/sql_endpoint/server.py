"""The PostgreSQL-wire server: one asyncio task per connection, engine work in threads.

A connection authenticates, then runs statements from the simple (Query) or the extended
(Parse/Bind/Describe/Execute/Sync) protocol. Each statement is dispatched to the session
(SET, SHOW, BEGIN...), the catalog database (pg_catalog, information_schema, built-in
functions) or the semantic layer (semantic.*, marts.*), and answers with the same codec.

Under `northstar serve` the endpoint runs on an event loop of its own in its own thread
(`start_in_thread`), never on the HTTP server's loop; on that loop it only moves bytes:
parsing, planning, running and row encoding happen in bounded worker pools, so one client's
big statement delays neither HTTP nor the other SQL clients. A cancel request interrupts the
warehouse statement itself (`metrics.execution.cancel`), freeing its worker at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import logging
import re
import secrets
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from api.auth import AuditLog, Caller, ConcurrencyLimiter
from api.sql_endpoint import catalog, protocol, semantic_sql, statements
from api.sql_endpoint.catalog_relations import CatalogColumn, CatalogTable
from api.sql_endpoint.session import DATABASE, REPORTED, Session, run_utility
from api.sql_endpoint.sqlstates import as_sql_error, internal_error, sqlstate_for
from api.sql_endpoint.statements import SqlError
from core.tokens import SCRAM_ITERATIONS, TokenStoreUnavailable
from metrics.engine import EngineProvider, MetricsEngine
from metrics.errors import MetricsError, QueryCancelled
from metrics.execution.cancel import Cancellation, cancellable
from metrics.policy import RestrictedEngine

log = logging.getLogger("northstar.sql")

PasswordCheck = Callable[[str, str], "bool | None"]
# A message longer than this is a broken client: the connection is closed. Below it, one
# over `SqlLimits.max_statement_bytes` is read past and refused with 54000.
MAX_MESSAGE = 64 * 1024 * 1024
AUDIT_SQL_CHARS = 2000  # the statement text kept in an audit line
AUTH_MESSAGE = 64 * 1024  # password and SASL messages
ENCODE_BATCH = 1000  # DataRows encoded per worker call, written before the next batch
INLINE_ROWS = 64  # fewer rows are encoded on the loop: a thread hop would cost more
CANCEL_GRACE_S = 5.0  # how long a cancelled statement's answer waits for its worker to stop


@dataclass(frozen=True)
class SqlLimits:
    """What one statement and one client may take (README "Security")."""

    max_statement_bytes: int = 1_048_576
    login_timeout_s: float = 10.0
    workers: int = 8
    catalog_memory_limit: str = "256MB"
    query_timeout_s: float | None = 30.0
    max_result_rows: int = 1_000_000

    @classmethod
    def from_settings(cls, settings: Any) -> SqlLimits:
        return cls(
            max_statement_bytes=settings.max_statement_bytes,
            login_timeout_s=settings.sql_login_timeout_s,
            workers=settings.sql_workers,
            catalog_memory_limit=settings.catalog_memory_limit,
            query_timeout_s=settings.query_timeout_s,
            max_result_rows=settings.max_result_rows,
        )


class MessageTooLarge(SqlError):
    """A message over the statement size limit; its bytes were read past, the connection goes on."""

    def __init__(self, kind: bytes, size: int, limit: int) -> None:
        super().__init__(
            "54000",
            f"the message is {size:,} bytes, more than the {limit:,} bytes "
            "(max_statement_bytes) one statement may have",
            hint="send a smaller statement: pass values as bind parameters, or split the work",
        )
        self.kind = kind


# -- authentication -----------------------------------------------------------------------


@dataclass(frozen=True)
class Authenticator:
    """How passwords are asked for and checked.

    `method` is "trust" (no password asked), "cleartext", "scram", or "tokens" (decided per
    connection from the API token store, see `resolve`). `check_password(user, password)`
    answers cleartext exchanges: True/False, or None for "accept anyone". SCRAM needs the
    server to hold a verifier of the password (`scram_verifier(user)`).
    """

    method: str = "trust"
    check_password: PasswordCheck | None = None
    scram_verifier: Callable[[str], protocol.ScramVerifier | None] | None = None
    tokens: Any = None  # core.tokens.TokenStore, for method "tokens"
    preferred: str = "scram"  # with tokens: "scram" or "cleartext" when both could work
    # Keys the salts offered to unknown user names of a store without a shared salt.
    mock_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    @classmethod
    def from_settings(cls, settings: Any, tokens: Any = None) -> Authenticator:
        secret = settings.sql_password.get_secret_value() if settings.sql_password else None
        method = settings.sql_auth
        if secret is None and getattr(settings, "open", False):
            return cls("trust", lambda user, password: None, None)  # `serve --open`: explicitly open
        if secret is None and tokens is not None and method != "trust":
            # The spec's rule: open while no API token exists; then the password is a token.
            return cls("tokens", tokens=tokens, preferred="cleartext" if method == "cleartext" else "scram")
        if secret is None:
            if method == "scram":
                raise ValueError(
                    "sql_auth=scram needs a password: set NORTHSTAR_SQL_PASSWORD (or use sql_auth=trust or cleartext)"
                )
            return cls("trust" if method in ("auto", "trust") else method, lambda user, password: None, None)
        verifier = (
            protocol.ScramVerifier.parse(secret)
            if secret.startswith("SCRAM-SHA-256$")
            else protocol.ScramVerifier.from_password(secret)
        )
        return cls(
            "scram" if method == "auto" else method,
            lambda user, password: verifier.matches(password),
            lambda user: verifier,
        )

    def resolve(self, user: str) -> tuple[str, protocol.ScramVerifier | None, list[tuple[protocol.ScramVerifier, Any]]]:
        """(method, the SCRAM verifier whose salt is offered, the (verifier, token) pairs whose
        key may answer) for a client logging in as `user`.

        With API tokens: a data directory that never had one is open (trust); after that every
        user name gets the same SCRAM challenge (the store's shared salt, or for a store without
        one a salt derived from the name, as PostgreSQL's mock authentication does), so the
        challenge does not tell which names exist. A user named like an active token must prove
        it holds that token; any other name may prove it holds any active token. Raises
        `TokenStoreUnavailable` when the store cannot be used (no login then)."""
        if self.method != "tokens":
            verifier = self.scram_verifier(user) if self.method == "scram" and self.scram_verifier else None
            return self.method, verifier, [(verifier, None)] if verifier else []
        if not self.tokens.requires_tokens():
            return "trust", None, []
        snapshot = self.tokens.snapshot()
        if self.preferred != "scram":
            return "cleartext", None, []
        named = self.tokens.by_name(user)
        if named is not None and named.scram:
            verifier = protocol.ScramVerifier.parse(named.scram)
            return "scram", verifier, [(verifier, named)]
        salt = snapshot.scram_salt or hmac.new(self.mock_key, user.encode(), hashlib.sha256).digest()[:16]
        # Never matched: its keys are random; only its salt and iterations are shown.
        challenge = protocol.ScramVerifier(salt, SCRAM_ITERATIONS, secrets.token_bytes(32), secrets.token_bytes(32))
        candidates = []
        for token in snapshot.tokens.values():
            if token.active and token.scram:
                verifier = protocol.ScramVerifier.parse(token.scram)
                if verifier.salt == salt and verifier.iterations == SCRAM_ITERATIONS:
                    candidates.append((verifier, token))
        return "scram", challenge, candidates


# -- statements and results ---------------------------------------------------------------


@dataclass
class Result:
    tag: str
    columns: tuple[protocol.Column, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    parameter_status: tuple[tuple[str, str], ...] = ()
    notices: tuple[str, ...] = ()  # sent as NOTICE messages before the rows
    copy: protocol.CopyFormat | None = None  # the rows go out as COPY data, not DataRows

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns) and self.copy is None


@dataclass
class Statement:
    """One parsed statement (the unit of Parse and of each part of a Query)."""

    sql: str
    kind: str  # "empty", "utility", "query", "declare" (a cursor over `tree`), "fetch", "copy" (out of `tree`)
    tree: exp.Expression | None = None
    cursor: str | None = None
    copy: protocol.CopyFormat | None = None
    param_types: list[int] = field(default_factory=list)
    # Answer computed for a Describe before any Bind (no parameters), kept for the Execute.
    described: Result | None = None


@dataclass
class Portal:
    statement: Statement
    params: list[Any]
    result_formats: tuple[int, ...]
    result: Result | None = None
    sent: int = 0


def prepare(sql: str, param_types: tuple[int, ...] = ()) -> Statement:
    """Classifies and parses one statement; raises SqlError for what is never answered."""
    parts = statements.split_statements(sql)
    if not parts:
        return Statement(sql, "empty")
    if len(parts) > 1:
        raise SqlError(
            "42601",
            "cannot insert multiple commands into a prepared statement",
            hint="send one statement per Parse, or several in one simple Query",
        )
    word = statements.first_word(sql)
    if word == "declare":
        match = _DECLARE.match(" ".join(sql.split()))
        if not match:
            raise SqlError(
                "42601",
                "cannot read the DECLARE statement",
                hint="DECLARE name [NO SCROLL] CURSOR [WITH HOLD] FOR SELECT ...",
            )
        inner = prepare(match.group("query"), param_types)
        if inner.kind != "query":
            raise SqlError("42601", "a cursor needs a SELECT")
        return Statement(
            sql, "declare", inner.tree, param_types=inner.param_types, cursor=_cursor_name(match.group("name"))
        )
    if word in ("fetch", "move"):
        return Statement(sql, "fetch")
    if word in statements.UTILITY_WORDS:
        return Statement(sql, "utility")
    if word in statements.WRITE_WORDS:
        raise SqlError("25006", f"cannot execute {word.upper()}: northstar is read-only", hint=statements.SUPPORTED)
    if word == "copy":
        return _prepare_copy(sql, param_types)
    if word not in statements.QUERY_WORDS:
        raise SqlError("0A000", f"{word.upper() or 'this statement'} is not supported", hint=statements.SUPPORTED)
    try:
        tree = sqlglot.parse_one(
            statements.quote_keyword_aliases(statements.underscore_array_types(sql)), read="postgres"
        )
    except ParseError as exc:
        raise SqlError("42601", f"syntax error: {str(exc).splitlines()[0]}", hint=statements.SUPPORTED) from exc
    count = max((_param_index(p) for p in tree.find_all(exp.Parameter, exp.Placeholder)), default=0)
    types = list(param_types) + [0] * max(0, count - len(param_types))
    return Statement(sql, "query", tree, param_types=types)


# Cursors, as psqlODBC (Tableau, Excel over ODBC) uses them: DECLARE ... FOR SELECT, FETCH n.
_DECLARE = re.compile(
    r"declare\s+(?P<name>\"[^\"]+\"|[\w$]+)\s+(?:(?:binary|insensitive|asensitive|scroll|no\s+scroll)\s+)*"
    r"cursor\s+(?:(?:with|without)\s+hold\s+)?for\s+(?P<query>.+)$",
    re.I | re.S,
)
_FETCH = re.compile(
    r"(?P<verb>fetch|move)\s+(?:(?P<count>next|all|forward\s+all|forward\s+\d+|forward|\d+)\s+)?"
    r"(?:(?:from|in)\s+)?(?P<name>\"[^\"]+\"|[\w$]+)\s*;?$",
    re.I | re.S,
)
_CLOSE = re.compile(r"close\s+(?P<name>\"[^\"]+\"|[\w$]+)\s*;?$", re.I | re.S)


# COPY out, as psql's \copy and exports use it: COPY (SELECT ...) | table [(columns)] TO STDOUT [options].
_COPY = re.compile(
    r"copy\s+(?:\((?P<query>.+)\)|(?P<table>[\w$.\"]+)\s*(?:\((?P<columns>[^)]*)\))?)\s+"
    r"(?P<direction>to|from)\s+(?P<target>stdout|stdin|program\s+'(?:[^']|'')*'|'(?:[^']|'')*'|\S+)"
    r"(?P<options>.*?)\s*;?\s*$",
    re.I | re.S,
)
_COPY_TOKEN = re.compile(r"'((?:[^']|'')*)'|([^\s,()']+)")
_COPY_FORM = "COPY (SELECT ...) TO STDOUT [WITH (FORMAT csv, HEADER)]"


def _prepare_copy(sql: str, param_types: tuple[int, ...]) -> Statement:
    """`COPY ... TO STDOUT` of a query or a table, in text or CSV; nothing is written or read
    on the server, so COPY FROM and COPY to a file or program are refused as PostgreSQL refuses
    them to a user without those rights."""
    match = _COPY.match(sql.strip())
    if not match:
        raise SqlError("42601", "cannot read the COPY statement", hint=_COPY_FORM)
    if match.group("direction").lower() == "from":
        raise SqlError("0A000", "COPY FROM is not supported: northstar is read-only", hint=_COPY_FORM)
    if match.group("target").lower() != "stdout":
        raise SqlError(
            "42501",
            "COPY to a file or a program on the server is not allowed",
            hint="COPY ... TO STDOUT writes to the client (psql: \\copy ... TO 'file')",
        )
    if match.group("query") is not None:
        inner = prepare(match.group("query"), param_types)
        if inner.kind != "query":
            raise SqlError("42601", "COPY needs a SELECT (or a table)", hint=_COPY_FORM)
        tree, types = inner.tree, inner.param_types
    else:
        try:
            table = exp.to_table(match.group("table"), dialect="postgres")
            columns = [
                exp.column(exp.to_identifier(name.strip().strip('"'), quoted=name.strip().startswith('"')))
                for name in (match.group("columns") or "").split(",")
                if name.strip()
            ]
        except ParseError as exc:
            raise SqlError(
                "42601", f"cannot read the COPY table name: {str(exc).splitlines()[0]}", hint=_COPY_FORM
            ) from exc
        tree, types = exp.select(*(columns or [exp.Star()])).from_(table), list(param_types)
    return Statement(sql, "copy", tree, param_types=types, copy=_copy_format(match.group("options")))


def _copy_format(options: str) -> protocol.CopyFormat:
    """The options of COPY, in the parenthesized (`WITH (FORMAT csv, HEADER)`) or the older
    (`WITH CSV HEADER DELIMITER ';'`) syntax, which psql's \\copy passes on as written."""
    tokens = [
        (m.group(1).replace("''", "'"), True) if m.group(1) is not None else (m.group(2).lower(), False)
        for m in _COPY_TOKEN.finditer(options)
    ]
    if tokens and tokens[0] == ("with", False):
        tokens = tokens[1:]
    settings: dict[str, Any] = {}
    i = 0

    def value() -> str:
        nonlocal i
        if i < len(tokens) and tokens[i] == ("as", False):
            i += 1
        if i >= len(tokens):
            raise SqlError("42601", f"COPY option {name.upper()} needs a value", hint=_COPY_FORM)
        i += 1
        return tokens[i - 1][0]

    while i < len(tokens):
        name, i = tokens[i][0], i + 1
        if name == "format":
            kind = value().lower()
            if kind == "binary":
                raise SqlError("0A000", "COPY in binary format is not supported", hint=_COPY_FORM)
            if kind not in ("text", "csv"):
                raise SqlError("22023", f'COPY format "{kind}" not recognized', hint=_COPY_FORM)
            settings["csv"] = kind == "csv"
        elif name == "csv":
            settings["csv"] = True
        elif name == "binary":
            raise SqlError("0A000", "COPY in binary format is not supported", hint=_COPY_FORM)
        elif name == "header":
            settings["header"] = True
            if i < len(tokens) and tokens[i][0].lower() in ("true", "on", "1", "false", "off", "0"):
                settings["header"] = tokens[i][0].lower() in ("true", "on", "1")
                i += 1
        elif name in ("delimiter", "null", "quote"):
            settings[name] = value()
            if name != "null" and len(settings[name]) != 1:
                raise SqlError("22023", f"COPY {name} must be a single one-byte character", hint=_COPY_FORM)
        elif name == "encoding":
            if value().lower().replace("-", "").replace("_", "") != "utf8":
                raise SqlError("0A000", "COPY writes UTF8 only", hint=_COPY_FORM)
        else:
            raise SqlError(
                "0A000",
                f'COPY option "{name}" is not supported',
                hint="supported: FORMAT text|csv, HEADER, DELIMITER, NULL, QUOTE, ENCODING 'UTF8'",
            )
    return protocol.CopyFormat(**settings)


def _cursor_name(text: str) -> str:
    return text[1:-1] if text.startswith('"') else text.lower()


@dataclass
class Cursor:
    result: Result
    position: int = 0


def _param_index(node: exp.Expression) -> int:
    try:
        return int(node.this.name if isinstance(node.this, exp.Expression) else node.name)
    except (TypeError, ValueError):
        raise SqlError("42601", f"unsupported placeholder {node.sql('postgres')}; use $1, $2, ...") from None


def bind(tree: exp.Expression, params: list[Any]) -> exp.Expression:
    """Replaces $n with sqlglot literals of the bound values (values never become SQL text)."""

    def literal(node: exp.Expression) -> exp.Expression:
        if isinstance(node, (exp.Parameter, exp.Placeholder)):
            index = _param_index(node)
            if index < 1 or index > len(params):
                raise SqlError("08P01", f"there is no parameter ${index}")
            value = params[index - 1]
            parent = node.parent
            while isinstance(parent, (exp.Paren, exp.Cast)):
                parent = parent.parent
            if isinstance(value, str) and isinstance(parent, exp.Any) and value.startswith("{"):
                # A list bound with an unspecified type (psycopg's text arrays of str).
                try:
                    value = protocol.parse_array_text(value)
                except ValueError:
                    pass
            return to_literal(value)
        return node

    bound = tree.copy().transform(literal)
    for any_ in list(bound.find_all(exp.Any)):
        # ANY($1::text[]) bound to a list: the list itself, as ANY(ARRAY[...]) is read.
        inner = any_.this.unnest() if isinstance(any_.this, exp.Paren) else any_.this
        if isinstance(inner, exp.Cast) and isinstance(inner.this, exp.Array):
            inner.replace(inner.this)
    return bound


def to_literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, (list, tuple)):
        return exp.Array(expressions=[to_literal(v) for v in value])
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return exp.Literal.string(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    return exp.Literal.string(str(value))


def infer_param_types(statement: Statement, tables: list[CatalogTable]) -> list[int]:
    """ParameterDescription types: declared ones; for $n in LIMIT/OFFSET int8; compared with a
    known column, that column's type; otherwise text."""
    types = list(statement.param_types)
    if statement.tree is None:
        return types
    by_column = {c.name: c.type for t in tables for c in t.columns}
    for node in statement.tree.find_all(exp.Parameter, exp.Placeholder):
        index = _param_index(node) - 1
        if index < 0 or index >= len(types) or types[index]:
            continue
        parent = node.parent
        guess = protocol.TEXT
        if isinstance(parent, (exp.Limit, exp.Offset)):
            guess = protocol.INT8
        elif isinstance(parent, exp.Binary):
            other = parent.expression if parent.this is node else parent.this
            if isinstance(other, exp.Column) and other.name in by_column:
                guess = protocol.NORTHSTAR_TYPES.get(by_column[other.name], protocol.TEXT)
        elif isinstance(parent, exp.Cast):
            guess = _cast_oid(parent.to)
        types[index] = guess
    return types


def _cast_oid(to: exp.Expression) -> int:
    name = to.sql("postgres").lower()
    return {
        "bigint": protocol.INT8,
        "int": protocol.INT4,
        "integer": protocol.INT4,
        "smallint": protocol.INT2,
        "double precision": protocol.FLOAT8,
        "boolean": protocol.BOOL,
        "date": protocol.DATE,
        "timestamp": protocol.TIMESTAMP,
    }.get(name, protocol.TEXT)


# -- the server ---------------------------------------------------------------------------


class SqlEndpoint:
    """Listens for PostgreSQL clients and answers them from the engine provider's builds."""

    def __init__(
        self,
        engines: EngineProvider,
        authenticator: Authenticator | None = None,
        limits: SqlLimits | None = None,
        limiter: ConcurrencyLimiter | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.engines = engines
        self.auth = authenticator or Authenticator()
        self.audit = audit or AuditLog(None)
        self.limits = limits or SqlLimits(
            query_timeout_s=engines.limits.query_timeout_s, max_result_rows=engines.limits.max_result_rows
        )
        # Per-token concurrency, shared with HTTP: a token's queries count on both interfaces.
        self.limiter = limiter
        self.connections: dict[int, Connection] = {}
        self._catalogs: dict[str, catalog.CatalogDatabase] = {}
        self._catalog_lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None
        self._warming: asyncio.Future | None = None
        self._next_pid = 1000
        # Statements (parse, plan, run) take a worker each; a cancelled one frees it at once.
        self.workers = ThreadPoolExecutor(self.limits.workers, thread_name_prefix="northstar-sql")
        # Row encoding has its own pool, so answers still go out while every worker is busy.
        self.encoders = ThreadPoolExecutor(2, thread_name_prefix="northstar-sql-encode")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start_in_thread(self, host: str, port: int, sock: Any = None, timeout: float = 60) -> None:
        """Serve on an event loop of its own in a daemon thread (what `northstar serve` does),
        so nothing a SQL client sends runs on the caller's (the HTTP server's) loop."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start(host, port, sock=sock))
            except BaseException as exc:
                ready.set_exception(exc)
                loop.close()
                return
            ready.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="northstar-sql-loop", daemon=True)
        self._thread.start()
        ready.result(timeout)

    def stop_thread(self, timeout: float = 30) -> None:
        """Close the endpoint started by `start_in_thread` and end its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.close(), loop).result(timeout)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)

    async def start(self, host: str, port: int, sock: Any = None) -> None:
        """Listens on `host:port`, or on `sock` when the caller has bound it already."""
        self._loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await asyncio.start_server(self._accept, sock=sock)
        else:
            self._server = await asyncio.start_server(self._accept, host, port)
        # Build the catalog database now (about half a second) rather than on a first client.
        self._warming = asyncio.get_running_loop().run_in_executor(None, self._warm_catalog)
        log.info("SQL endpoint listening on %s:%s (database %s, auth %s)", host, port, DATABASE, self.auth.method)

    @property
    def port(self) -> int:
        assert self._server is not None
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._warming is not None:
            await self._warming
        if self._server is not None:
            self._server.close()
            for connection in list(self.connections.values()):
                connection.cancel()
                connection.writer.close()
            await self._server.wait_closed()
        self.workers.shutdown(wait=False, cancel_futures=True)
        self.encoders.shutdown(wait=False, cancel_futures=True)
        with self._catalog_lock:
            for db in self._catalogs.values():
                db.close()
            self._catalogs.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._next_pid += 1
        connection = Connection(self, reader, writer, self._next_pid, secrets.randbits(31))
        try:
            await connection.serve()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except protocol.ProtocolViolation as exc:
            log.warning("closing a SQL connection: %s", exc)
        except SqlError as exc:  # before login (an oversized password message): say why, close
            try:
                writer.write(protocol.error_response(exc.sqlstate, exc.message, hint=exc.hint, severity="FATAL"))
                await asyncio.wait_for(writer.drain(), 1)
            except (TimeoutError, ConnectionError):
                pass
        finally:
            # A client gone mid-statement wants no answer: stop its warehouse work too.
            connection.cancel()
            self.connections.pop(connection.process_id, None)
            writer.close()

    def _warm_catalog(self) -> None:
        try:
            with self.engines.engine() as engine:
                self.catalog_for(engine)
        except Exception as exc:  # no build yet: the first query reports it
            log.info("SQL catalog not prepared at startup: %s", exc)

    def cancel(self, process_id: int, secret_key: int) -> None:
        connection = self.connections.get(process_id)
        if connection is not None and connection.secret_key == secret_key:
            connection.cancel()

    def catalog_for(self, engine: MetricsEngine) -> catalog.CatalogDatabase:
        key = f"{engine.build.build_id}:{id(engine)}"
        with self._catalog_lock:
            db = self._catalogs.get(key)
            if db is None:
                db = catalog.CatalogDatabase(
                    visible_tables(engine),
                    memory_limit=self.limits.catalog_memory_limit,
                    timeout_s=self.limits.query_timeout_s,
                    max_rows=self.limits.max_result_rows,
                )
                self._catalogs[key] = db
                # Keep the previous build's catalog a while: a query may still be reading it.
                while len(self._catalogs) > 2:
                    oldest = next(iter(self._catalogs))
                    self._catalogs.pop(oldest).close()
            return db


def visible_tables(engine: MetricsEngine) -> list[CatalogTable]:
    return [
        CatalogTable(t.schema, t.name, t.comment, tuple(CatalogColumn(c.name, c.type, c.comment) for c in t.columns))
        for t in semantic_sql.visible_tables(engine)
    ]


class Connection:
    """One client connection and its protocol state."""

    def __init__(
        self,
        endpoint: SqlEndpoint,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        process_id: int,
        secret_key: int,
    ) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.process_id = process_id
        self.secret_key = secret_key
        self.session: Session | None = None
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.cursors: dict[str, Cursor] = {}
        self.token: Any = None  # the API token the client logged in with, if any
        peer = writer.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else None
        self._cancelled = asyncio.Event()
        # The running statement's handle on its warehouse work (None between statements).
        self._cancellation: Cancellation | None = None
        self._loop = asyncio.get_running_loop()

    # -- plumbing ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def flush(self) -> None:
        await self.writer.drain()

    async def read_message(self, limit: int = AUTH_MESSAGE) -> tuple[bytes, bytes]:
        """The next message; one longer than `limit` is read past and raises MessageTooLarge."""
        header = await self.reader.readexactly(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        if length < 4 or length > MAX_MESSAGE:
            raise protocol.ProtocolViolation(f"invalid message length {length}")
        if length - 4 > limit:
            left = length - 4
            while left:  # never held in memory
                left -= len(await self.reader.readexactly(min(left, 65536)))
            raise MessageTooLarge(kind, length - 4, limit)
        return kind, await self.reader.readexactly(length - 4)

    def cancel(self) -> None:
        """Called from the cancel-request connection (or when the client is gone): stop the
        running statement, if any, in the warehouse too."""
        cancellation = self._cancellation
        if cancellation is None:
            return
        self._loop.call_soon_threadsafe(self._cancelled.set)
        # Interrupting may mean a round trip (PostgreSQL's cancel request): not on the loop.
        threading.Thread(target=cancellation.cancel, name="northstar-sql-cancel", daemon=True).start()

    # -- startup -------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            # From connect to logged in, as PostgreSQL's authentication_timeout: an idle or
            # stalled client does not hold a connection open.
            async with asyncio.timeout(self.endpoint.limits.login_timeout_s):
                startup = await self._startup()
                if startup is None:
                    return
                admitted = await self._authenticate(startup)
                self._audit(
                    "login", None, 0.0, "00000" if admitted else "28000", None, user=startup.parameters.get("user", "")
                )
                if not admitted:
                    return
        except TimeoutError:
            self.send(
                protocol.error_response(
                    "57014",
                    "canceling authentication due to timeout",
                    hint=f"log in within {self.endpoint.limits.login_timeout_s:g} s",
                    severity="FATAL",
                )
            )
            try:
                await asyncio.wait_for(self.flush(), 1)
            except (TimeoutError, ConnectionError):
                pass
            return
        user = startup.parameters.get("user", "northstar")
        self.session = Session(user, self.process_id)
        self.endpoint.connections[self.process_id] = self
        for name, value in REPORTED.items():
            if name == "application_name":
                value = startup.parameters.get("application_name", "")
            self.send(protocol.parameter_status(name, value))
        for name, value in startup.parameters.items():
            if name not in ("user", "database", "application_name", "client_encoding", "replication"):
                self.session.settings[name] = value
        self.send(protocol.backend_key_data(self.process_id, self.secret_key))
        self.send(protocol.ready_for_query("I"))
        await self.flush()
        await self._message_loop()

    async def _startup(self) -> protocol.Startup | None:
        while True:
            length = struct.unpack("!i", await self.reader.readexactly(4))[0]
            if length < 8 or length > 10000:
                raise protocol.ProtocolViolation(f"invalid startup packet length {length}")
            startup = protocol.parse_startup(await self.reader.readexactly(length - 4))
            if startup.code in (protocol.SSL_REQUEST, protocol.GSSENC_REQUEST):
                # Plain text only (loopback use); the client carries on without encryption.
                self.writer.write(b"N")
                await self.flush()
                continue
            if startup.code == protocol.CANCEL_REQUEST:
                self.endpoint.cancel(startup.process_id, startup.secret_key)
                return None
            if startup.code != protocol.PROTOCOL_VERSION:
                self.send(
                    protocol.error_response(
                        "0A000",
                        f"unsupported frontend protocol {startup.code >> 16}."
                        f"{startup.code & 0xFFFF}: server supports 3.0",
                        severity="FATAL",
                    )
                )
                await self.flush()
                return None
            # Without a database parameter PostgreSQL would use the user name; any user may
            # connect here, so only an explicit other database is refused.
            database = startup.parameters.get("database")
            if database and database != DATABASE:
                self.send(
                    protocol.error_response(
                        "3D000",
                        f'database "{database}" does not exist',
                        hint=f'connect to database "{DATABASE}"',
                        severity="FATAL",
                    )
                )
                await self.flush()
                return None
            return startup

    async def _authenticate(self, startup: protocol.Startup) -> bool:
        auth = self.endpoint.auth
        user = startup.parameters.get("user", "")
        try:
            method, verifier, candidates = auth.resolve(user)
        except TokenStoreUnavailable as exc:
            return await self._fatal(
                "57P03",
                f"the server cannot check API tokens, so it admits nobody: {exc.message}",
                hint="an administrator must repair the token store (or serve with --open)",
            )
        if method == "trust":
            self.send(protocol.authentication_ok())
            return True
        if method == "cleartext":
            self.send(protocol.authentication_cleartext())
            await self.flush()
            kind, payload = await self.read_message()
            if kind != b"p":
                raise protocol.ProtocolViolation("expected a password message")
            password = payload.rstrip(b"\x00").decode("utf-8", errors="replace")
            if auth.method == "tokens":
                try:
                    self.token = auth.tokens.verify(password)
                except TokenStoreUnavailable as exc:
                    return await self._fatal("57P03", f"the server cannot check API tokens: {exc.message}")
                if self.token is None:
                    return await self._refuse(user)
                return await self._admit()
            verdict = auth.check_password(user, password) if auth.check_password else None
            if verdict is False:
                return await self._refuse(user)
            self.send(protocol.authentication_ok())
            return True
        if verifier is None:
            return await self._refuse(user)
        self.send(protocol.authentication_sasl(["SCRAM-SHA-256"]))
        await self.flush()
        kind, payload = await self.read_message()
        reader = protocol.Reader(payload)
        mechanism = reader.cstring()
        if kind != b"p" or mechanism != "SCRAM-SHA-256":
            self.send(protocol.error_response("28000", f"unsupported SASL mechanism {mechanism!r}", severity="FATAL"))
            await self.flush()
            return False
        size = reader.int32()
        exchange = protocol.ScramExchange(verifier)
        try:
            self.send(protocol.authentication_sasl_continue(exchange.server_first(reader.bytes(size))))
            await self.flush()
            kind, payload = await self.read_message()
            matched, final = exchange.server_final_among(payload, [v for v, _ in candidates])
        except (protocol.ScramError, ValueError) as exc:
            self.send(protocol.error_response("08P01", f"invalid SCRAM exchange: {exc}", severity="FATAL"))
            await self.flush()
            return False
        if matched is None:
            return await self._refuse(user)
        self.send(protocol.authentication_sasl_final(final))
        token = candidates[matched][1]
        if token is not None:
            self.token = token
            return await self._admit()
        self.send(protocol.authentication_ok())
        return True

    async def _fatal(self, sqlstate: str, message: str, hint: str | None = None) -> bool:
        self.send(protocol.error_response(sqlstate, message, hint=hint, severity="FATAL"))
        await self.flush()
        return False

    async def _admit(self) -> bool:
        """A token's holder reads data only with the metrics:read scope (as over HTTP)."""
        if not self.token.allows("metrics:read"):
            self.send(
                protocol.error_response(
                    "42501", f'token "{self.token.name}" lacks the metrics:read scope', severity="FATAL"
                )
            )
            await self.flush()
            return False
        self.send(protocol.authentication_ok())
        return True

    async def _refuse(self, user: str) -> bool:
        self.send(
            protocol.error_response("28P01", f'password authentication failed for user "{user}"', severity="FATAL")
        )
        await self.flush()
        return False

    # -- message loop --------------------------------------------------------------------

    async def _message_loop(self) -> None:
        failed = False  # after an error in the extended protocol, skip to Sync
        while True:
            try:
                kind, payload = await self.read_message(self.endpoint.limits.max_statement_bytes)
            except MessageTooLarge as exc:
                log.info("message %r refused: %s", exc.kind, exc.message)
                if exc.kind == b"Q":
                    self._error(exc)
                    self.send(protocol.ready_for_query(self.session.status))
                    await self.flush()
                elif not failed:
                    self._error(exc)
                    failed = True
                continue
            if kind == b"X":
                return
            if kind in (b"Q", b"P", b"B", b"D", b"E") and not await self._still_admitted():
                return
            # A cancel request stops whatever this message started: parsing, waiting for a
            # worker, or the warehouse statement.
            self._cancellation = Cancellation()
            self._cancelled.clear()
            if kind == b"Q":
                await self._simple_query(payload.rstrip(b"\x00").decode("utf-8", errors="replace"))
                self.send(protocol.ready_for_query(self.session.status))
                await self.flush()
                continue
            if kind == b"S":
                failed = False
                self.send(protocol.ready_for_query(self.session.status))
                await self.flush()
                continue
            if kind == b"H":
                await self.flush()
                continue
            if failed:
                continue
            try:
                await self._extended(kind, payload)
            except Exception as exc:  # said to the client (a bug too: logged), the connection goes on
                error = as_sql_error(exc, f"message {kind!r}")
                log.info("extended-protocol message %r refused (%s): %s", kind, error.sqlstate, error.message)
                self._error(error)
                failed = True

    async def _still_admitted(self) -> bool:
        """Before each statement: is the session's token (or the open mode it logged in under)
        still good? A revoked token, a store that now requires a token the session lacks, or a
        store that cannot be read ends the session with a FATAL error (revocation reaches open
        sessions on their next statement; the store is only re-parsed when the file changed)."""
        auth = self.endpoint.auth
        if auth.method != "tokens":
            return True
        try:
            if not auth.tokens.requires_tokens():
                return True
            current = auth.tokens.get(self.token.id) if self.token is not None else None
        except TokenStoreUnavailable as exc:
            refusal = SqlError(
                sqlstate_for(exc), f"the server cannot check API tokens, so the session is closed: {exc.message}"
            )
        else:
            if current is not None:
                return True
            refusal = (
                SqlError("28000", f'token "{self.token.name}" was revoked; the session is closed')
                if self.token is not None
                else SqlError(
                    "28000",
                    "API tokens are now required on this server; the session, opened without one, is closed",
                    hint="reconnect with a token as the password",
                )
            )
        self._audit("session", None, 0.0, refusal.sqlstate, None)
        await self._fatal(refusal.sqlstate, refusal.message, hint=refusal.hint)
        return False

    def _error(self, exc: SqlError) -> None:
        if self.session.status == "T":
            self.session.status = "E"
        self.send(protocol.error_response(exc.sqlstate, exc.message, hint=exc.hint, position=exc.position))

    async def _offload(self, func: Callable[..., Any], *args: Any) -> Any:
        """`func(*args)` on a statement worker (parsing a big statement is seconds of CPU),
        unless a cancel request comes first."""
        cancellation = self._cancellation

        def guarded() -> Any:
            if cancellation is not None:
                cancellation.check()  # cancelled while waiting for a worker
            return func(*args)

        return await self._until_cancelled(self._loop.run_in_executor(self.endpoint.workers, guarded))

    async def _until_cancelled(self, work: asyncio.Future) -> Any:
        """The answer of `work`, or 57014 once a cancel request has stopped it."""
        cancelled = asyncio.ensure_future(self._cancelled.wait())
        try:
            done, _ = await asyncio.wait({work, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
        if work not in done:
            # The warehouse was interrupted; answer once the worker has really stopped (as
            # PostgreSQL does), or after a grace period if a driver ignores interrupts.
            await asyncio.wait({work}, timeout=CANCEL_GRACE_S)
            if not work.done():
                work.add_done_callback(_retrieve)
            raise SqlError("57014", "canceling statement due to user request")
        try:
            return work.result()
        except QueryCancelled as exc:
            raise as_sql_error(exc) from exc

    async def _simple_query(self, sql: str) -> None:
        try:
            parts = await self._offload(statements.split_statements, sql)
        except SqlError as exc:
            self._error(exc)
            return
        if not parts:
            self.send(protocol.empty_query_response())
            return
        for part in parts:
            try:
                statement = await self._offload(prepare, part)
                result = await self._audited_run(statement, [])
            except Exception as exc:  # said to the client (a bug too: logged), the connection goes on
                error = as_sql_error(exc, part)
                log.info("statement refused (%s): %s: %s", error.sqlstate, error.message, part)
                self._error(error)
                return  # the rest of a multi-statement Query is skipped, as PostgreSQL does
            await self._send_result(result, [0] * len(result.columns), describe=True)
            self.send(protocol.command_complete(result.tag))

    async def _send_result(
        self, result: Result, formats: list[int], describe: bool, start: int = 0, limit: int | None = None
    ) -> int:
        """Streams the rows in batches encoded on a worker, waiting for the client to take each
        batch (backpressure) before encoding the next."""
        for name, value in result.parameter_status:
            self.send(protocol.parameter_status(name, value))
        for notice in result.notices if start == 0 else ():
            self.send(protocol.notice_response(notice))
        if result.copy is not None:  # the whole answer, whatever the Execute's row limit
            self.send(protocol.copy_out_response(len(result.columns)))
            if result.copy.header:
                self.send(protocol.copy_header([c.name for c in result.columns], result.copy))
            oids = [c.type_oid for c in result.columns]
            for first in range(0, len(result.rows), ENCODE_BATCH):
                batch = result.rows[first : first + ENCODE_BATCH]
                self.send(
                    await self._loop.run_in_executor(
                        self.endpoint.encoders, protocol.copy_data, batch, oids, result.copy
                    )
                )
                await self.flush()
            self.send(protocol.copy_done())
            return len(result.rows)
        if result.returns_rows and describe:
            self.send(protocol.row_description(result.columns, formats))
        end = min(len(result.rows), start + limit) if limit else len(result.rows)
        oids = [c.type_oid for c in result.columns]
        for first in range(start, end, ENCODE_BATCH):
            batch = result.rows[first : min(end, first + ENCODE_BATCH)]
            if len(batch) <= INLINE_ROWS:
                self.send(encode_rows(batch, oids, formats))
                continue
            self.send(await self._loop.run_in_executor(self.endpoint.encoders, encode_rows, batch, oids, formats))
            await self.flush()
        return max(0, end - start)

    async def _extended(self, kind: bytes, payload: bytes) -> None:
        if kind == b"P":
            message = protocol.parse_parse(payload)
            statement = await self._offload(prepare, message.query, message.param_types)
            if message.name and message.name in self.statements:
                raise SqlError("42P05", f'prepared statement "{message.name}" already exists')
            self.statements[message.name] = statement
            self.send(protocol.parse_complete())
        elif kind == b"B":
            message = protocol.parse_bind(payload)
            statement = self._statement(message.statement)
            if len(message.params) != len(statement.param_types):
                raise SqlError(
                    "08P01",
                    f"bind message supplies {len(message.params)} parameters, but prepared "
                    f"statement requires {len(statement.param_types)}",
                )
            types = await self._param_types(statement)
            formats = protocol.formats_for(message.param_formats, len(message.params))
            try:
                params = [protocol.decode_param(raw, oid, fmt) for raw, oid, fmt in zip(message.params, types, formats)]
            except ValueError as exc:
                raise SqlError("22P02", f"invalid parameter value: {exc}") from exc
            self.portals[message.portal] = Portal(statement, params, message.result_formats)
            self.send(protocol.bind_complete())
        elif kind == b"D":
            message = protocol.parse_describe(payload)
            if message.kind == "S":
                statement = self._statement(message.name)
                self.send(protocol.parameter_description(await self._param_types(statement)))
                result = await self._describe_statement(statement)
                self.send(
                    protocol.row_description(result.columns) if result and result.returns_rows else protocol.no_data()
                )
            elif message.name not in self.portals and message.name in self.cursors:
                # A DECLAREd cursor is a portal too: psycopg's named cursors describe it by name.
                self.send(protocol.row_description(self.cursors[message.name].result.columns))
            else:
                portal = self._portal(message.name)
                result = await self._portal_result(portal)
                if result.returns_rows:
                    formats = protocol.formats_for(portal.result_formats, len(result.columns))
                    self.send(protocol.row_description(result.columns, formats))
                else:
                    self.send(protocol.no_data())
        elif kind == b"E":
            message = protocol.parse_execute(payload)
            portal = self._portal(message.portal)
            if portal.statement.kind == "empty":
                self.send(protocol.empty_query_response())
                return
            result = await self._portal_result(portal)
            formats = protocol.formats_for(portal.result_formats, len(result.columns))
            limit = message.max_rows if message.max_rows > 0 else None
            portal.sent += await self._send_result(result, formats, describe=False, start=portal.sent, limit=limit)
            if limit and portal.sent < len(result.rows):
                self.send(protocol.portal_suspended())
            else:
                self.send(protocol.command_complete(result.tag))
        elif kind == b"C":
            message = protocol.parse_close(payload)
            (self.statements if message.kind == "S" else self.portals).pop(message.name, None)
            self.send(protocol.close_complete())
        elif kind == b"d" or kind == b"c" or kind == b"f":
            raise SqlError("0A000", "COPY is not supported")
        else:
            raise protocol.ProtocolViolation(f"unexpected message type {kind!r}")

    def _statement(self, name: str) -> Statement:
        if name not in self.statements:
            raise SqlError("26000", f'prepared statement "{name}" does not exist')
        return self.statements[name]

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise SqlError("34000", f'portal "{name}" does not exist')
        return self.portals[name]

    async def _param_types(self, statement: Statement) -> list[int]:
        if statement.tree is None or all(statement.param_types):
            return statement.param_types
        tables = await self._offload(self._tables)
        statement.param_types = infer_param_types(statement, tables)
        return statement.param_types

    def _tables(self) -> list[CatalogTable]:
        try:
            with self.endpoint.engines.engine() as engine:
                return self.endpoint.catalog_for(engine).tables
        except Exception:  # no build yet: no inference
            return []

    async def _describe_statement(self, statement: Statement) -> Result | None:
        if statement.kind == "fetch":
            match = _FETCH.match(" ".join(statement.sql.split()))
            cursor = self.cursors.get(_cursor_name(match.group("name"))) if match else None
            return Result("", cursor.result.columns) if cursor and match.group("verb").lower() == "fetch" else None
        if statement.kind != "query":
            return None
        # Run with NULL parameters for the row shape only; keep the answer when there are none
        # (then it is the statement's answer, and audited as such).
        run = self._run if statement.param_types else self._audited_run
        result = await run(statement, [None] * len(statement.param_types))
        if not statement.param_types:
            statement.described = result
        return result

    async def _portal_result(self, portal: Portal) -> Result:
        if portal.result is None:
            if portal.statement.described is not None and not portal.params:
                portal.result, portal.statement.described = portal.statement.described, None
            else:
                portal.result = await self._audited_run(portal.statement, portal.params)
        return portal.result

    # -- running -------------------------------------------------------------------------

    async def _audited_run(self, statement: Statement, params: list[Any]) -> Result:
        """`_run`, with one audit line for the statement: its kind, text, outcome, rows, time."""
        started = time.perf_counter()
        try:
            result = await self._run(statement, params)
        except BaseException as exc:
            kind = statements.first_word(statement.sql) or statement.kind
            self._audit(kind, statement.sql, started, sqlstate_for(exc), None)
            raise
        self._audit(
            statements.first_word(statement.sql) or statement.kind, statement.sql, started, "00000", len(result.rows)
        )
        return result

    def _audit(self, kind: str, sql: str | None, started: float, sqlstate: str, rows: int | None, **extra) -> None:
        token = self.token
        self.endpoint.audit.write(
            at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            interface="sql",
            caller=token.name if token is not None else ("anonymous" if sqlstate == "00000" else None),
            token_id=token.id if token is not None else None,
            client=self.client,
            kind=kind,
            sql=None if sql is None else (sql if len(sql) <= AUDIT_SQL_CHARS else sql[:AUDIT_SQL_CHARS] + "..."),
            sqlstate=sqlstate,
            outcome="ok" if sqlstate == "00000" else "error",
            rows=rows,
            ms=round((time.perf_counter() - started) * 1000, 3) if started else None,
            **extra,
        )

    async def _run(self, statement: Statement, params: list[Any]) -> Result:
        session = self.session
        if statement.kind == "empty":
            return Result("")
        if session.status == "E" and not (
            statement.kind == "utility"
            and statements.first_word(statement.sql) in ("rollback", "abort", "commit", "end")
        ):
            raise SqlError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
        if statement.kind == "fetch":
            return self._fetch(statement.sql)
        if statement.kind == "utility" and statements.first_word(statement.sql) == "close":
            return self._close_cursor(statement.sql)
        if statement.kind == "utility":
            utility = run_utility(statement.sql, session)
            return Result(utility.tag, utility.columns, list(utility.rows), utility.parameter_status)
        slot = self._acquire_slot()
        cancellation = self._cancellation or Cancellation()
        work: asyncio.Future | None = None
        try:
            work = self._loop.run_in_executor(
                self.endpoint.workers, self._execute_cancellable, statement, params, cancellation
            )
            try:
                result = await self._until_cancelled(work)
                if statement.kind == "declare":
                    self.cursors[statement.cursor] = Cursor(result)
                    return Result("DECLARE CURSOR")
                if statement.kind == "copy":
                    return Result(
                        f"COPY {len(result.rows)}",
                        result.columns,
                        result.rows,
                        notices=result.notices,
                        copy=statement.copy,
                    )
                return result
            except (SqlError, MetricsError):
                raise
            except Exception as exc:  # a bug in answering it (a ValueError too): logged, XX000
                raise internal_error(exc, statement.sql) from exc
        finally:
            if work is None or work.done():
                self._release_slot(slot, work)
            else:  # the slot stays taken while the worker still runs
                work.add_done_callback(lambda future: self._release_slot(slot, future))

    def _acquire_slot(self) -> str | None:
        """A token runs at most its `max_concurrent` statements at once, over SQL and HTTP together."""
        limiter = self.endpoint.limiter
        if limiter is None or self.token is None:
            return None
        return limiter.acquire(Caller(self.token))  # TooManyRequests: 53400 (sqlstates.py)

    def _release_slot(self, slot: str | None, work: asyncio.Future | None) -> None:
        if work is not None and work.done() and not work.cancelled():
            work.exception()  # retrieved: an abandoned statement's error is not "never retrieved"
        if slot is not None and self.endpoint.limiter is not None:
            self.endpoint.limiter.release(slot)

    def _fetch(self, sql: str) -> Result:
        match = _FETCH.match(" ".join(sql.split()))
        if not match:
            raise SqlError("0A000", "only FETCH [NEXT | ALL | FORWARD [n | ALL] | n] [FROM] cursor is supported")
        name = _cursor_name(match.group("name"))
        if name not in self.cursors:
            raise SqlError("34000", f'cursor "{name}" does not exist')
        cursor = self.cursors[name]
        count_text = (match.group("count") or "next").lower().replace("forward", "").strip() or "1"
        remaining = len(cursor.result.rows) - cursor.position
        count = remaining if count_text == "all" else 1 if count_text == "next" else int(count_text)
        rows = cursor.result.rows[cursor.position : cursor.position + count]
        cursor.position += len(rows)
        if match.group("verb").lower() == "move":
            return Result(f"MOVE {len(rows)}")
        return Result(f"FETCH {len(rows)}", cursor.result.columns, rows)

    def _close_cursor(self, sql: str) -> Result:
        text = " ".join(sql.split())
        if text.lower().rstrip(";").strip() == "close all":
            self.cursors.clear()
            return Result("CLOSE CURSOR ALL")
        match = _CLOSE.match(text)
        name = _cursor_name(match.group("name")) if match else ""
        if name not in self.cursors:
            raise SqlError("34000", f'cursor "{name}" does not exist')
        del self.cursors[name]
        return Result("CLOSE CURSOR")

    def _execute_cancellable(self, statement: Statement, params: list[Any], cancellation: Cancellation) -> Result:
        """In a worker thread: bind, then run with every warehouse call interruptible."""
        with cancellable(cancellation):
            cancellation.check()  # cancelled while waiting for a worker
            return self._execute(bind(statement.tree, params))

    def _execute(self, tree: exp.Expression) -> Result:
        """In a worker thread: the engine of the current build answers the statement."""
        with self.endpoint.engines.engine() as engine:
            if semantic_sql.reads_data_tables(tree):
                return self._semantic(tree, engine)
            db = self.endpoint.catalog_for(engine)
            columns, rows = db.run(tree, self.session)
            return Result(f"SELECT {len(rows)}", columns, rows)

    def _semantic(self, tree: exp.Expression, engine: MetricsEngine) -> Result:
        if self.token is not None and self.token.policy:
            # The token's row-level policy applies to SQL as to HTTP.
            engine = RestrictedEngine(engine, Caller(self.token).policy)
        answer = semantic_sql.answer(tree, engine)
        columns = tuple(
            protocol.Column(c.name, protocol.NORTHSTAR_TYPES.get(c.type, protocol.TEXT)) for c in answer.columns
        )
        return Result(f"SELECT {len(answer.rows)}", columns, list(answer.rows), notices=answer.notices)


def encode_rows(rows: list[tuple[Any, ...]], oids: list[int], formats: list[int]) -> bytes:
    """DataRow messages for `rows`, in the given formats (0 text, 1 binary)."""
    return b"".join(
        protocol.data_row(
            [
                protocol.encode_binary(v, oid) if fmt else protocol.encode_text(v, oid)
                for v, oid, fmt in zip(row, oids, formats)
            ]
        )
        for row in rows
    )


def _retrieve(future: asyncio.Future) -> None:
    """Marks an abandoned worker's error as seen (it was answered as 57014 already)."""
    if not future.cancelled():
        future.exception()
