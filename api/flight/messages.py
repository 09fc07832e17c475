"""The Flight SQL protobuf messages northstar reads and writes.

They are declared here, by name, package and field number as the Flight SQL specification
(`FlightSql.proto`, package `arrow.flight.protocol.sql`) defines them, and built into message
classes by the protobuf runtime at import: no generated code is vendored and no protoc is needed.
Only the messages the endpoint uses are declared; proto3 `optional` fields are declared as plain
fields, which is the same encoding on the wire.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

PACKAGE = "arrow.flight.protocol.sql"

_STRING = descriptor_pb2.FieldDescriptorProto.TYPE_STRING
_BYTES = descriptor_pb2.FieldDescriptorProto.TYPE_BYTES
_BOOL = descriptor_pb2.FieldDescriptorProto.TYPE_BOOL
_UINT32 = descriptor_pb2.FieldDescriptorProto.TYPE_UINT32
_ONE = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
_MANY = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED

# message -> (field, number, type, label)
_MESSAGES: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "CommandGetSqlInfo": (("info", 1, _UINT32, _MANY),),
    "CommandGetCatalogs": (),
    "CommandGetDbSchemas": (("catalog", 1, _STRING, _ONE), ("db_schema_filter_pattern", 2, _STRING, _ONE)),
    "CommandGetTables": (
        ("catalog", 1, _STRING, _ONE),
        ("db_schema_filter_pattern", 2, _STRING, _ONE),
        ("table_name_filter_pattern", 3, _STRING, _ONE),
        ("table_types", 4, _STRING, _MANY),
        ("include_schema", 5, _BOOL, _ONE),
    ),
    "CommandGetTableTypes": (),
    "CommandStatementQuery": (("query", 1, _STRING, _ONE), ("transaction_id", 2, _BYTES, _ONE)),
    "TicketStatementQuery": (("statement_handle", 1, _BYTES, _ONE),),
    "CommandPreparedStatementQuery": (("prepared_statement_handle", 1, _BYTES, _ONE),),
    "ActionCreatePreparedStatementRequest": (("query", 1, _STRING, _ONE), ("transaction_id", 2, _BYTES, _ONE)),
    "ActionCreatePreparedStatementResult": (
        ("prepared_statement_handle", 1, _BYTES, _ONE),
        ("dataset_schema", 2, _BYTES, _ONE),
        ("parameter_schema", 3, _BYTES, _ONE),
    ),
    "ActionClosePreparedStatementRequest": (("prepared_statement_handle", 1, _BYTES, _ONE),),
    "DoPutPreparedStatementResult": (("prepared_statement_handle", 1, _BYTES, _ONE),),
    # Flight SQL's older cancel action; `info` is a serialized FlightInfo, `result` the
    # CancelResult enum (1 CANCELLED, 2 CANCELLING, 3 NOT_CANCELLABLE).
    "ActionCancelQueryRequest": (("info", 1, _BYTES, _ONE),),
    "ActionCancelQueryResult": (("result", 1, _UINT32, _ONE),),
}

# Flight's own (not Flight SQL's) messages of the CancelFlightInfo action, package
# `arrow.flight.protocol`; a nested message is declared as bytes (the same encoding) and an
# enum as uint32 (the same varint).
FLIGHT_PACKAGE = "arrow.flight.protocol"
_FLIGHT_MESSAGES: dict[str, tuple[tuple[str, int, int, int], ...]] = {
    "CancelFlightInfoRequest": (("info", 1, _BYTES, _ONE),),
    "CancelFlightInfoResult": (("status", 1, _UINT32, _ONE),),
}


def _build(package: str, messages: dict[str, tuple[tuple[str, int, int, int], ...]]) -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name=f"northstar/{package}.proto", package=package, syntax="proto3")
    for name, fields in messages.items():
        message = file.message_type.add(name=name)
        for field, number, kind, label in fields:
            message.field.add(name=field, number=number, type=kind, label=label)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.{name}")) for name in messages}


MESSAGES = _build(PACKAGE, _MESSAGES)
FLIGHT_MESSAGES = _build(FLIGHT_PACKAGE, _FLIGHT_MESSAGES)
CommandGetSqlInfo = MESSAGES["CommandGetSqlInfo"]
CommandGetCatalogs = MESSAGES["CommandGetCatalogs"]
CommandGetDbSchemas = MESSAGES["CommandGetDbSchemas"]
CommandGetTables = MESSAGES["CommandGetTables"]
CommandGetTableTypes = MESSAGES["CommandGetTableTypes"]
CommandStatementQuery = MESSAGES["CommandStatementQuery"]
TicketStatementQuery = MESSAGES["TicketStatementQuery"]
CommandPreparedStatementQuery = MESSAGES["CommandPreparedStatementQuery"]
ActionCreatePreparedStatementRequest = MESSAGES["ActionCreatePreparedStatementRequest"]
ActionCreatePreparedStatementResult = MESSAGES["ActionCreatePreparedStatementResult"]
ActionClosePreparedStatementRequest = MESSAGES["ActionClosePreparedStatementRequest"]
ActionCancelQueryRequest = MESSAGES["ActionCancelQueryRequest"]
ActionCancelQueryResult = MESSAGES["ActionCancelQueryResult"]
CancelFlightInfoRequest = FLIGHT_MESSAGES["CancelFlightInfoRequest"]
CancelFlightInfoResult = FLIGHT_MESSAGES["CancelFlightInfoResult"]


def pack(message: Message) -> bytes:
    """A message wrapped in `google.protobuf.Any`, serialized (how Flight SQL carries commands)."""
    wrapper = any_pb2.Any()
    wrapper.Pack(message)
    return wrapper.SerializeToString()


def unpack(data: bytes) -> Message:
    """The Flight SQL message inside a serialized `Any`; ValueError for anything else."""
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(data)
    name = wrapper.TypeName()
    if not name.startswith(PACKAGE + "."):
        raise ValueError(f"not a Flight SQL command: {name or 'an empty message'!r}.")
    cls = MESSAGES.get(name[len(PACKAGE) + 1 :])
    if cls is None:
        raise NotImplementedError(f"northstar's Flight SQL endpoint does not support {name.rsplit('.', 1)[-1]}.")
    message = cls()
    wrapper.Unpack(message)
    return message
