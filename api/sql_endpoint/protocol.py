"""PostgreSQL frontend/backend protocol (version 3.0): message framing, the backend messages
the endpoint sends, the frontend messages it reads, value codecs for the types it serves, and
the server side of SCRAM-SHA-256.

Pure functions over bytes, no I/O, so the codec is tested without a socket.
See https://www.postgresql.org/docs/current/protocol-message-formats.html.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import math
import os
import struct
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = 196608  # 3.0
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# Type OIDs of pg_type for the values the endpoint returns.
BOOL, INT8, INT2, INT4, TEXT, OID, FLOAT4, FLOAT8 = 16, 20, 21, 23, 25, 26, 700, 701
NAME, CHAR, VARCHAR, BPCHAR, NUMERIC, UNKNOWN = 19, 18, 1043, 1042, 1700, 705
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL = 1082, 1083, 1114, 1184, 1186

# Element type OID -> its array type OID (one-dimensional arrays in catalog answers).
ARRAY_TYPES = {
    BOOL: 1000,
    INT2: 1005,
    INT4: 1007,
    TEXT: 1009,
    INT8: 1016,
    FLOAT4: 1021,
    FLOAT8: 1022,
    OID: 1028,
    DATE: 1182,
    TIMESTAMP: 1115,
}
ARRAY_ELEMENTS = {array: element for element, array in ARRAY_TYPES.items()}
# Array parameters a client may bind (`platform = ANY($1)`), by array OID -> element OID.
PARAM_ARRAYS = {**ARRAY_ELEMENTS, 1015: VARCHAR, 1014: BPCHAR, 1231: NUMERIC, 1185: TIMESTAMPTZ}

# northstar column types (metrics/execution) -> pg_type OID.
NORTHSTAR_TYPES = {
    "integer": INT8,
    "number": FLOAT8,
    "string": TEXT,
    "date": DATE,
    "timestamp": TIMESTAMP,
    "boolean": BOOL,
}
# pg_type OID -> (typlen, name), for RowDescription and ParameterDescription.
TYPE_LENGTHS = {
    BOOL: 1,
    INT8: 8,
    INT2: 2,
    INT4: 4,
    OID: 4,
    FLOAT4: 4,
    FLOAT8: 8,
    DATE: 4,
    TIMESTAMP: 8,
    TIMESTAMPTZ: 8,
    CHAR: 1,
    NAME: 64,
}

PG_EPOCH = dt.date(2000, 1, 1)
PG_EPOCH_DATETIME = dt.datetime(2000, 1, 1)


class ProtocolViolation(Exception):
    """The frontend sent bytes that are not a valid message; the connection is closed."""


# -- framing ------------------------------------------------------------------------------


def message(kind: bytes, payload: bytes = b"") -> bytes:
    """One backend message: type byte, int32 length (including itself), payload.

    >>> message(b"Z", b"I")
    b'Z\\x00\\x00\\x00\\x05I'
    """
    return kind + struct.pack("!i", len(payload) + 4) + payload


def cstring(text: str) -> bytes:
    return text.encode() + b"\x00"


class Reader:
    """Reads the fields of one message payload in order."""

    def __init__(self, payload: bytes) -> None:
        self.data = payload
        self.pos = 0

    def int16(self) -> int:
        return self._unpack("!h", 2)

    def int32(self) -> int:
        return self._unpack("!i", 4)

    def uint32(self) -> int:
        return self._unpack("!I", 4)

    def byte(self) -> bytes:
        return self.bytes(1)

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolViolation("message shorter than its fields")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def cstring(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolViolation("string field without its terminator")
        out = self.data[self.pos : end].decode("utf-8", errors="replace")
        self.pos = end + 1
        return out

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out

    def _unpack(self, fmt: str, n: int) -> int:
        return struct.unpack(fmt, self.bytes(n))[0]


# -- frontend messages --------------------------------------------------------------------


@dataclass(frozen=True)
class Startup:
    code: int  # PROTOCOL_VERSION, SSL_REQUEST, GSSENC_REQUEST or CANCEL_REQUEST
    parameters: dict[str, str] = field(default_factory=dict)
    process_id: int = 0
    secret_key: int = 0


def parse_startup(payload: bytes) -> Startup:
    """The payload of the first (untyped) message of a connection."""
    reader = Reader(payload)
    code = reader.int32()
    if code == CANCEL_REQUEST:
        return Startup(code, process_id=reader.int32(), secret_key=reader.int32())
    if code != PROTOCOL_VERSION:
        return Startup(code)
    params: dict[str, str] = {}
    while True:
        key = reader.cstring()
        if not key:
            break
        params[key] = reader.cstring()
    return Startup(code, params)


@dataclass(frozen=True)
class Parse:
    name: str
    query: str
    param_types: tuple[int, ...]


@dataclass(frozen=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...]
    params: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]


@dataclass(frozen=True)
class Describe:
    kind: str  # "S" (statement) or "P" (portal)
    name: str


@dataclass(frozen=True)
class Execute:
    portal: str
    max_rows: int


@dataclass(frozen=True)
class Close:
    kind: str
    name: str


def parse_parse(payload: bytes) -> Parse:
    r = Reader(payload)
    name, query = r.cstring(), r.cstring()
    return Parse(name, query, tuple(r.uint32() for _ in range(r.int16())))


def parse_bind(payload: bytes) -> Bind:
    r = Reader(payload)
    portal, statement = r.cstring(), r.cstring()
    formats = tuple(r.int16() for _ in range(r.int16()))
    params: list[bytes | None] = []
    for _ in range(r.int16()):
        size = r.int32()
        params.append(None if size == -1 else r.bytes(size))
    results = tuple(r.int16() for _ in range(r.int16()))
    return Bind(portal, statement, formats, tuple(params), results)


def parse_describe(payload: bytes) -> Describe:
    r = Reader(payload)
    return Describe(r.byte().decode(), r.cstring())


def parse_execute(payload: bytes) -> Execute:
    r = Reader(payload)
    return Execute(r.cstring(), r.int32())


def parse_close(payload: bytes) -> Close:
    r = Reader(payload)
    return Close(r.byte().decode(), r.cstring())


def formats_for(formats: tuple[int, ...], count: int) -> list[int]:
    """Per-column format codes: none means all text, one applies to all (protocol rule).

    >>> formats_for((), 2), formats_for((1,), 3), formats_for((0, 1), 2)
    ([0, 0], [1, 1, 1], [0, 1])
    """
    if not formats:
        return [0] * count
    if len(formats) == 1:
        return [formats[0]] * count
    if len(formats) != count:
        raise ValueError(f"{len(formats)} format codes for {count} values")
    return list(formats)


# -- backend messages ---------------------------------------------------------------------


def authentication_ok() -> bytes:
    return message(b"R", struct.pack("!i", 0))


def authentication_cleartext() -> bytes:
    return message(b"R", struct.pack("!i", 3))


def authentication_sasl(mechanisms: list[str]) -> bytes:
    return message(b"R", struct.pack("!i", 10) + b"".join(cstring(m) for m in mechanisms) + b"\x00")


def authentication_sasl_continue(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 11) + data)


def authentication_sasl_final(data: bytes) -> bytes:
    return message(b"R", struct.pack("!i", 12) + data)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstring(name) + cstring(value))


def backend_key_data(process_id: int, secret_key: int) -> bytes:
    return message(b"K", struct.pack("!ii", process_id, secret_key))


def ready_for_query(status: str) -> bytes:
    return message(b"Z", status.encode())


@dataclass(frozen=True)
class Column:
    """A result column as RowDescription describes it."""

    name: str
    type_oid: int


def row_description(columns: list[Column] | tuple[Column, ...], formats: list[int] | None = None) -> bytes:
    formats = formats or [0] * len(columns)
    parts = [struct.pack("!h", len(columns))]
    for column, fmt in zip(columns, formats):
        size = TYPE_LENGTHS.get(column.type_oid, -1)
        parts.append(cstring(column.name) + struct.pack("!ihihih", 0, 0, column.type_oid, size, -1, fmt))
    return message(b"T", b"".join(parts))


def parameter_description(type_oids: list[int] | tuple[int, ...]) -> bytes:
    return message(b"t", struct.pack("!h", len(type_oids)) + b"".join(struct.pack("!I", t) for t in type_oids))


def data_row(values: list[bytes | None]) -> bytes:
    parts = [struct.pack("!h", len(values))]
    for value in values:
        parts.append(struct.pack("!i", -1) if value is None else struct.pack("!i", len(value)) + value)
    return message(b"D", b"".join(parts))


def command_complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


@dataclass(frozen=True)
class CopyFormat:
    """How `COPY (SELECT ...) TO STDOUT` writes its rows: PostgreSQL's text or CSV format."""

    csv: bool = False
    header: bool = False
    delimiter: str = ""  # "" for the format's own: a tab (text) or a comma (CSV)
    null: str | None = None  # None for the format's own: \\N (text) or an empty field (CSV)
    quote: str = '"'

    @property
    def separator(self) -> str:
        return self.delimiter or ("," if self.csv else "\t")

    @property
    def null_text(self) -> str:
        return self.null if self.null is not None else ("" if self.csv else "\\N")

    def encode(self, value: str | None) -> str:
        """One field; CSV quotes what would read back differently (an empty string is quoted,
        so it is not read as NULL), text escapes backslash and the control characters.

        >>> CopyFormat(csv=True).encode('say "hi", ok'), CopyFormat(csv=True).encode(""), CopyFormat(csv=True).encode(None)
        ('"say ""hi"", ok"', '""', '')
        >>> CopyFormat().encode("a\\tb\\\\c"), CopyFormat().encode(None)
        ('a\\\\tb\\\\\\\\c', '\\\\N')
        """
        if value is None:
            return self.null_text
        if self.csv:
            q = self.quote
            if (
                value == ""
                or value == self.null_text
                or any(c in value for c in (self.separator, q, "\n", "\r"))
                or value.startswith("\\.")
            ):
                return q + value.replace(q, q + q) + q
            return value
        return value.translate(_COPY_TEXT_ESCAPES)


_COPY_TEXT_ESCAPES = str.maketrans(
    {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v"}
)


def copy_out_response(column_count: int) -> bytes:
    """CopyOutResponse: an overall text format and a text format per column."""
    return message(b"H", struct.pack("!bh", 0, column_count) + struct.pack("!h", 0) * column_count)


def copy_data(rows: list[tuple[Any, ...]], oids: list[int], copy: CopyFormat) -> bytes:
    """One CopyData message per row, each value in PostgreSQL's text output."""
    parts = []
    for row in rows:
        fields = [
            copy.encode(None if (raw := encode_text(v, oid)) is None else raw.decode("utf-8"))
            for v, oid in zip(row, oids)
        ]
        parts.append(message(b"d", (copy.separator.join(fields) + "\n").encode("utf-8")))
    return b"".join(parts)


def copy_header(names: list[str], copy: CopyFormat) -> bytes:
    return message(b"d", (copy.separator.join(copy.encode(n) for n in names) + "\n").encode("utf-8"))


def copy_done() -> bytes:
    return message(b"c")


def empty_query_response() -> bytes:
    return message(b"I")


def parse_complete() -> bytes:
    return message(b"1")


def bind_complete() -> bytes:
    return message(b"2")


def close_complete() -> bytes:
    return message(b"3")


def no_data() -> bytes:
    return message(b"n")


def portal_suspended() -> bytes:
    return message(b"s")


def _fields(
    severity: str, sqlstate: str, text: str, hint: str | None, detail: str | None, position: int | None = None
) -> bytes:
    parts = [b"S" + cstring(severity), b"V" + cstring(severity), b"C" + cstring(sqlstate), b"M" + cstring(text)]
    if detail:
        parts.append(b"D" + cstring(detail))
    if hint:
        parts.append(b"H" + cstring(hint))
    if position:
        parts.append(b"P" + cstring(str(position)))
    return b"".join(parts) + b"\x00"


def error_response(
    sqlstate: str,
    text: str,
    hint: str | None = None,
    detail: str | None = None,
    severity: str = "ERROR",
    position: int | None = None,
) -> bytes:
    """An ErrorResponse; `position` is the 1-based character in the statement it is about."""
    return message(b"E", _fields(severity, sqlstate, text, hint, detail, position))


def notice_response(text: str, sqlstate: str = "00000") -> bytes:
    return message(b"N", _fields("NOTICE", sqlstate, text, None, None))


# -- values -------------------------------------------------------------------------------


def encode_text(value: Any, type_oid: int) -> bytes | None:
    """A value in PostgreSQL's text output format.

    >>> encode_text(0.1, FLOAT8), encode_text(True, BOOL), encode_text(dt.date(2026, 1, 5), DATE)
    (b'0.1', b't', b'2026-01-05')
    >>> encode_text(dt.datetime(2026, 1, 5, 3, 4, 5, 120000), TIMESTAMP), encode_text(None, TEXT)
    (b'2026-01-05 03:04:05.120000', None)
    >>> encode_text(float("nan"), FLOAT8), encode_text(float("-inf"), FLOAT8)
    (b'NaN', b'-Infinity')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, float):
        if math.isnan(value):
            return b"NaN"
        if math.isinf(value):
            return b"Infinity" if value > 0 else b"-Infinity"
        return repr(value).encode()  # shortest repr: round-trips exactly
    if type_oid == FLOAT8 and isinstance(value, (int, decimal.Decimal)):
        return encode_text(float(value), FLOAT8)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ").encode()
    if isinstance(value, dt.date):
        return value.isoformat().encode()
    if isinstance(value, (list, tuple)):
        return _array_text(value).encode()
    if isinstance(value, bytes):
        return b"\\x" + value.hex().encode()
    return str(value).encode()


def _array_text(values: list | tuple) -> str:
    """PostgreSQL array literal, for catalog answers that carry lists (e.g. indkey)."""
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        else:
            text = encode_text(v, TEXT).decode()
            if text == "" or any(c in text for c in ' ,{}"\\') or text.upper() == "NULL":
                text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
            items.append(text)
    return "{" + ",".join(items) + "}"


def encode_binary(value: Any, type_oid: int) -> bytes | None:
    """A value in PostgreSQL's binary send format for its type.

    >>> encode_binary(1, INT8), encode_binary(dt.date(2000, 1, 2), DATE)
    (b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x01', b'\\x00\\x00\\x00\\x01')
    """
    if value is None:
        return None
    if type_oid == INT8:
        return struct.pack("!q", int(value))
    if type_oid in (INT4,):
        return struct.pack("!i", int(value))
    if type_oid == OID:
        return struct.pack("!I", int(value))
    if type_oid == INT2:
        return struct.pack("!h", int(value))
    if type_oid == FLOAT8:
        return struct.pack("!d", float(value))
    if type_oid == FLOAT4:
        return struct.pack("!f", float(value))
    if type_oid == BOOL:
        return b"\x01" if value else b"\x00"
    if type_oid == DATE:
        return struct.pack("!i", (_as_date(value) - PG_EPOCH).days)
    if type_oid == TIMESTAMP:
        stamp = _as_datetime(value)
        delta = stamp - PG_EPOCH_DATETIME
        return struct.pack("!q", (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if type_oid in ARRAY_ELEMENTS:
        return _array_binary(list(value), ARRAY_ELEMENTS[type_oid])
    # text, varchar, name, char and anything served as text: the text form is the binary form.
    return encode_text(value, TEXT)


def _array_binary(values: list, element_oid: int) -> bytes:
    """A one-dimensional array in array_send's format: dimensions, null flag, element type,
    then (length, lower bound 1) and each element as length + binary value.

    >>> _array_binary([1, None], INT2)
    b'\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x15\\x00\\x00\\x00\\x02\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x02\\x00\\x01\\xff\\xff\\xff\\xff'
    """
    if not values:
        return struct.pack("!iii", 0, 0, element_oid)
    out = [struct.pack("!iiiii", 1, int(any(v is None for v in values)), element_oid, len(values), 1)]
    for v in values:
        item = encode_binary(v, element_oid)
        out.append(struct.pack("!i", -1) if item is None else struct.pack("!i", len(item)) + item)
    return b"".join(out)


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return _parse_date(str(value))


def _as_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    return dt.datetime.fromisoformat(str(value))


def decode_param(raw: bytes | None, type_oid: int, fmt: int) -> Any:
    """A bound parameter as a Python value: text format is decoded per its declared type
    (or kept as a string when the type is unspecified); binary format needs a known type.

    >>> decode_param(b"42", INT8, 0), decode_param(b"\\x00\\x00\\x00\\x2a", INT4, 1), decode_param(b"US", 0, 0)
    (42, 42, 'US')
    """
    if raw is None:
        return None
    if type_oid in PARAM_ARRAYS:
        element = PARAM_ARRAYS[type_oid]
        if fmt == 0:
            return [
                None if item is None else decode_param(item.encode(), element, 0)
                for item in parse_array_text(raw.decode("utf-8"))
            ]
        return _array_from_binary(raw)
    if fmt == 0:
        text = raw.decode("utf-8")
        if type_oid in (INT2, INT4, INT8, OID):
            return int(text)
        if type_oid in (FLOAT4, FLOAT8):
            return float(text)
        if type_oid == NUMERIC:
            return decimal.Decimal(text)
        if type_oid == BOOL:
            return text.strip().lower() in ("t", "true", "1", "y", "yes", "on")
        if type_oid == DATE:
            return _parse_date(text)
        if type_oid in (TIMESTAMP, TIMESTAMPTZ):
            return _parse_timestamp(text)
        return text
    if type_oid == INT8:
        return struct.unpack("!q", raw)[0]
    if type_oid == INT4:
        return struct.unpack("!i", raw)[0]
    if type_oid == OID:
        return struct.unpack("!I", raw)[0]
    if type_oid == INT2:
        return struct.unpack("!h", raw)[0]
    if type_oid == FLOAT8:
        return struct.unpack("!d", raw)[0]
    if type_oid == FLOAT4:
        return struct.unpack("!f", raw)[0]
    if type_oid == BOOL:
        return raw != b"\x00"
    if type_oid == DATE:
        return PG_EPOCH + dt.timedelta(days=struct.unpack("!i", raw)[0])
    if type_oid in (TIMESTAMP, TIMESTAMPTZ):
        return PG_EPOCH_DATETIME + dt.timedelta(microseconds=struct.unpack("!q", raw)[0])
    if type_oid == NUMERIC:
        return _numeric_from_binary(raw)
    if type_oid in (TEXT, VARCHAR, BPCHAR, NAME, CHAR, UNKNOWN, 0):
        return raw.decode("utf-8")
    raise ValueError(f"binary parameters of type oid {type_oid} are not supported; send it in text format")


def parse_array_text(text: str) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array literal, as text (NULL as None).

    >>> parse_array_text('{iOS,"a b","q\\\\"x",NULL,"NULL"}')
    ['iOS', 'a b', 'q"x', None, 'NULL']
    >>> parse_array_text("{}")
    []
    """
    text = text.strip()
    if not (text.startswith("{") and text.endswith("}")) or "{" in text[1:-1]:
        raise ValueError(f"not a one-dimensional array literal: {text[:40]!r}")
    items: list[str | None] = []
    body, i = text[1:-1], 0
    while i < len(body):
        if body[i] == '"':
            i, chars = i + 1, []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 1
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            word = body[i:end].strip()
            items.append(None if word.upper() == "NULL" else word)
            i = end
        if i < len(body) and body[i] == ",":
            i += 1
    return items


def _array_from_binary(raw: bytes) -> list[Any]:
    """A one-dimensional array in array_send's format (the inverse of _array_binary)."""
    ndim, _, element = struct.unpack("!iiI", raw[:12])
    if ndim == 0:
        return []
    if ndim != 1:
        raise ValueError("only one-dimensional array parameters are supported")
    count = struct.unpack("!i", raw[12:16])[0]
    items, offset = [], 20
    for _ in range(count):
        size = struct.unpack("!i", raw[offset : offset + 4])[0]
        offset += 4
        if size < 0:
            items.append(None)
            continue
        items.append(decode_param(raw[offset : offset + size], element, 1))
        offset += size
    return items


def _parse_date(text: str) -> dt.date:
    """A date parameter; a timestamp (node-postgres sends a JS Date as
    `2026-02-01T00:00:00.000+00:00`) gives its date as written, as PostgreSQL's `'...'::date` does.

    >>> _parse_date("2026-02-01"), _parse_date("2026-02-01T00:00:00.000+00:00"), _parse_date("2026-02-01 23:30:00-05")
    (datetime.date(2026, 2, 1), datetime.date(2026, 2, 1), datetime.date(2026, 2, 1))
    """
    text = text.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    if text[-3:-2] in ("+", "-") and text[-2:].isdigit():
        text += ":00"  # PostgreSQL's `-05`; fromisoformat wants `-05:00`
    return dt.datetime.fromisoformat(text).date()


def _parse_timestamp(text: str) -> dt.datetime:
    text = text.strip()
    if text.endswith(("+00", "-00")):
        text = text[:-3]
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _numeric_from_binary(raw: bytes) -> decimal.Decimal:
    ndigits, weight, sign, dscale = struct.unpack("!hhHh", raw[:8])
    if sign == 0xC000:
        return decimal.Decimal("NaN")
    digits = struct.unpack(f"!{ndigits}h", raw[8 : 8 + 2 * ndigits])
    value = decimal.Decimal(0)
    for i, d in enumerate(digits):
        value += decimal.Decimal(d) * decimal.Decimal(10000) ** (weight - i)
    value = value.quantize(decimal.Decimal(1).scaleb(-dscale)) if dscale else value.to_integral_value()
    return -value if sign == 0x4000 else value


# -- SCRAM-SHA-256 (RFC 5802, RFC 7677), server side -------------------------------------

SCRAM_ITERATIONS = 4096


@dataclass(frozen=True)
class ScramVerifier:
    """What the server keeps of a password: salt, iterations, StoredKey and ServerKey."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def from_password(
        cls, password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS
    ) -> ScramVerifier:
        salt = salt or os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return cls(salt, iterations, hashlib.sha256(client_key).digest(), server_key)

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        """PostgreSQL's stored form, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`."""
        try:
            method, params, keys = text.split("$")
            iterations, salt = params.split(":")
            stored, server = keys.split(":")
            if method != "SCRAM-SHA-256":
                raise ValueError(method)
            return cls(base64.b64decode(salt), int(iterations), base64.b64decode(stored), base64.b64decode(server))
        except ValueError as exc:
            raise ValueError(
                "not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)"
            ) from exc

    def __str__(self) -> str:
        b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
        return f"SCRAM-SHA-256${self.iterations}:{b64(self.salt)}${b64(self.stored_key)}:{b64(self.server_key)}"

    def matches(self, password: str) -> bool:
        """Whether a cleartext password is the one this verifier was made from."""
        other = ScramVerifier.from_password(password, self.salt, self.iterations)
        return hmac.compare_digest(other.stored_key, self.stored_key)


class ScramError(Exception):
    pass


class ScramExchange:
    """One SCRAM-SHA-256 exchange against a stored verifier (no channel binding)."""

    def __init__(self, verifier: ScramVerifier) -> None:
        self.verifier = verifier
        self.server_nonce = base64.b64encode(os.urandom(18)).decode()
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def server_first(self, client_first: bytes) -> bytes:
        text = client_first.decode()
        gs2_flag, _, rest = text.partition(",")
        if gs2_flag not in ("n", "y"):
            raise ScramError("channel binding is not supported; use SCRAM-SHA-256 without -PLUS")
        _authzid, _, bare = rest.partition(",")
        attrs = _scram_attrs(bare)
        if "n" not in attrs or "r" not in attrs:
            raise ScramError("client-first-message without user or nonce")
        self._client_first_bare = bare
        self._nonce = attrs["r"] + self.server_nonce
        salt = base64.b64encode(self.verifier.salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={self.verifier.iterations}"
        return self._server_first.encode()

    def server_final(self, client_final: bytes) -> tuple[bool, bytes]:
        """Checks the client proof; returns (accepted, server-final-message)."""
        matched, final = self.server_final_among(client_final, [self.verifier])
        return matched is not None, final

    def server_final_among(self, client_final: bytes, verifiers: list[ScramVerifier]) -> tuple[int | None, bytes]:
        """Which of `verifiers` (each made with the salt and iterations offered) the client
        proof matches, if any, and the server-final-message proving the server knows it."""
        text = client_final.decode()
        without_proof, _, proof_part = text.rpartition(",p=")
        attrs = _scram_attrs(without_proof)
        if attrs.get("r") != self._nonce or not proof_part:
            raise ScramError("nonce mismatch in client-final-message")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        proof = base64.b64decode(proof_part)
        matched = None
        for index, verifier in enumerate(verifiers):
            if (verifier.salt, verifier.iterations) != (self.verifier.salt, self.verifier.iterations):
                continue
            client_signature = hmac.new(verifier.stored_key, auth_message, hashlib.sha256).digest()
            client_key = bytes(a ^ b for a, b in zip(proof, client_signature))
            if len(proof) == 32 and hmac.compare_digest(hashlib.sha256(client_key).digest(), verifier.stored_key):
                matched = index
                break
        key = verifiers[matched].server_key if matched is not None else self.verifier.server_key
        server_signature = hmac.new(key, auth_message, hashlib.sha256).digest()
        return matched, b"v=" + base64.b64encode(server_signature)


def _scram_attrs(text: str) -> dict[str, str]:
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = value
    return out
