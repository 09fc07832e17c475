"""The PostgreSQL-wire server: one asyncio task per connection, engine work in threads.

A connection authenticates, then runs statements from the simple (Query) or the extended
(Parse/Bind/Describe/Execute/Sync) protocol. Each statement is dispatched to the session
(SET, SHOW, BEGIN...), the catalog database (pg_catalog, information_schema, built-in
functions) or the semantic layer (semantic.*, marts.*), and answers with the same codec.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from api.sql_endpoint import catalog, protocol, semantic_sql
from api.sql_endpoint.catalog import SqlError
from api.auth import Caller
from metrics.engine import EngineProvider, MetricsEngine
from metrics.policy import RestrictedEngine
from metrics.errors import MetricsError, WarehouseUnavailable

log = logging.getLogger("northstar.sql")

PasswordCheck = Callable[[str, str], "bool | None"]
MAX_MESSAGE = 64 * 1024 * 1024


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
    tokens: Any = None  # northstar.tokens.TokenStore, for method "tokens"
    preferred: str = "scram"  # with tokens: "scram" or "cleartext" when both could work

    @classmethod
    def from_settings(cls, settings: Any, tokens: Any = None) -> Authenticator:
        secret = settings.sql_password.get_secret_value() if settings.sql_password else None
        method = settings.sql_auth
        if secret is None and tokens is not None and method != "trust":
            # The spec's rule: open while no API token exists; then the password is a token.
            return cls("tokens", tokens=tokens, preferred="cleartext" if method == "cleartext" else "scram")
        if secret is None:
            if method == "scram":
                raise ValueError("sql_auth=scram needs a password: set NORTHSTAR_SQL_PASSWORD "
                                 "(or use sql_auth=trust or cleartext)")
            return cls("trust" if method in ("auto", "trust") else method, lambda user, password: None, None)
        verifier = (protocol.ScramVerifier.parse(secret) if secret.startswith("SCRAM-SHA-256$")
                    else protocol.ScramVerifier.from_password(secret))
        return cls("scram" if method == "auto" else method,
                   lambda user, password: verifier.matches(password), lambda user: verifier)


    def resolve(self, user: str) -> tuple[str, protocol.ScramVerifier | None, Any]:
        """(method, SCRAM verifier, token) for a client logging in as `user`.

        With API tokens: none active means the open mode (trust); a user named like an active
        token may prove it holds the token with SCRAM; otherwise the password must be a token
        itself (cleartext, as the HTTP API's bearer token)."""
        if self.method != "tokens":
            verifier = self.scram_verifier(user) if self.method == "scram" and self.scram_verifier else None
            return self.method, verifier, None
        if not self.tokens.has_active():
            return "trust", None, None
        token = self.tokens.by_name(user)
        if token is not None and token.scram and self.preferred == "scram":
            return "scram", protocol.ScramVerifier.parse(token.scram), token
        return "cleartext", None, None


# -- statements and results ---------------------------------------------------------------

@dataclass
class Result:
    tag: str
    columns: tuple[protocol.Column, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    parameter_status: tuple[tuple[str, str], ...] = ()

    @property
    def returns_rows(self) -> bool:
        return bool(self.columns)


@dataclass
class Statement:
    """One parsed statement (the unit of Parse and of each part of a Query)."""

    sql: str
    kind: str  # "empty", "utility", "query", "declare" (a cursor over `tree`), "fetch"
    tree: exp.Expression | None = None
    cursor: str | None = None
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
    parts = catalog.split_statements(sql)
    if not parts:
        return Statement(sql, "empty")
    if len(parts) > 1:
        raise SqlError("42601", "cannot insert multiple commands into a prepared statement",
                       hint="send one statement per Parse, or several in one simple Query")
    word = catalog.first_word(sql)
    if word == "declare":
        match = _DECLARE.match(" ".join(sql.split()))
        if not match:
            raise SqlError("42601", "cannot read the DECLARE statement",
                           hint="DECLARE name [NO SCROLL] CURSOR [WITH HOLD] FOR SELECT ...")
        inner = prepare(match.group("query"), param_types)
        if inner.kind != "query":
            raise SqlError("42601", "a cursor needs a SELECT")
        return Statement(sql, "declare", inner.tree, param_types=inner.param_types,
                         cursor=_cursor_name(match.group("name")))
    if word in ("fetch", "move"):
        return Statement(sql, "fetch")
    if word in catalog.UTILITY_WORDS:
        return Statement(sql, "utility")
    if word in catalog.WRITE_WORDS:
        raise SqlError("25006", f"cannot execute {word.upper()}: northstar is read-only", hint=catalog.SUPPORTED)
    if word == "copy":
        raise SqlError("0A000", "COPY is not supported", hint=catalog.SUPPORTED)
    if word not in catalog.QUERY_WORDS:
        raise SqlError("0A000", f"{word.upper() or 'this statement'} is not supported", hint=catalog.SUPPORTED)
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except ParseError as exc:
        raise SqlError("42601", f"syntax error: {str(exc).splitlines()[0]}", hint=catalog.SUPPORTED) from exc
    count = max((_param_index(p) for p in tree.find_all(exp.Parameter, exp.Placeholder)), default=0)
    types = list(param_types) + [0] * max(0, count - len(param_types))
    return Statement(sql, "query", tree, param_types=types)


# Cursors, as psqlODBC (Tableau, Excel over ODBC) uses them: DECLARE ... FOR SELECT, FETCH n.
_DECLARE = re.compile(r"declare\s+(?P<name>\"[^\"]+\"|[\w$]+)\s+(?:(?:binary|insensitive|asensitive|scroll|no\s+scroll)\s+)*"
                      r"cursor\s+(?:(?:with|without)\s+hold\s+)?for\s+(?P<query>.+)$", re.I | re.S)
_FETCH = re.compile(r"(?P<verb>fetch|move)\s+(?:(?P<count>next|all|forward\s+all|forward\s+\d+|forward|\d+)\s+)?"
                    r"(?:(?:from|in)\s+)?(?P<name>\"[^\"]+\"|[\w$]+)\s*;?$", re.I | re.S)
_CLOSE = re.compile(r"close\s+(?P<name>\"[^\"]+\"|[\w$]+)\s*;?$", re.I | re.S)


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
            return to_literal(params[index - 1])
        return node

    return tree.copy().transform(literal)


def to_literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, (int, float)):
        return exp.Literal.number(repr(value) if isinstance(value, float) else value)
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return exp.Literal.string(value.isoformat(sep=" ") if hasattr(value, "hour") else value.isoformat())
    return exp.Literal.string(str(value))


def infer_param_types(statement: Statement, tables: list[catalog.CatalogTable]) -> list[int]:
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
    return {"bigint": protocol.INT8, "int": protocol.INT4, "integer": protocol.INT4, "smallint": protocol.INT2,
            "double precision": protocol.FLOAT8, "boolean": protocol.BOOL, "date": protocol.DATE,
            "timestamp": protocol.TIMESTAMP}.get(name, protocol.TEXT)


# -- the server ---------------------------------------------------------------------------

class SqlEndpoint:
    """Listens for PostgreSQL clients and answers them from the engine provider's builds."""

    def __init__(self, engines: EngineProvider, authenticator: Authenticator | None = None) -> None:
        self.engines = engines
        self.auth = authenticator or Authenticator()
        self.connections: dict[int, Connection] = {}
        self._catalogs: dict[str, catalog.CatalogDatabase] = {}
        self._catalog_lock = threading.Lock()
        self._server: asyncio.base_events.Server | None = None
        self._warming: asyncio.Future | None = None
        self._next_pid = 1000

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_MESSAGE)
        # Build the catalog database now (about half a second) rather than on a first client.
        self._warming = asyncio.get_running_loop().run_in_executor(None, self._warm_catalog)
        log.info("SQL endpoint listening on %s:%s (database %s, auth %s)", host, port, catalog.DATABASE,
                 self.auth.method)

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
                connection.writer.close()
            await self._server.wait_closed()
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
        finally:
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
                db = catalog.CatalogDatabase(visible_tables(engine))
                self._catalogs[key] = db
                # Keep the previous build's catalog a while: a query may still be reading it.
                while len(self._catalogs) > 2:
                    oldest = next(iter(self._catalogs))
                    self._catalogs.pop(oldest).close()
            return db


def visible_tables(engine: MetricsEngine) -> list[catalog.CatalogTable]:
    return [catalog.CatalogTable(t.schema, t.name, t.comment,
                                 tuple(catalog.CatalogColumn(c.name, c.type, c.comment) for c in t.columns))
            for t in semantic_sql.visible_tables(engine)]


class Connection:
    """One client connection and its protocol state."""

    def __init__(self, endpoint: SqlEndpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 process_id: int, secret_key: int) -> None:
        self.endpoint = endpoint
        self.reader = reader
        self.writer = writer
        self.process_id = process_id
        self.secret_key = secret_key
        self.session: catalog.Session | None = None
        self.statements: dict[str, Statement] = {}
        self.portals: dict[str, Portal] = {}
        self.cursors: dict[str, Cursor] = {}
        self.token: Any = None  # the API token the client logged in with, if any
        self._cancelled = asyncio.Event()
        self._running = False
        self._interrupt: Callable[[], None] | None = None
        self._loop = asyncio.get_running_loop()

    # -- plumbing ------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def flush(self) -> None:
        await self.writer.drain()

    async def read_message(self) -> tuple[bytes, bytes]:
        header = await self.reader.readexactly(5)
        kind, length = header[:1], struct.unpack("!i", header[1:])[0]
        if length < 4 or length > MAX_MESSAGE:
            raise protocol.ProtocolViolation(f"invalid message length {length}")
        return kind, await self.reader.readexactly(length - 4)

    def cancel(self) -> None:
        """Called from the cancel-request connection: stop the running statement, if any."""
        if self._running:
            self._loop.call_soon_threadsafe(self._cancelled.set)
            if self._interrupt is not None:
                try:
                    self._interrupt()
                except Exception:  # the query may have just finished
                    pass

    # -- startup -------------------------------------------------------------------------

    async def serve(self) -> None:
        startup = await self._startup()
        if startup is None:
            return
        if not await self._authenticate(startup):
            return
        user = startup.parameters.get("user", "northstar")
        self.session = catalog.Session(user, self.process_id)
        self.endpoint.connections[self.process_id] = self
        for name, value in catalog.REPORTED.items():
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
                self.send(protocol.error_response("0A000", f"unsupported frontend protocol {startup.code >> 16}."
                                                  f"{startup.code & 0xFFFF}: server supports 3.0", severity="FATAL"))
                await self.flush()
                return None
            # Without a database parameter PostgreSQL would use the user name; any user may
            # connect here, so only an explicit other database is refused.
            database = startup.parameters.get("database")
            if database and database != catalog.DATABASE:
                self.send(protocol.error_response("3D000", f'database "{database}" does not exist',
                                                  hint=f'connect to database "{catalog.DATABASE}"', severity="FATAL"))
                await self.flush()
                return None
            return startup

    async def _authenticate(self, startup: protocol.Startup) -> bool:
        auth = self.endpoint.auth
        user = startup.parameters.get("user", "")
        method, verifier, token = auth.resolve(user)
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
                self.token = auth.tokens.verify(password)
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
            self.send(protocol.error_response("28000", f"unsupported SASL mechanism {mechanism!r}",
                                              severity="FATAL"))
            await self.flush()
            return False
        size = reader.int32()
        exchange = protocol.ScramExchange(verifier)
        try:
            self.send(protocol.authentication_sasl_continue(exchange.server_first(reader.bytes(size))))
            await self.flush()
            kind, payload = await self.read_message()
            accepted, final = exchange.server_final(payload)
        except (protocol.ScramError, ValueError) as exc:
            self.send(protocol.error_response("08P01", f"invalid SCRAM exchange: {exc}", severity="FATAL"))
            await self.flush()
            return False
        if not accepted:
            return await self._refuse(user)
        self.send(protocol.authentication_sasl_final(final))
        if token is not None:
            self.token = token
            return await self._admit()
        self.send(protocol.authentication_ok())
        return True

    async def _admit(self) -> bool:
        """A token's holder reads data only with the metrics:read scope (as over HTTP)."""
        if not self.token.allows("metrics:read"):
            self.send(protocol.error_response("42501", f'token "{self.token.name}" lacks the metrics:read scope',
                                              severity="FATAL"))
            await self.flush()
            return False
        self.send(protocol.authentication_ok())
        return True

    async def _refuse(self, user: str) -> bool:
        self.send(protocol.error_response("28P01", f'password authentication failed for user "{user}"',
                                          severity="FATAL"))
        await self.flush()
        return False

    # -- message loop --------------------------------------------------------------------

    async def _message_loop(self) -> None:
        failed = False  # after an error in the extended protocol, skip to Sync
        while True:
            kind, payload = await self.read_message()
            if kind == b"X":
                return
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
            except SqlError as exc:
                log.info("extended-protocol message %r refused (%s): %s", kind, exc.sqlstate, exc.message)
                self._error(exc)
                failed = True
            except (MetricsError, ValueError, struct.error, protocol.ProtocolViolation) as exc:
                self._error(_as_sql_error(exc))
                failed = True
            except Exception as exc:  # a bug: say so, log it, keep the connection
                log.exception("SQL message %r failed", kind)
                self._error(SqlError("XX000", f"internal error: {exc}"))
                failed = True

    def _error(self, exc: SqlError) -> None:
        if self.session.status == "T":
            self.session.status = "E"
        self.send(protocol.error_response(exc.sqlstate, exc.message, hint=exc.hint, position=exc.position))

    async def _simple_query(self, sql: str) -> None:
        try:
            parts = catalog.split_statements(sql)
        except SqlError as exc:
            self._error(exc)
            return
        if not parts:
            self.send(protocol.empty_query_response())
            return
        for part in parts:
            try:
                statement = prepare(part)
                result = await self._run(statement, [])
            except SqlError as exc:
                log.info("statement refused (%s): %s: %s", exc.sqlstate, exc.message, part)
                self._error(exc)
                return  # the rest of a multi-statement Query is skipped, as PostgreSQL does
            except (MetricsError, ValueError) as exc:
                self._error(_as_sql_error(exc))
                return
            except Exception as exc:  # a bug: say so, log it, keep the connection
                log.exception("SQL statement failed: %s", part)
                self._error(SqlError("XX000", f"internal error: {exc}"))
                return
            self._send_result(result, [0] * len(result.columns), describe=True)
            self.send(protocol.command_complete(result.tag))

    def _send_result(self, result: Result, formats: list[int], describe: bool, start: int = 0,
                     limit: int | None = None) -> int:
        for name, value in result.parameter_status:
            self.send(protocol.parameter_status(name, value))
        if result.returns_rows and describe:
            self.send(protocol.row_description(result.columns, formats))
        rows = result.rows[start:start + limit] if limit else result.rows[start:]
        oids = [c.type_oid for c in result.columns]
        for row in rows:
            self.send(protocol.data_row([
                protocol.encode_binary(v, oid) if fmt else protocol.encode_text(v, oid)
                for v, oid, fmt in zip(row, oids, formats)]))
        return len(rows)

    async def _extended(self, kind: bytes, payload: bytes) -> None:
        if kind == b"P":
            message = protocol.parse_parse(payload)
            statement = prepare(message.query, message.param_types)
            if message.name and message.name in self.statements:
                raise SqlError("42P05", f'prepared statement "{message.name}" already exists')
            self.statements[message.name] = statement
            self.send(protocol.parse_complete())
        elif kind == b"B":
            message = protocol.parse_bind(payload)
            statement = self._statement(message.statement)
            if len(message.params) != len(statement.param_types):
                raise SqlError("08P01", f"bind message supplies {len(message.params)} parameters, but prepared "
                                        f"statement requires {len(statement.param_types)}")
            types = self._param_types(statement)
            formats = protocol.formats_for(message.param_formats, len(message.params))
            try:
                params = [protocol.decode_param(raw, oid, fmt)
                          for raw, oid, fmt in zip(message.params, types, formats)]
            except ValueError as exc:
                raise SqlError("22P02", f"invalid parameter value: {exc}") from exc
            self.portals[message.portal] = Portal(statement, params, message.result_formats)
            self.send(protocol.bind_complete())
        elif kind == b"D":
            message = protocol.parse_describe(payload)
            if message.kind == "S":
                statement = self._statement(message.name)
                self.send(protocol.parameter_description(self._param_types(statement)))
                result = await self._describe_statement(statement)
                self.send(protocol.row_description(result.columns) if result and result.returns_rows
                          else protocol.no_data())
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
            portal.sent += self._send_result(result, formats, describe=False, start=portal.sent, limit=limit)
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

    def _param_types(self, statement: Statement) -> list[int]:
        if statement.tree is None or all(statement.param_types):
            return statement.param_types
        tables = self._tables()
        statement.param_types = infer_param_types(statement, tables)
        return statement.param_types

    def _tables(self) -> list[catalog.CatalogTable]:
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
        # Run with NULL parameters for the row shape only; keep the answer when there are none.
        result = await self._run(statement, [None] * len(statement.param_types))
        if not statement.param_types:
            statement.described = result
        return result

    async def _portal_result(self, portal: Portal) -> Result:
        if portal.result is None:
            if portal.statement.described is not None and not portal.params:
                portal.result, portal.statement.described = portal.statement.described, None
            else:
                portal.result = await self._run(portal.statement, portal.params)
        return portal.result

    # -- running -------------------------------------------------------------------------

    async def _run(self, statement: Statement, params: list[Any]) -> Result:
        session = self.session
        if statement.kind == "empty":
            return Result("")
        if session.status == "E" and not (statement.kind == "utility" and catalog.first_word(statement.sql) in (
                "rollback", "abort", "commit", "end")):
            raise SqlError("25P02", "current transaction is aborted, commands ignored until end of transaction block")
        if statement.kind == "fetch":
            return self._fetch(statement.sql)
        if statement.kind == "utility" and catalog.first_word(statement.sql) == "close":
            return self._close_cursor(statement.sql)
        if statement.kind == "utility":
            utility = catalog.run_utility(statement.sql, session)
            return Result(utility.tag, utility.columns, list(utility.rows), utility.parameter_status)
        tree = bind(statement.tree, params)
        self._cancelled.clear()
        self._running = True
        try:
            work = asyncio.ensure_future(asyncio.to_thread(self._execute, tree))
            cancelled = asyncio.ensure_future(self._cancelled.wait())
            done, _ = await asyncio.wait({work, cancelled}, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                # The engine call cannot always be stopped; its answer is dropped when it ends.
                raise SqlError("57014", "canceling statement due to user request")
            cancelled.cancel()
            try:
                result = work.result()
                if statement.kind == "declare":
                    self.cursors[statement.cursor] = Cursor(result)
                    return Result("DECLARE CURSOR")
                return result
            except (SqlError, MetricsError):
                raise
            except Exception as exc:  # a bug: say so, log it, keep the connection
                log.exception("SQL statement failed: %s", statement.sql)
                raise SqlError("XX000", f"internal error: {exc}") from exc
        finally:
            self._running = False
            self._interrupt = None

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
        rows = cursor.result.rows[cursor.position:cursor.position + count]
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

    def _execute(self, tree: exp.Expression) -> Result:
        """In a worker thread: the engine of the current build answers the statement."""
        with self.endpoint.engines.engine() as engine:
            if semantic_sql.reads_data_tables(tree):
                return self._semantic(tree, engine)
            db = self.endpoint.catalog_for(engine)
            columns, rows = db.run(tree, self.session, on_cursor=self._on_cursor)
            return Result(f"SELECT {len(rows)}", columns, rows)

    def _on_cursor(self, cursor) -> None:
        self._interrupt = cursor.interrupt
        if self._cancelled.is_set():
            cursor.interrupt()

    def _semantic(self, tree: exp.Expression, engine: MetricsEngine) -> Result:
        if self.token is not None and self.token.policy:
            # The token's row-level policy applies to SQL as to HTTP.
            engine = RestrictedEngine(engine, Caller(self.token).policy)
        try:
            answer = semantic_sql.answer(tree, engine)
        except semantic_sql.SqlEndpointError as exc:
            raise SqlError(exc.sqlstate, exc.message, exc.hint, exc.position) from exc
        columns = tuple(protocol.Column(c.name, protocol.NORTHSTAR_TYPES.get(c.type, protocol.TEXT))
                        for c in answer.columns)
        return Result(f"SELECT {len(answer.rows)}", columns, list(answer.rows))


def _as_sql_error(exc: Exception) -> SqlError:
    if isinstance(exc, WarehouseUnavailable):
        return SqlError("57P03", exc.message, hint="run `northstar build`; the endpoint answers once a build lands")
    if isinstance(exc, MetricsError):
        return SqlError("42000", exc.message)
    if isinstance(exc, (struct.error, protocol.ProtocolViolation)):
        return SqlError("08P01", f"invalid message: {exc}")
    return SqlError("22023", str(exc))
