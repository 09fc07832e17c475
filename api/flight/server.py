"""The Arrow Flight SQL server (pyarrow's Flight over gRPC) answering dbt Semantic Layer statements.

Flow, as Flight SQL clients (ADBC, JDBC) drive it:

- `GetFlightInfo(CommandStatementQuery)` runs the statement and returns its schema with one
  endpoint whose ticket (`TicketStatementQuery`) names the kept answer; `DoGet(ticket)` streams it.
- Prepared statements: `CreatePreparedStatement` returns a handle and the answer's Arrow schema
  (known without running a semantic-layer query: the engine types it); `GetFlightInfo(
  CommandPreparedStatementQuery)` runs it; `ClosePreparedStatement` forgets it.
- Metadata: `GetCatalogs`, `GetDbSchemas`, `GetTables`, `GetTableTypes`, `GetSqlInfo`.

Every call carries `authorization: Bearer <token>` (`AuthMiddlewareFactory`); refusals are
UNAUTHENTICATED (no or bad token) and PERMISSION_DENIED (scope, row-level policy), a bad query
INVALID_ARGUMENT naming what is wrong and the nearest valid names.
"""

from __future__ import annotations

import functools
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import DecodeError

from api.auth import Caller
from api.dbt_sl import catalog
from api.dbt_sl.service import SemanticLayerService
from api.flight import messages as m
from api.flight import statements
from api.flight.errors import (
    InvalidArgument,
    Unimplemented,
    for_client,
    install_clean_details,
)
from metrics.errors import QueryCancelled
from metrics.execution.cancel import Cancellation, cancellable

log = logging.getLogger("northstar.flight")

CATALOG = "northstar"
SCHEMA = "semantic_layer"
KEPT_ANSWERS = 256  # answers waiting for their DoGet
KEPT_PREPARED = 1024  # open prepared statements
CANCEL_POLL_S = 0.05  # how often a running call checks whether its client cancelled it


class AuthMiddleware(flight.ServerMiddleware):
    def __init__(self, caller: Caller) -> None:
        self.caller = caller


class AuthMiddlewareFactory(flight.ServerMiddlewareFactory):
    """Authenticates every call by its bearer token, before any handler runs."""

    def __init__(self, server: FlightSqlServer) -> None:
        self.server = server

    def start_call(self, info, headers):
        service = self.server.service
        if service is None:
            raise flight.FlightUnavailableError("the service is starting; retry in a moment.")
        values = headers.get("authorization") or []
        presented = None
        for value in values:
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                presented = token.strip()
        try:
            caller = service.caller(presented)
        except Exception as exc:  # noqa: BLE001 (Unauthorized, Forbidden, TokenStoreUnavailable, or a bug: re-raised)
            raise for_client(exc) from None
        return AuthMiddleware(caller)


def _rpc(handler):
    """A Flight RPC whose every failure reaches the client as `errors.for_client` says."""

    @functools.wraps(handler)
    def call(self, context, *args):
        try:
            return handler(self, context, *args)
        except Exception as exc:  # noqa: BLE001 (every failure is re-raised, for the client)
            raise for_client(exc) from None

    return call


class _Kept:
    """A bounded, insertion-ordered store of answers or prepared statements by handle."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, value: Any) -> bytes:
        handle = secrets.token_bytes(16)
        with self._lock:
            self._items[handle] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return handle

    def get(self, handle: bytes, pop: bool = False) -> Any:
        with self._lock:
            return self._items.pop(handle, None) if pop else self._items.get(handle)


def tls_of(settings: Any) -> tuple[bytes, bytes] | None:
    """The PEM certificate and key of `--flight-tls-cert/--flight-tls-key`, or None."""
    if settings.flight_tls_cert is None and settings.flight_tls_key is None:
        return None
    if settings.flight_tls_cert is None or settings.flight_tls_key is None:
        raise ValueError("the Flight SQL endpoint's TLS needs both --flight-tls-cert and --flight-tls-key.")
    return Path(settings.flight_tls_cert).read_bytes(), Path(settings.flight_tls_key).read_bytes()


class FlightSqlServer(flight.FlightServerBase):
    """Binds its port when constructed (so `northstar serve` can fail fast on a taken port);
    answers once `attach` gives it the service."""

    def __init__(self, host: str, port: int, tls: tuple[bytes, bytes] | None = None) -> None:
        scheme = "grpc+tls" if tls else "grpc+tcp"
        install_clean_details()
        self.service: SemanticLayerService | None = None
        self._answers = _Kept(KEPT_ANSWERS)
        self._prepared = _Kept(KEPT_PREPARED)
        super().__init__(
            f"{scheme}://{host}:{port}",
            tls_certificates=[tls] if tls else None,
            middleware={"auth": AuthMiddlewareFactory(self)},
        )
        self.host = host
        self.scheme = scheme

    def attach(self, service: SemanticLayerService) -> None:
        self.service = service

    @property
    def location(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    # -- helpers -------------------------------------------------------------------------

    def _caller(self, context) -> Caller:
        return context.get_middleware("auth").caller

    def _info(self, descriptor, table: pa.Table) -> flight.FlightInfo:
        handle = self._answers.put(table)
        ticket = flight.Ticket(m.pack(m.TicketStatementQuery(statement_handle=handle)))
        return flight.FlightInfo(table.schema, descriptor, [flight.FlightEndpoint(ticket, [])], table.num_rows, -1)

    def execute(self, caller: Caller, text: str) -> pa.Table:
        """A statement's answer (the call's, with the outer SQL applied)."""
        assert self.service is not None
        statement = statements.parse(text)
        table = self._call(caller, statement)
        if statement.outer_sql:
            table = statements.run_outer(statement.outer_sql, table)
        return table

    def _call(self, caller: Caller, statement: statements.Statement) -> pa.Table:
        service = self.service
        assert service is not None
        args = statement.arguments
        if statement.function == "query":
            request = statement.request()
            if statement.explain:
                return pa.table({"sql": [service.compile(caller, request)]})
            return service.query(caller, request, "flight")
        if statement.function == "dimension_values":
            metrics = tuple(statements._strings(args.get("metrics"), "metrics"))
            group_by = args.get("group_by")
            if isinstance(group_by, list) and len(group_by) == 1:
                group_by = group_by[0]
            if isinstance(group_by, statements.Item):
                group_by = statements._group_by(group_by).column
            if not isinstance(group_by, str) or not metrics:
                raise statements.StatementError(
                    "dimension_values takes metrics=[...] and one group_by='name'.", field="group_by"
                )
            return service.dimension_values(caller, metrics, group_by, "flight")

        def answer() -> pa.Table:
            with service.engine() as engine:
                return definitions(engine, statement)

        return service.described(caller, "flight", {"call": statement.function, **_plain(args)}, answer)

    def _run(self, context, text: str) -> pa.Table:
        """Run a statement for the call; the client cancelling the call (ADBC's cancel, a
        closed channel, a deadline) interrupts the warehouse statement it is running."""
        caller = self._caller(context)
        token = Cancellation()
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(CANCEL_POLL_S):
                if context.is_cancelled():
                    log.info("flight call cancelled by its client; stopping its warehouse statement")
                    token.cancel()
                    return

        watcher = threading.Thread(target=watch, name="flight-cancel-watch", daemon=True)
        watcher.start()
        started = time.perf_counter()
        try:
            with cancellable(token):
                answer = self.execute(caller, text)
            if token.cancelled:  # it finished as the client gave up: nobody will fetch it
                raise QueryCancelled("canceling statement due to user request")
            return answer
        finally:
            finished.set()
            watcher.join()
            log.debug("flight statement took %.1f ms", (time.perf_counter() - started) * 1000)

    def _schema(self, context, text: str) -> pa.Schema:
        """The statement's answer schema; a plain semantic_layer.query is typed by the engine
        without running it, anything else runs (definitions, or SQL over an answer)."""
        statement = statements.parse(text)
        if statement.function == "query" and not statement.outer_sql and not statement.explain:
            assert self.service is not None
            return self.service.schema(self._caller(context), statement.request())
        return self._run(context, text).schema

    def _metadata(self, context, name: str, command) -> pa.Table:
        assert self.service is not None
        return self.service.described(
            self._caller(context), "flight", {"command": name}, lambda: METADATA[name](self, command)
        )

    # -- Flight RPCs ---------------------------------------------------------------------

    @_rpc
    def get_flight_info(self, context, descriptor):
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise InvalidArgument("northstar's Flight SQL endpoint takes Flight SQL commands, not paths.")
        command = _command(descriptor.command)
        name = type(command).DESCRIPTOR.name
        if name == "CommandStatementQuery":
            return self._info(descriptor, self._run(context, command.query))
        if name == "CommandPreparedStatementQuery":
            text = self._prepared.get(command.prepared_statement_handle)
            if text is None:
                raise InvalidArgument("unknown or closed prepared statement handle.")
            return self._info(descriptor, self._run(context, text))
        if name in METADATA:
            return self._info(descriptor, self._metadata(context, name, command))
        raise Unimplemented(f"northstar's Flight SQL endpoint does not support {name}.")

    @_rpc
    def do_get(self, context, ticket):
        command = _command(ticket.ticket)
        table = self._answers.get(getattr(command, "statement_handle", b""), pop=True)
        if table is None:
            raise InvalidArgument("unknown or already fetched ticket: ask for the statement again.")
        return flight.RecordBatchStream(table)

    @_rpc
    def list_actions(self, context):
        return [
            ("CreatePreparedStatement", "Prepare a statement; returns its handle and result schema."),
            ("ClosePreparedStatement", "Forget a prepared statement."),
            ("CancelFlightInfo", "Forget the answer a FlightInfo names (its query has run)."),
            ("CancelQuery", "The same, as Flight SQL's older action."),
        ]

    @_rpc
    def do_action(self, context, action):
        if action.type == "CreatePreparedStatement":
            request = _command(action.body.to_pybytes())
            schema = self._schema(context, request.query)
            handle = self._prepared.put(request.query)
            result = m.ActionCreatePreparedStatementResult(
                prepared_statement_handle=handle, dataset_schema=schema.serialize().to_pybytes()
            )
            return [flight.Result(pa.py_buffer(m.pack(result)))]
        if action.type == "ClosePreparedStatement":
            request = _command(action.body.to_pybytes())
            self._prepared.get(request.prepared_statement_handle, pop=True)
            return []
        if action.type in ("CancelFlightInfo", "CancelQuery"):
            # The query of a FlightInfo has run by the time a client holds it (GetFlightInfo
            # runs it; cancelling that call stops it): cancelling drops the kept answer.
            body = action.body.to_pybytes()
            try:
                info = flight.FlightInfo.deserialize(
                    m.CancelFlightInfoRequest.FromString(body).info
                    if action.type == "CancelFlightInfo"
                    else _command(body).info
                )
            except (DecodeError, pa.ArrowException) as exc:
                raise InvalidArgument(f"{action.type} takes a FlightInfo this endpoint returned.") from exc
            dropped = False
            for endpoint in info.endpoints:
                handle = getattr(_command(endpoint.ticket.ticket), "statement_handle", b"")
                dropped = self._answers.get(handle, pop=True) is not None or dropped
            # CancelStatus: 1 CANCELLED, 2 CANCELLING, 3 NOT_CANCELLABLE
            result = (
                m.CancelFlightInfoResult(status=1 if dropped else 3)
                if action.type == "CancelFlightInfo"
                else m.ActionCancelQueryResult(result=1 if dropped else 3)
            )
            payload = result.SerializeToString() if action.type == "CancelFlightInfo" else m.pack(result)
            return [flight.Result(pa.py_buffer(payload))]
        raise Unimplemented(f"northstar's Flight SQL endpoint has no action {action.type!r}.")

    @_rpc
    def do_put(self, context, descriptor, reader, writer):
        raise Unimplemented("northstar's Flight SQL endpoint is read-only; prepared statements take no parameters.")


def _command(data: bytes):
    try:
        return m.unpack(data)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    except NotImplementedError as exc:
        raise Unimplemented(str(exc)) from None


def _plain(arguments: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments for the audit log (objects as their names)."""

    def plain(value: Any) -> Any:
        if isinstance(value, list):
            return [plain(v) for v in value]
        if isinstance(value, statements.Item):
            return value.name if value.grain is None else f"{value.name}__{value.grain.lower()}"
        return value

    return {k: plain(v) for k, v in arguments.items()}


# -- definitions as tables ---------------------------------------------------------------


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


_STRINGS = pa.list_(pa.string())
METRICS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("description", pa.string()),
        ("type", pa.string()),
        ("label", pa.string()),
        ("requires_metric_time", pa.bool_()),
        ("queryable_granularities", _STRINGS),
        ("dimensions", _STRINGS),
    ]
)
DIMENSIONS_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("qualified_name", pa.string()),
        ("description", pa.string()),
        ("type", pa.string()),
        ("label", pa.string()),
        ("expr", pa.string()),
        ("is_partition", pa.bool_()),
        ("queryable_granularities", _STRINGS),
    ]
)
ENTITIES_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("description", pa.string()),
        ("type", pa.string()),
        ("role", pa.string()),
        ("expr", pa.string()),
    ]
)
MEASURES_SCHEMA = pa.schema(
    [("name", pa.string()), ("agg_time_dimension", pa.string()), ("agg", pa.string()), ("expr", pa.string())]
)
SAVED_QUERIES_SCHEMA = pa.schema(
    [
        ("name", pa.string()),
        ("description", pa.string()),
        ("label", pa.string()),
        ("metrics", _STRINGS),
        ("group_by", _STRINGS),
        ("where", _STRINGS),
    ]
)
GRANULARITIES_SCHEMA = pa.schema([("queryable_granularities", pa.string())])


def _metric_rows(engine: Any, items: list[dict[str, Any]]) -> pa.Table:
    return _table(
        [
            {
                "name": i["name"],
                "description": i["description"],
                "type": i["type"],
                "label": i["label"],
                "requires_metric_time": i["requiresMetricTime"],
                "queryable_granularities": i["queryableGranularities"],
                "dimensions": [d["name"] for d in i["dimensions"]()],
            }
            for i in items
        ],
        METRICS_SCHEMA,
    )


def definitions(engine: Any, statement: statements.Statement) -> pa.Table:
    """The answer of a definitions call (metrics(), dimensions(...), ...)."""
    args = statement.arguments
    function = statement.function
    if function == "metrics":
        return _metric_rows(engine, catalog.metrics(engine))
    if function == "saved_queries":
        return _table(
            [
                {
                    "name": engine_saved.name,
                    "description": engine_saved.description,
                    "label": engine_saved.label,
                    "metrics": list(engine_saved.metrics),
                    "group_by": list(engine_saved.group_by),
                    "where": list(engine_saved.where),
                }
                for engine_saved in engine.saved_queries()
            ],
            SAVED_QUERIES_SCHEMA,
        )
    if function == "metrics_for_dimensions":
        names = [
            g if isinstance(g, str) else statements._group_by(g).column
            for g in statements._list(args.get("group_by"), "group_by")
        ]
        return _metric_rows(engine, catalog.metrics_for_dimensions(engine, names))
    metrics = statements._strings(args.get("metrics"), "metrics")
    if not metrics:
        raise statements.StatementError(f"semantic_layer.{function} needs metrics=[...].", field="metrics")
    if function == "dimensions":
        return _table(
            [
                {
                    "name": d["name"],
                    "qualified_name": d["qualifiedName"],
                    "description": d["description"],
                    "type": d["type"],
                    "label": d["label"],
                    "expr": d["expr"],
                    "is_partition": d["isPartition"],
                    "queryable_granularities": d["queryableGranularities"],
                }
                for d in catalog.dimensions(engine, metrics)
            ],
            DIMENSIONS_SCHEMA,
        )
    if function == "entities":
        return _table(catalog.entities(engine, metrics), ENTITIES_SCHEMA)
    if function == "measures":
        return _table(
            [
                {"name": x["name"], "agg_time_dimension": x["aggTimeDimension"], "agg": x["agg"], "expr": x["expr"]}
                for x in catalog.measures(engine, metrics)
            ],
            MEASURES_SCHEMA,
        )
    if function == "queryable_granularities":
        return _table(
            [{"queryable_granularities": g} for g in catalog.queryable_granularities(engine, metrics)],
            GRANULARITIES_SCHEMA,
        )
    raise statements.StatementError(f"semantic_layer.{function} is not a definitions call.")


# -- metadata commands -------------------------------------------------------------------

TABLES = {"metrics": METRICS_SCHEMA, "saved_queries": SAVED_QUERIES_SCHEMA}


def _like(pattern: str | None, value: str) -> bool:
    """A Flight SQL filter pattern (SQL LIKE: % and _) matched against a name."""
    if not pattern:
        return True
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, flags=re.IGNORECASE) is not None


def _catalogs(server: FlightSqlServer, command) -> pa.Table:
    return pa.table(
        {"catalog_name": pa.array([CATALOG], pa.string())},
        schema=pa.schema([pa.field("catalog_name", pa.string(), nullable=False)]),
    )


def _db_schemas(server: FlightSqlServer, command) -> pa.Table:
    schema = pa.schema([pa.field("catalog_name", pa.string()), pa.field("db_schema_name", pa.string(), False)])
    rows = [{"catalog_name": CATALOG, "db_schema_name": SCHEMA}]
    rows = [
        r
        for r in rows
        if (not command.catalog or command.catalog == CATALOG)
        and _like(command.db_schema_filter_pattern, r["db_schema_name"])
    ]
    return pa.Table.from_pylist(rows, schema=schema)


def _tables(server: FlightSqlServer, command) -> pa.Table:
    fields = [
        pa.field("catalog_name", pa.string()),
        pa.field("db_schema_name", pa.string()),
        pa.field("table_name", pa.string(), False),
        pa.field("table_type", pa.string(), False),
    ]
    if command.include_schema:
        fields.append(pa.field("table_schema", pa.binary(), False))
    rows = []
    for name, table_schema in TABLES.items():
        if command.catalog and command.catalog != CATALOG:
            continue
        if not _like(command.db_schema_filter_pattern, SCHEMA) or not _like(command.table_name_filter_pattern, name):
            continue
        if command.table_types and "TABLE" not in command.table_types:
            continue
        row = {"catalog_name": CATALOG, "db_schema_name": SCHEMA, "table_name": name, "table_type": "TABLE"}
        if command.include_schema:
            row["table_schema"] = table_schema.serialize().to_pybytes()
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def _table_types(server: FlightSqlServer, command) -> pa.Table:
    return pa.table(
        {"table_type": pa.array(["TABLE"], pa.string())},
        schema=pa.schema([pa.field("table_type", pa.string(), nullable=False)]),
    )


# SqlInfo ids (Flight SQL's `SqlInfo` enum) and northstar's answers.
_SQL_INFO: dict[int, Any] = {
    0: "northstar",  # FLIGHT_SQL_SERVER_NAME
    1: "0.1.0",  # FLIGHT_SQL_SERVER_VERSION
    2: pa.__version__,  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: True,  # FLIGHT_SQL_SERVER_READ_ONLY
    4: True,  # FLIGHT_SQL_SERVER_SQL
    5: False,  # FLIGHT_SQL_SERVER_SUBSTRAIT
    9: True,  # FLIGHT_SQL_SERVER_CANCEL
}
_SQL_INFO_VALUE = pa.dense_union(
    [
        pa.field("string_value", pa.string()),
        pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()),
        pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(pa.string())),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ]
)


def _sql_info(server: FlightSqlServer, command) -> pa.Table:
    wanted = list(command.info) or sorted(_SQL_INFO)
    ids = [i for i in wanted if i in _SQL_INFO]
    values = [_SQL_INFO[i] for i in ids]
    type_ids = pa.array([1 if isinstance(v, bool) else 0 for v in values], pa.int8())
    strings = [v for v in values if not isinstance(v, bool)]
    bools = [v for v in values if isinstance(v, bool)]
    offsets, seen = [], {0: 0, 1: 0}
    for t in type_ids.to_pylist():
        offsets.append(seen[t])
        seen[t] += 1
    union = pa.UnionArray.from_dense(
        type_ids,
        pa.array(offsets, pa.int32()),
        [
            pa.array(strings, pa.string()),
            pa.array(bools, pa.bool_()),
            pa.array([], pa.int64()),
            pa.array([], pa.int32()),
            pa.array([], pa.list_(pa.string())),
            pa.array([], pa.map_(pa.int32(), pa.list_(pa.int32()))),
        ],
        [f.name for f in _SQL_INFO_VALUE],
    )
    schema = pa.schema([pa.field("info_name", pa.uint32(), False), pa.field("value", _SQL_INFO_VALUE, False)])
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), union], schema=schema)


METADATA = {
    "CommandGetCatalogs": _catalogs,
    "CommandGetDbSchemas": _db_schemas,
    "CommandGetTables": _tables,
    "CommandGetTableTypes": _table_types,
    "CommandGetSqlInfo": _sql_info,
}
