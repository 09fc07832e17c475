"""The wire codec, SCRAM, session statements and catalog rewriting, and the protocol's message
flows checked byte by byte with a raw socket (what client libraries hide)."""

from __future__ import annotations

import base64
import datetime as dt
import doctest
import math
import random
import socket
import struct

import pytest
import sqlglot

from api.sql_endpoint import catalog_translate, protocol, statements
from api.sql_endpoint.catalog import CatalogDatabase
from api.sql_endpoint.catalog_relations import CatalogColumn, CatalogTable
from api.sql_endpoint.session import Session, run_utility
from api.sql_endpoint.statements import SqlError
from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: F401  (fixture)

# -- SCRAM-SHA-256 ------------------------------------------------------------------------


def test_scram_matches_the_rfc_7677_example():
    # RFC 7677 section 3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    exchange = protocol.ScramExchange(protocol.ScramVerifier.from_password("pencil", salt, 4096))
    exchange.server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    first = exchange.server_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert first == b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    accepted, final = exchange.server_final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert accepted
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_refuses_a_wrong_proof_and_a_foreign_nonce():
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    exchange = protocol.ScramExchange(protocol.ScramVerifier.from_password("not pencil", salt, 4096))
    exchange.server_nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    exchange.server_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    accepted, _ = exchange.server_final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    assert not accepted
    with pytest.raises(protocol.ScramError):
        exchange.server_final(b"c=biws,r=someone-else,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")


def test_scram_verifier_text_round_trips_and_checks_cleartext():
    verifier = protocol.ScramVerifier.from_password("s3cret")
    text = str(verifier)
    assert text.startswith("SCRAM-SHA-256$4096:") and "s3cret" not in text
    parsed = protocol.ScramVerifier.parse(text)
    assert parsed == verifier
    assert parsed.matches("s3cret") and not parsed.matches("s3cret ")
    with pytest.raises(ValueError, match="SCRAM-SHA-256"):
        protocol.ScramVerifier.parse("md5abcdef")


# -- values -------------------------------------------------------------------------------


def test_text_format_is_postgresql_output_format():
    cases = [
        (1, protocol.INT8, b"1"),
        (-9007199254740993, protocol.INT8, b"-9007199254740993"),
        (0.1, protocol.FLOAT8, b"0.1"),
        (1e-7, protocol.FLOAT8, b"1e-07"),
        (3, protocol.FLOAT8, b"3.0"),
        (float("inf"), protocol.FLOAT8, b"Infinity"),
        (float("nan"), protocol.FLOAT8, b"NaN"),
        (True, protocol.BOOL, b"t"),
        (False, protocol.BOOL, b"f"),
        ("münchen", protocol.TEXT, "münchen".encode()),
        (dt.date(2026, 1, 5), protocol.DATE, b"2026-01-05"),
        (dt.datetime(2026, 1, 5, 7, 8, 9), protocol.TIMESTAMP, b"2026-01-05 07:08:09"),
        (dt.datetime(2026, 1, 5, 7, 8, 9, 5), protocol.TIMESTAMP, b"2026-01-05 07:08:09.000005"),
        (
            dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            protocol.TIMESTAMP,
            b"2026-01-05 07:00:00",
        ),
        (None, protocol.TEXT, None),
    ]
    for value, oid, want in cases:
        assert protocol.encode_text(value, oid) == want, value


def test_floats_in_text_lose_no_digits():
    rng = random.Random(7)
    for _ in range(2000):
        value = rng.uniform(-1e6, 1e6) / rng.choice([1, 3, 7, 1e9])
        assert float(protocol.encode_text(value, protocol.FLOAT8)) == value


def test_binary_format_matches_the_postgresql_send_functions():
    # Days and microseconds since 2000-01-01, big-endian (PostgreSQL date_send / timestamp_send).
    assert protocol.encode_binary(dt.date(2000, 1, 1), protocol.DATE) == b"\x00\x00\x00\x00"
    assert protocol.encode_binary(dt.date(1999, 12, 31), protocol.DATE) == struct.pack("!i", -1)
    assert protocol.encode_binary(dt.datetime(2000, 1, 1, 0, 0, 1), protocol.TIMESTAMP) == struct.pack("!q", 10**6)
    assert protocol.encode_binary(2**40, protocol.INT8) == struct.pack("!q", 2**40)
    assert protocol.encode_binary(0.1, protocol.FLOAT8) == struct.pack("!d", 0.1)
    assert protocol.encode_binary(True, protocol.BOOL) == b"\x01"
    assert protocol.encode_binary("é", protocol.TEXT) == "é".encode()


@pytest.mark.parametrize(
    "value,oid",
    [
        (123456789012, protocol.INT8),
        (-5, protocol.INT4),
        (7, protocol.INT2),
        (math.pi, protocol.FLOAT8),
        (True, protocol.BOOL),
        (dt.date(2026, 2, 28), protocol.DATE),
        (dt.datetime(2026, 2, 28, 23, 59, 59, 999999), protocol.TIMESTAMP),
        ("US", protocol.TEXT),
    ],
)
def test_parameters_decode_from_both_formats(value, oid):
    assert protocol.decode_param(protocol.encode_binary(value, oid), oid, 1) == value
    assert protocol.decode_param(protocol.encode_text(value, oid), oid, 0) == value


def test_unspecified_parameter_types_stay_text_and_binary_numeric_decodes():
    assert protocol.decode_param(b"2026-01-05", 0, 0) == "2026-01-05"
    # numeric 12.50: ndigits 2, weight 0, sign +, dscale 2, digits [12, 5000]
    assert str(protocol.decode_param(struct.pack("!hhHhhh", 2, 0, 0, 2, 12, 5000), protocol.NUMERIC, 1)) == "12.50"
    with pytest.raises(ValueError, match="text format"):
        protocol.decode_param(b"\x00", 600, 1)


def test_codec_doctests():
    for module in (protocol, statements, catalog_translate):
        assert doctest.testmod(module).failed == 0


# -- session statements -------------------------------------------------------------------


def test_transaction_status_follows_begin_commit_rollback():
    session = Session("u", 1)
    assert run_utility("BEGIN", session).tag == "BEGIN" and session.status == "T"
    session.status = "E"  # an error inside the transaction
    assert run_utility("COMMIT", session).tag == "ROLLBACK" and session.status == "I"
    run_utility("START TRANSACTION READ ONLY", session)
    assert session.status == "T"
    assert run_utility("ROLLBACK", session).tag == "ROLLBACK" and session.status == "I"


def test_set_show_reset_and_discard():
    session = Session("u", 1)
    result = run_utility("SET application_name = 'It''s Metabase'", session)
    assert result.parameter_status == (("application_name", "It's Metabase"),)
    assert run_utility("SHOW application_name", session).rows == (("It's Metabase",),)
    assert run_utility("show TRANSACTION ISOLATION LEVEL", session).rows == (("read committed",),)
    assert run_utility("SET search_path TO semantic, marts", session).tag == "SET"
    assert run_utility("SHOW search_path", session).rows == (("semantic, marts",),)
    run_utility("DISCARD ALL", session)
    assert run_utility("SHOW search_path", session).rows == (("semantic",),)
    with pytest.raises(SqlError) as info:
        run_utility("SHOW no_such_setting", session)
    assert info.value.sqlstate == "42704"


# -- the catalog database -----------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog_db():
    db = CatalogDatabase(
        [
            CatalogTable(
                "semantic",
                "metrics",
                "Every metric",
                (
                    CatalogColumn("metric_time__day", "date", "Day"),
                    CatalogColumn("active_users", "integer", "Users"),
                    CatalogColumn("platform", "string", None),
                    CatalogColumn("rate", "number", "A ratio"),
                ),
            ),
            CatalogTable("marts", "fct_events", None, (CatalogColumn("event_id", "string", None),)),
        ]
    )
    yield db
    db.close()


def run(db: CatalogDatabase, sql: str):
    return db.run(sqlglot.parse_one(sql, read="postgres"), Session("analyst", 42))


def test_catalog_lists_tables_columns_and_comments(catalog_db):
    _, rows = run(
        catalog_db,
        "SELECT n.nspname, c.relname, c.relkind FROM pg_catalog.pg_class c "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' ORDER BY 1, 2",
    )
    assert rows == [("marts", "fct_events", "r"), ("semantic", "metrics", "r")]
    _, rows = run(
        catalog_db,
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
        "pg_catalog.col_description(a.attrelid, a.attnum) FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = 'semantic.metrics'::regclass AND a.attnum > 0 ORDER BY a.attnum",
    )
    assert rows == [
        ("metric_time__day", "date", "Day"),
        ("active_users", "bigint", "Users"),
        ("platform", "text", None),
        ("rate", "double precision", "A ratio"),
    ]
    _, rows = run(catalog_db, "SELECT obj_description('semantic.metrics'::regclass, 'pg_class')")
    assert rows == [("Every metric",)]
    _, rows = run(catalog_db, "SELECT table_schema, table_name, table_type FROM information_schema.tables ORDER BY 1")
    assert rows == [("marts", "fct_events", "BASE TABLE"), ("semantic", "metrics", "BASE TABLE")]
    _, rows = run(
        catalog_db,
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'metrics' ORDER BY ordinal_position",
    )
    assert [r[1] for r in rows] == ["date", "bigint", "text", "double precision"]


def test_catalog_speaks_postgresql(catalog_db):
    columns, rows = run(
        catalog_db,
        "SELECT version(), current_database(), current_schema(), current_user, pg_catalog.pg_backend_pid(), 1",
    )
    assert [c.name for c in columns] == [
        "version",
        "current_database",
        "current_schema",
        "current_user",
        "pg_backend_pid",
        "?column?",
    ]
    assert rows[0][0].startswith("PostgreSQL 16.0") and rows[0][1:] == ("northstar", "semantic", "analyst", 42, 1)
    _, rows = run(
        catalog_db,
        "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname "
        "OPERATOR(pg_catalog.~) '^(metrics)$' COLLATE pg_catalog.default",
    )
    assert rows == [("metrics",)]
    _, rows = run(catalog_db, "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' ORDER BY 1")
    assert rows == [("information_schema",), ("marts",), ("semantic",)]  # DuckDB's own `main` is hidden


def test_catalog_reads_no_files_and_names_missing_relations(catalog_db):
    with pytest.raises(SqlError):
        run(catalog_db, "SELECT * FROM read_csv('/etc/passwd')")
    with pytest.raises(SqlError) as info:
        run(catalog_db, "SELECT * FROM pg_catalog.pg_no_such_thing")
    assert info.value.sqlstate == "42P01"


# -- message flows over a raw socket ------------------------------------------------------


class RawClient:
    """Just enough of a frontend to see every backend message."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.buffer = b""

    def send_startup(self, code: int, body: bytes = b"") -> None:
        self.sock.sendall(struct.pack("!ii", 8 + len(body), code) + body)

    def startup(self) -> dict[str, str]:
        params = b"user\x00analyst\x00database\x00northstar\x00\x00"
        self.send_startup(protocol.PROTOCOL_VERSION, params)
        status = {}
        for kind, payload in self.until(b"Z"):
            if kind == b"S":
                name, value, _ = payload.split(b"\x00")
                status[name.decode()] = value.decode()
            if kind == b"K":
                status["__key__"] = payload
        return status

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        self.sock.sendall(kind + struct.pack("!i", len(payload) + 4) + payload)

    def read_exact(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def message(self) -> tuple[bytes, bytes]:
        header = self.read_exact(5)
        return header[:1], self.read_exact(struct.unpack("!i", header[1:])[0] - 4)

    def until(self, kind: bytes) -> list[tuple[bytes, bytes]]:
        out = []
        while True:
            message = self.message()
            out.append(message)
            if message[0] == kind:
                return out

    def close(self) -> None:
        self.send(b"X")
        self.sock.close()


def kinds(messages) -> list[str]:
    return [k.decode() for k, _ in messages]


def parse_msg(name: str, sql: str, types: tuple[int, ...] = ()) -> bytes:
    return (
        name.encode()
        + b"\x00"
        + sql.encode()
        + b"\x00"
        + struct.pack("!h", len(types))
        + b"".join(struct.pack("!I", t) for t in types)
    )


def bind_msg(
    portal: str, statement: str, params: list[bytes | None], result_format: int = 0, param_format: int = 0
) -> bytes:
    body = portal.encode() + b"\x00" + statement.encode() + b"\x00" + struct.pack("!hh", 1, param_format)
    body += struct.pack("!h", len(params))
    for p in params:
        body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p)) + p
    return body + struct.pack("!hh", 1, result_format)


def test_ssl_and_gssenc_requests_are_refused_and_startup_goes_on(sql_server):
    client = RawClient(sql_server.port)
    client.send_startup(protocol.SSL_REQUEST)
    assert client.read_exact(1) == b"N"
    client.send_startup(protocol.GSSENC_REQUEST)
    assert client.read_exact(1) == b"N"
    status = client.startup()
    assert status["server_version"].startswith("16.0") and status["server_encoding"] == "UTF8"
    assert status["DateStyle"] == "ISO, MDY" and status["integer_datetimes"] == "on"
    assert status["standard_conforming_strings"] == "on" and status["TimeZone"] == "UTC"
    assert len(status["__key__"]) == 8
    client.close()


def test_cancel_with_a_wrong_key_changes_nothing(sql_server):
    client = RawClient(sql_server.port)
    pid, key = struct.unpack("!ii", client.startup()["__key__"])
    other = RawClient(sql_server.port)
    other.send_startup(protocol.CANCEL_REQUEST, struct.pack("!ii", pid, key ^ 1))
    assert other.sock.recv(1) == b""  # the server just closes a cancel connection
    client.send(b"Q", b"SELECT 7\x00")
    messages = client.until(b"Z")
    assert kinds(messages) == ["T", "D", "C", "Z"]
    client.close()


def test_simple_query_messages(sql_server):
    client = RawClient(sql_server.port)
    client.startup()
    client.send(b"Q", b"\x00")
    assert kinds(client.until(b"Z")) == ["I", "Z"]
    client.send(b"Q", b"BEGIN; SELECT 1; COMMIT\x00")
    messages = client.until(b"Z")
    assert kinds(messages) == ["C", "T", "D", "C", "C", "Z"]
    assert [p for k, p in messages if k == b"C"] == [b"BEGIN\x00", b"SELECT 1\x00", b"COMMIT\x00"]
    client.send(b"Q", b"BEGIN; SELECT nope FROM semantic.metrics; SELECT 1\x00")
    messages = client.until(b"Z")
    assert kinds(messages) == ["C", "E", "Z"] and messages[-1][1] == b"E"  # failed transaction
    client.send(b"Q", b"ROLLBACK\x00")
    assert client.until(b"Z")[-1][1] == b"I"
    client.close()


def test_extended_protocol_row_limit_suspends_the_portal(sql_server):
    client = RawClient(sql_server.port)
    client.startup()
    client.send(
        b"P",
        parse_msg(
            "s1",
            "SELECT metric_time__month, active_users FROM semantic.metrics WHERE metric_time__month >= $1 ORDER BY 1",
        ),
    )
    client.send(b"D", b"S" + b"s1\x00")
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages) == ["1", "t", "T", "Z"]
    assert messages[1][1] == struct.pack("!hI", 1, protocol.DATE)  # inferred from the compared column
    client.send(b"B", bind_msg("p1", "s1", [b"2026-01-01"], result_format=1))
    client.send(b"E", b"p1\x00" + struct.pack("!i", 2))
    client.send(b"E", b"p1\x00" + struct.pack("!i", 0))
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages)[:4] == ["2", "D", "D", "s"]
    rows = [p for k, p in messages if k == b"D"]
    assert len(rows) >= 3 and kinds(messages)[-2:] == ["C", "Z"]
    # Binary results: date as days since 2000-01-01, int8 big-endian.
    first = rows[0]
    assert struct.unpack("!hi", first[:6]) == (2, 4)
    assert protocol.PG_EPOCH + dt.timedelta(days=struct.unpack("!i", first[6:10])[0]) == dt.date(2026, 1, 1)
    client.send(b"C", b"S" + b"s1\x00")
    client.send(b"S")
    assert kinds(client.until(b"Z")) == ["3", "Z"]
    client.close()


def test_extended_protocol_error_discards_until_sync(sql_server):
    client = RawClient(sql_server.port)
    client.startup()
    client.send(b"P", parse_msg("", "INSERT INTO semantic.metrics VALUES (1)"))
    client.send(b"B", bind_msg("", "", []))
    client.send(b"E", b"\x00" + struct.pack("!i", 0))
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages) == ["E", "Z"]
    assert b"C25006\x00" in messages[0][1]
    client.send(b"P", parse_msg("", "SELECT $1::int8 + 1", (protocol.INT8,)))
    client.send(b"B", bind_msg("", "", [struct.pack("!q", 41)], param_format=1))
    client.send(b"D", b"P\x00")
    client.send(b"E", b"\x00" + struct.pack("!i", 0))
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages) == ["1", "2", "T", "D", "C", "Z"]
    assert messages[3][1] == struct.pack("!hi", 1, 2) + b"42"
    client.close()


def test_unknown_portal_and_statement_are_errors(sql_server):
    client = RawClient(sql_server.port)
    client.startup()
    client.send(b"B", bind_msg("", "missing", []))
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages) == ["E", "Z"] and b"C26000\x00" in messages[0][1]
    client.send(b"E", b"nope\x00" + struct.pack("!i", 0))
    client.send(b"S")
    messages = client.until(b"Z")
    assert kinds(messages) == ["E", "Z"] and b"C34000\x00" in messages[0][1]
    client.close()
