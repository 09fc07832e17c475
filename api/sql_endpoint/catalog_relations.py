"""The relations of the catalog database, shaped as PostgreSQL 15 has them: the served tables
as clients see them (`CatalogTable`), the pg_type, pg_range and pg_proc rows drivers look up,
the macros and views standing in for what DuckDB's pg_catalog lacks or answers differently
(`OVERRIDES`), pg_settings, and the exact columns and types of the relations clients read most
(`PG_COLUMNS`, made so by `pg_shaped_view`).

Definitions only: `catalog.CatalogDatabase` creates them, and the translation of catalog
queries (`catalog_translate`) reads the shapes to give result columns PostgreSQL's types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import duckdb
from sqlglot import exp

from api.sql_endpoint.session import DATABASE, DEFAULT_SCHEMA, REPORTED, SHOWN, VERSION_STRING


@dataclass(frozen=True)
class CatalogColumn:
    name: str
    type: str  # northstar type
    comment: str | None


@dataclass(frozen=True)
class CatalogTable:
    schema: str
    name: str
    comment: str | None
    columns: tuple[CatalogColumn, ...]


DUCKDB_TYPES = {
    "integer": "BIGINT",
    "number": "DOUBLE",
    "string": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "boolean": "BOOLEAN",
}

_CATALOG_OIDS = {
    "pg_type": 1247,
    "pg_attribute": 1249,
    "pg_proc": 1255,
    "pg_class": 1259,
    "pg_authid": 1260,
    "pg_database": 1262,
    "pg_am": 2601,
    "pg_attrdef": 2604,
    "pg_constraint": 2606,
    "pg_description": 2609,
    "pg_index": 2610,
    "pg_namespace": 2615,
    "pg_operator": 2617,
    "pg_rewrite": 2618,
    "pg_trigger": 2620,
    "pg_extension": 3079,
    "pg_collation": 3456,
}

# pg_type rows as PostgreSQL 15 has them, for the types served and those clients look up
# (oid, typname, typlen, typbyval, typtype, typcategory, typispreferred, typelem, typarray,
# typalign, typstorage, typinput, typoutput, typreceive, typsend).
_PG_TYPES = [
    (16, "bool", 1, True, "b", "B", True, 0, 1000, "c", "p", "boolin", "boolout", "boolrecv", "boolsend"),
    (17, "bytea", -1, False, "b", "U", False, 0, 1001, "i", "x", "byteain", "byteaout", "bytearecv", "byteasend"),
    (18, "char", 1, True, "b", "Z", False, 0, 1002, "c", "p", "charin", "charout", "charrecv", "charsend"),
    (19, "name", 64, False, "b", "S", False, 18, 1003, "c", "p", "namein", "nameout", "namerecv", "namesend"),
    (20, "int8", 8, True, "b", "N", False, 0, 1016, "d", "p", "int8in", "int8out", "int8recv", "int8send"),
    (21, "int2", 2, True, "b", "N", False, 0, 1005, "s", "p", "int2in", "int2out", "int2recv", "int2send"),
    (
        22,
        "int2vector",
        -1,
        False,
        "b",
        "A",
        False,
        21,
        1006,
        "i",
        "p",
        "int2vectorin",
        "int2vectorout",
        "int2vectorrecv",
        "int2vectorsend",
    ),
    (23, "int4", 4, True, "b", "N", False, 0, 1007, "i", "p", "int4in", "int4out", "int4recv", "int4send"),
    (
        24,
        "regproc",
        4,
        True,
        "b",
        "N",
        False,
        0,
        1008,
        "i",
        "p",
        "regprocin",
        "regprocout",
        "regprocrecv",
        "regprocsend",
    ),
    (25, "text", -1, False, "b", "S", True, 0, 1009, "i", "x", "textin", "textout", "textrecv", "textsend"),
    (26, "oid", 4, True, "b", "N", True, 0, 1028, "i", "p", "oidin", "oidout", "oidrecv", "oidsend"),
    (28, "xid", 4, True, "b", "U", False, 0, 1011, "i", "p", "xidin", "xidout", "xidrecv", "xidsend"),
    (
        30,
        "oidvector",
        -1,
        False,
        "b",
        "A",
        False,
        26,
        1013,
        "i",
        "p",
        "oidvectorin",
        "oidvectorout",
        "oidvectorrecv",
        "oidvectorsend",
    ),
    (114, "json", -1, False, "b", "U", False, 0, 199, "i", "x", "json_in", "json_out", "json_recv", "json_send"),
    (
        194,
        "pg_node_tree",
        -1,
        False,
        "b",
        "Z",
        False,
        0,
        0,
        "i",
        "x",
        "pg_node_tree_in",
        "pg_node_tree_out",
        "pg_node_tree_recv",
        "pg_node_tree_send",
    ),
    (199, "_json", -1, False, "b", "A", False, 114, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (700, "float4", 4, True, "b", "N", False, 0, 1021, "i", "p", "float4in", "float4out", "float4recv", "float4send"),
    (701, "float8", 8, True, "b", "N", True, 0, 1022, "d", "p", "float8in", "float8out", "float8recv", "float8send"),
    (
        705,
        "unknown",
        -2,
        False,
        "p",
        "X",
        False,
        0,
        0,
        "c",
        "p",
        "unknownin",
        "unknownout",
        "unknownrecv",
        "unknownsend",
    ),
    (1000, "_bool", -1, False, "b", "A", False, 16, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1001, "_bytea", -1, False, "b", "A", False, 17, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1002, "_char", -1, False, "b", "A", False, 18, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1003, "_name", -1, False, "b", "A", False, 19, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1005, "_int2", -1, False, "b", "A", False, 21, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (
        1006,
        "_int2vector",
        -1,
        False,
        "b",
        "A",
        False,
        22,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (1007, "_int4", -1, False, "b", "A", False, 23, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1009, "_text", -1, False, "b", "A", False, 25, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (
        1013,
        "_oidvector",
        -1,
        False,
        "b",
        "A",
        False,
        30,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1014,
        "_bpchar",
        -1,
        False,
        "b",
        "A",
        False,
        1042,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1015,
        "_varchar",
        -1,
        False,
        "b",
        "A",
        False,
        1043,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (1016, "_int8", -1, False, "b", "A", False, 20, 0, "d", "x", "array_in", "array_out", "array_recv", "array_send"),
    (
        1021,
        "_float4",
        -1,
        False,
        "b",
        "A",
        False,
        700,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1022,
        "_float8",
        -1,
        False,
        "b",
        "A",
        False,
        701,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (1028, "_oid", -1, False, "b", "A", False, 26, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1033, "aclitem", 12, False, "b", "U", False, 0, 1034, "i", "p", "aclitemin", "aclitemout", "-", "-"),
    (
        1034,
        "_aclitem",
        -1,
        False,
        "b",
        "A",
        False,
        1033,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1042,
        "bpchar",
        -1,
        False,
        "b",
        "S",
        False,
        0,
        1014,
        "i",
        "x",
        "bpcharin",
        "bpcharout",
        "bpcharrecv",
        "bpcharsend",
    ),
    (
        1043,
        "varchar",
        -1,
        False,
        "b",
        "S",
        False,
        0,
        1015,
        "i",
        "x",
        "varcharin",
        "varcharout",
        "varcharrecv",
        "varcharsend",
    ),
    (1082, "date", 4, True, "b", "D", False, 0, 1182, "i", "p", "date_in", "date_out", "date_recv", "date_send"),
    (1083, "time", 8, True, "b", "D", False, 0, 1183, "d", "p", "time_in", "time_out", "time_recv", "time_send"),
    (
        1114,
        "timestamp",
        8,
        True,
        "b",
        "D",
        False,
        0,
        1115,
        "d",
        "p",
        "timestamp_in",
        "timestamp_out",
        "timestamp_recv",
        "timestamp_send",
    ),
    (
        1115,
        "_timestamp",
        -1,
        False,
        "b",
        "A",
        False,
        1114,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (1182, "_date", -1, False, "b", "A", False, 1082, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (1183, "_time", -1, False, "b", "A", False, 1083, 0, "d", "x", "array_in", "array_out", "array_recv", "array_send"),
    (
        1184,
        "timestamptz",
        8,
        True,
        "b",
        "D",
        True,
        0,
        1185,
        "d",
        "p",
        "timestamptz_in",
        "timestamptz_out",
        "timestamptz_recv",
        "timestamptz_send",
    ),
    (
        1185,
        "_timestamptz",
        -1,
        False,
        "b",
        "A",
        False,
        1184,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1186,
        "interval",
        16,
        False,
        "b",
        "T",
        True,
        0,
        1187,
        "d",
        "p",
        "interval_in",
        "interval_out",
        "interval_recv",
        "interval_send",
    ),
    (
        1187,
        "_interval",
        -1,
        False,
        "b",
        "A",
        False,
        1186,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1231,
        "_numeric",
        -1,
        False,
        "b",
        "A",
        False,
        1700,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        1266,
        "timetz",
        12,
        False,
        "b",
        "D",
        False,
        0,
        1270,
        "d",
        "p",
        "timetz_in",
        "timetz_out",
        "timetz_recv",
        "timetz_send",
    ),
    (
        1270,
        "_timetz",
        -1,
        False,
        "b",
        "A",
        False,
        1266,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (1560, "bit", -1, False, "b", "V", False, 0, 1561, "i", "x", "bit_in", "bit_out", "bit_recv", "bit_send"),
    (1561, "_bit", -1, False, "b", "A", False, 1560, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (
        1700,
        "numeric",
        -1,
        False,
        "b",
        "N",
        False,
        0,
        1231,
        "i",
        "m",
        "numeric_in",
        "numeric_out",
        "numeric_recv",
        "numeric_send",
    ),
    (
        2205,
        "regclass",
        4,
        True,
        "b",
        "N",
        False,
        0,
        2210,
        "i",
        "p",
        "regclassin",
        "regclassout",
        "regclassrecv",
        "regclasssend",
    ),
    (
        2206,
        "regtype",
        4,
        True,
        "b",
        "N",
        False,
        0,
        2211,
        "i",
        "p",
        "regtypein",
        "regtypeout",
        "regtyperecv",
        "regtypesend",
    ),
    (2950, "uuid", 16, False, "b", "U", False, 0, 2951, "c", "p", "uuid_in", "uuid_out", "uuid_recv", "uuid_send"),
    (2951, "_uuid", -1, False, "b", "A", False, 2950, 0, "i", "x", "array_in", "array_out", "array_recv", "array_send"),
    (3802, "jsonb", -1, False, "b", "U", False, 0, 3807, "i", "x", "jsonb_in", "jsonb_out", "jsonb_recv", "jsonb_send"),
    (
        3807,
        "_jsonb",
        -1,
        False,
        "b",
        "A",
        False,
        3802,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    # Ranges, multiranges and their arrays, and the pseudo-types drivers load (Npgsql: record, void).
    (
        2249,
        "record",
        -1,
        False,
        "p",
        "P",
        False,
        0,
        2287,
        "d",
        "x",
        "record_in",
        "record_out",
        "record_recv",
        "record_send",
    ),
    (2278, "void", 4, True, "p", "P", False, 0, 0, "i", "p", "void_in", "void_out", "void_recv", "void_send"),
    (
        2287,
        "_record",
        -1,
        False,
        "p",
        "P",
        False,
        2249,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3904,
        "int4range",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3905,
        "i",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3905,
        "_int4range",
        -1,
        False,
        "b",
        "A",
        False,
        3904,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3906,
        "numrange",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3907,
        "i",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3907,
        "_numrange",
        -1,
        False,
        "b",
        "A",
        False,
        3906,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3908,
        "tsrange",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3909,
        "d",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3909,
        "_tsrange",
        -1,
        False,
        "b",
        "A",
        False,
        3908,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3910,
        "tstzrange",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3911,
        "d",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3911,
        "_tstzrange",
        -1,
        False,
        "b",
        "A",
        False,
        3910,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3912,
        "daterange",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3913,
        "i",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3913,
        "_daterange",
        -1,
        False,
        "b",
        "A",
        False,
        3912,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        3926,
        "int8range",
        -1,
        False,
        "r",
        "R",
        False,
        0,
        3927,
        "d",
        "x",
        "range_in",
        "range_out",
        "range_recv",
        "range_send",
    ),
    (
        3927,
        "_int8range",
        -1,
        False,
        "b",
        "A",
        False,
        3926,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4451,
        "int4multirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6150,
        "i",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6150,
        "_int4multirange",
        -1,
        False,
        "b",
        "A",
        False,
        4451,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4532,
        "nummultirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6151,
        "i",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6151,
        "_nummultirange",
        -1,
        False,
        "b",
        "A",
        False,
        4532,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4533,
        "tsmultirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6152,
        "d",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6152,
        "_tsmultirange",
        -1,
        False,
        "b",
        "A",
        False,
        4533,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4534,
        "tstzmultirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6153,
        "d",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6153,
        "_tstzmultirange",
        -1,
        False,
        "b",
        "A",
        False,
        4534,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4535,
        "datemultirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6155,
        "i",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6155,
        "_datemultirange",
        -1,
        False,
        "b",
        "A",
        False,
        4535,
        0,
        "i",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
    (
        4536,
        "int8multirange",
        -1,
        False,
        "m",
        "R",
        False,
        0,
        6157,
        "d",
        "x",
        "multirange_in",
        "multirange_out",
        "multirange_recv",
        "multirange_send",
    ),
    (
        6157,
        "_int8multirange",
        -1,
        False,
        "b",
        "A",
        False,
        4536,
        0,
        "d",
        "x",
        "array_in",
        "array_out",
        "array_recv",
        "array_send",
    ),
]

# pg_range as PostgreSQL 15 has it: (range type, subtype, multirange type).
_PG_RANGES = [
    (3904, 23, 4451),
    (3906, 1700, 4532),
    (3908, 1114, 4533),
    (3910, 1184, 4534),
    (3912, 1082, 4535),
    (3926, 20, 4536),
]

# The input, output, receive and send functions of _PG_TYPES as PostgreSQL 15 numbers them:
# pg_type refers to them by OID, and drivers join pg_proc on it (Npgsql tells arrays apart
# by typreceive = array_recv).
_PG_PROCS = {
    1031: "aclitemin",
    1032: "aclitemout",
    750: "array_in",
    751: "array_out",
    2400: "array_recv",
    2401: "array_send",
    1564: "bit_in",
    1565: "bit_out",
    2456: "bit_recv",
    2457: "bit_send",
    1242: "boolin",
    1243: "boolout",
    2436: "boolrecv",
    2437: "boolsend",
    1044: "bpcharin",
    1045: "bpcharout",
    2430: "bpcharrecv",
    2431: "bpcharsend",
    1244: "byteain",
    31: "byteaout",
    2412: "bytearecv",
    2413: "byteasend",
    1245: "charin",
    33: "charout",
    2434: "charrecv",
    2435: "charsend",
    1084: "date_in",
    1085: "date_out",
    2468: "date_recv",
    2469: "date_send",
    200: "float4in",
    201: "float4out",
    2424: "float4recv",
    2425: "float4send",
    214: "float8in",
    215: "float8out",
    2426: "float8recv",
    2427: "float8send",
    38: "int2in",
    39: "int2out",
    2404: "int2recv",
    2405: "int2send",
    40: "int2vectorin",
    41: "int2vectorout",
    2410: "int2vectorrecv",
    2411: "int2vectorsend",
    42: "int4in",
    43: "int4out",
    2406: "int4recv",
    2407: "int4send",
    460: "int8in",
    461: "int8out",
    2408: "int8recv",
    2409: "int8send",
    1160: "interval_in",
    1161: "interval_out",
    2478: "interval_recv",
    2479: "interval_send",
    321: "json_in",
    322: "json_out",
    323: "json_recv",
    324: "json_send",
    3806: "jsonb_in",
    3804: "jsonb_out",
    3805: "jsonb_recv",
    3803: "jsonb_send",
    4231: "multirange_in",
    4232: "multirange_out",
    4233: "multirange_recv",
    4234: "multirange_send",
    34: "namein",
    35: "nameout",
    2422: "namerecv",
    2423: "namesend",
    1701: "numeric_in",
    1702: "numeric_out",
    2460: "numeric_recv",
    2461: "numeric_send",
    1798: "oidin",
    1799: "oidout",
    2418: "oidrecv",
    2419: "oidsend",
    54: "oidvectorin",
    55: "oidvectorout",
    2420: "oidvectorrecv",
    2421: "oidvectorsend",
    195: "pg_node_tree_in",
    196: "pg_node_tree_out",
    197: "pg_node_tree_recv",
    198: "pg_node_tree_send",
    3834: "range_in",
    3835: "range_out",
    3836: "range_recv",
    3837: "range_send",
    2290: "record_in",
    2291: "record_out",
    2402: "record_recv",
    2403: "record_send",
    2218: "regclassin",
    2219: "regclassout",
    2452: "regclassrecv",
    2453: "regclasssend",
    44: "regprocin",
    45: "regprocout",
    2444: "regprocrecv",
    2445: "regprocsend",
    2220: "regtypein",
    2221: "regtypeout",
    2454: "regtyperecv",
    2455: "regtypesend",
    46: "textin",
    47: "textout",
    2414: "textrecv",
    2415: "textsend",
    1143: "time_in",
    1144: "time_out",
    2470: "time_recv",
    2471: "time_send",
    1312: "timestamp_in",
    1313: "timestamp_out",
    2474: "timestamp_recv",
    2475: "timestamp_send",
    1150: "timestamptz_in",
    1151: "timestamptz_out",
    2476: "timestamptz_recv",
    2477: "timestamptz_send",
    1350: "timetz_in",
    1351: "timetz_out",
    2472: "timetz_recv",
    2473: "timetz_send",
    109: "unknownin",
    110: "unknownout",
    2416: "unknownrecv",
    2417: "unknownsend",
    2952: "uuid_in",
    2953: "uuid_out",
    2961: "uuid_recv",
    2962: "uuid_send",
    1046: "varcharin",
    1047: "varcharout",
    2432: "varcharrecv",
    2433: "varcharsend",
    2298: "void_in",
    2299: "void_out",
    3120: "void_recv",
    3121: "void_send",
    50: "xidin",
    51: "xidout",
    2440: "xidrecv",
    2441: "xidsend",
}


def _pg_type_view() -> str:
    def value(v: Any) -> str:
        return "'" + v + "'" if isinstance(v, str) else str(v).lower()  # names: no quotes inside

    proc_oids = {name: oid for oid, name in _PG_PROCS.items()}
    rows = ", ".join(
        "("
        + ", ".join(value(v) for v in row[:11])
        + ", "
        + ", ".join(str(proc_oids.get(name, 0)) for name in row[11:])
        + ")"
        for row in _PG_TYPES
    )
    return (
        "CREATE VIEW pg_type AS SELECT oid::BIGINT AS oid, typname, 11::BIGINT AS typnamespace, "
        "10::BIGINT AS typowner, typlen::SMALLINT AS typlen, typbyval, "
        "CASE WHEN typname = 'unknown' THEN 'p' ELSE typtype END AS typtype, typcategory, typispreferred, "
        "true AS typisdefined, ',' AS typdelim, 0::BIGINT AS typrelid, "
        "CASE WHEN typcategory = 'A' THEN 'array_subscript_handler' ELSE '-' END AS typsubscript, "
        "typelem::BIGINT AS typelem, typarray::BIGINT AS typarray, typinput::BIGINT AS typinput, "
        "typoutput::BIGINT AS typoutput, typreceive::BIGINT AS typreceive, typsend::BIGINT AS typsend, "
        "'-' AS typmodin, '-' AS typmodout, '-' AS typanalyze, typalign, typstorage, false AS typnotnull, "
        "0::BIGINT AS typbasetype, -1 AS typtypmod, 0 AS typndims, "
        "CASE WHEN typcategory = 'S' THEN 100 ELSE 0 END::BIGINT AS typcollation, NULL::VARCHAR AS typdefaultbin, "
        "NULL::VARCHAR AS typdefault, NULL::VARCHAR[] AS typacl, 1247::BIGINT AS tableoid "
        f"FROM (VALUES {rows}) AS t(oid, typname, typlen, typbyval, typtype, typcategory, typispreferred, "
        "typelem, typarray, typalign, typstorage, typinput, typoutput, typreceive, typsend)"
    )


# Functions and relations DuckDB's pg_catalog lacks or answers differently, created in the
# `overrides` database that the search path puts first. Each is what PostgreSQL returns for a
# read-only database with one user.
OVERRIDES = [
    f"CREATE MACRO version() AS '{VERSION_STRING}'",
    f"CREATE MACRO current_schema() AS '{DEFAULT_SCHEMA}'",
    f"CREATE MACRO current_schemas(arg_include_implicit) AS "
    f"CASE WHEN arg_include_implicit THEN ['pg_catalog', '{DEFAULT_SCHEMA}'] ELSE ['{DEFAULT_SCHEMA}'] END",
    "CREATE MACRO pg_get_userbyid(arg_role_oid) AS 'northstar'",
    "CREATE MACRO pg_encoding_to_char(arg_encoding) AS 'UTF8'",
    "CREATE MACRO pg_is_in_recovery() AS false",
    "CREATE MACRO pg_postmaster_start_time() AS TIMESTAMP '2000-01-01'",
    "CREATE MACRO pg_total_relation_size(arg_rel) AS 0",
    "CREATE MACRO pg_relation_size(arg_rel) AS 0",
    "CREATE MACRO pg_table_size(arg_rel) AS 0",
    "CREATE MACRO pg_get_viewdef(arg_rel) AS NULL, (arg_rel, arg_pretty) AS NULL",
    "CREATE MACRO pg_get_partkeydef(arg_rel) AS NULL",
    # No functions are served: pg_proc has PostgreSQL's columns and types (DuckDB's own lists
    # its functions with type names where OIDs belong) and only the types' I/O functions.
    "CREATE VIEW pg_proc AS SELECT oid::BIGINT AS oid, proname, 11::BIGINT AS pronamespace, "
    "10::BIGINT AS proowner, 12::BIGINT AS prolang, 1.0::REAL AS procost, 0.0::REAL AS prorows, "
    "0::BIGINT AS provariadic, 0::BIGINT AS prosupport, 'f' AS prokind, false AS prosecdef, "
    "false AS proleakproof, false AS proisstrict, false AS proretset, 'i' AS provolatile, "
    "'s' AS proparallel, 0::SMALLINT AS pronargs, 0::SMALLINT AS pronargdefaults, 0::BIGINT AS prorettype, "
    "CAST([] AS BIGINT[]) AS proargtypes, NULL::BIGINT[] AS proallargtypes, NULL::VARCHAR[] AS proargmodes, "
    "NULL::VARCHAR[] AS proargnames, NULL::VARCHAR AS proargdefaults, NULL::BIGINT[] AS protrftypes, "
    "'' AS prosrc, NULL::VARCHAR AS probin, NULL::VARCHAR AS prosqlbody, NULL::VARCHAR[] AS proconfig, "
    "NULL::VARCHAR[] AS proacl, 1255::BIGINT AS tableoid FROM (VALUES "
    + ", ".join(f"({oid}, '{name}')" for oid, name in _PG_PROCS.items())
    + ") AS p(oid, proname)",
    "CREATE MACRO regproc_oid(arg_name) AS (SELECT first(p.oid) FROM overrides.main.pg_proc p "
    "WHERE p.proname = replace(split_part(arg_name, '(', 1), 'pg_catalog.', ''))",
    "CREATE MACRO pg_get_function_result(arg_function) AS NULL::VARCHAR",
    "CREATE MACRO pg_get_function_arguments(arg_function) AS NULL::VARCHAR",
    "CREATE MACRO pg_get_function_identity_arguments(arg_function) AS NULL::VARCHAR",
    "CREATE MACRO pg_get_statisticsobjdef_columns(oid) AS NULL",
    "CREATE MACRO txid_current() AS 1",
    "CREATE MACRO pg_get_serial_sequence(arg_table, arg_column) AS NULL",
    "CREATE MACRO pg_collation_is_visible(arg_collation) AS true",
    "CREATE MACRO pg_type_is_visible(arg_type) AS true",
    "CREATE MACRO format_type(arg_type, arg_typmod) AS CASE arg_type WHEN 20 THEN 'bigint' "
    "WHEN 701 THEN 'double precision' WHEN 25 THEN 'text' WHEN 1043 THEN 'character varying' WHEN 1082 THEN 'date' "
    "WHEN 1114 THEN 'timestamp without time zone' WHEN 1184 THEN 'timestamp with time zone' WHEN 16 THEN 'boolean' "
    "WHEN 23 THEN 'integer' WHEN 21 THEN 'smallint' WHEN 700 THEN 'real' WHEN 1700 THEN 'numeric' "
    "ELSE (SELECT first(typname) FROM overrides.main.pg_type t WHERE t.oid = arg_type) END",
    "CREATE MACRO pg_relation_is_publishable(arg_rel) AS false",
    "CREATE MACRO pg_get_expr(arg_expr, arg_rel) AS NULL, (arg_expr, arg_rel, arg_pretty) AS NULL",
    "CREATE MACRO pg_get_indexdef(arg_index) AS NULL, (arg_index, arg_col, arg_pretty) AS NULL",
    "CREATE MACRO pg_get_constraintdef(arg_constraint) AS NULL, (arg_constraint, arg_pretty) AS NULL",
    "CREATE MACRO pg_backend_pid() AS 0",
    "CREATE MACRO array_upper(arg_arr, arg_dim) AS len(arg_arr)",
    "CREATE MACRO array_lower(arg_arr, arg_dim) AS CASE WHEN len(arg_arr) > 0 THEN 1 END",
    "CREATE MACRO col_description(arg_rel, arg_attnum) AS (SELECT first(description) FROM system.pg_catalog.pg_description d "
    "WHERE d.objoid = arg_rel AND d.objsubid = arg_attnum)",
    "CREATE MACRO obj_description(arg_rel) AS (SELECT first(description) "
    "FROM system.pg_catalog.pg_description d WHERE d.objoid = arg_rel AND d.objsubid = 0), "
    "(arg_rel, arg_catalog) AS (SELECT first(description) "
    "FROM system.pg_catalog.pg_description d WHERE d.objoid = arg_rel AND d.objsubid = 0)",
    "CREATE MACRO shobj_description(arg_obj, arg_catalog) AS NULL",
    # PostgreSQL's fixed OIDs for its catalogs ('pg_class'::regclass is pg_description.classoid).
    "CREATE MACRO regclass_oid(arg_relation) AS coalesce(CASE replace(replace(arg_relation, 'pg_catalog.', ''), '\"', '') "
    + " ".join(f"WHEN '{name}' THEN {oid}" for name, oid in _CATALOG_OIDS.items())
    + " END, "
    "(SELECT first(c.oid) FROM system.pg_catalog.pg_class c "
    "JOIN system.pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relname = replace(arg_relation, '\"', '') OR n.nspname || '.' || c.relname = replace(arg_relation, '\"', '')))",
    "CREATE MACRO regtype_oid(arg_type_name) AS (SELECT first(t.oid) FROM system.pg_catalog.pg_type t "
    "WHERE t.typname = replace(replace(arg_type_name, 'pg_catalog.', ''), '\"', ''))",
    "CREATE MACRO regnamespace_oid(arg_schema_name) AS (SELECT first(n.oid) FROM system.pg_catalog.pg_namespace n "
    "WHERE n.nspname = replace(arg_schema_name, '\"', ''))",
    # Read-only: SELECT (and REFERENCES) on every served table and column, no write privilege.
    "CREATE MACRO readable_privilege(arg_privilege) AS list_bool_and(list_transform(string_split(lower(arg_privilege), ','), "
    "lambda arg_p: regexp_replace(trim(arg_p), '\\s+with\\s+grant\\s+option$', '') IN ('select', 'references')))",
    "CREATE MACRO has_table_privilege(arg_table, arg_privilege) AS overrides.main.readable_privilege(arg_privilege), "
    "(arg_user, arg_table, arg_privilege) AS overrides.main.readable_privilege(arg_privilege)",
    "CREATE MACRO has_any_column_privilege(arg_table, arg_privilege) AS overrides.main.readable_privilege(arg_privilege), "
    "(arg_user, arg_table, arg_privilege) AS overrides.main.readable_privilege(arg_privilege)",
    "CREATE MACRO has_column_privilege(arg_table, arg_column, arg_privilege) AS "
    "overrides.main.readable_privilege(arg_privilege), (arg_user, arg_table, arg_column, arg_privilege) AS "
    "overrides.main.readable_privilege(arg_privilege)",
    # information_schema._pg_expandarray: one row (x = element, n = 1-based position) per
    # element, as pgjdbc's getPrimaryKeys/getIndexInfo and Metabase's index sync read it.
    "CREATE MACRO _pg_expandarray(arg_arr) AS unnest(list_transform(generate_series(1, len(arg_arr)), "
    "lambda arg_i: {'x': arg_arr[arg_i], 'n': arg_i::INTEGER}))",
    # quote_ident quotes unless the name is a plain lower-case identifier (PostgreSQL also
    # quotes keywords; none is served as a table or column name).
    "CREATE MACRO quote_ident(arg_name) AS CASE WHEN regexp_full_match(arg_name, '[a-z_][a-z0-9_$]*') "
    "THEN arg_name ELSE '\"' || replace(arg_name, '\"', '\"\"') || '\"' END",
    "CREATE MACRO quote_literal(arg_value) AS chr(39) || replace(CAST(arg_value AS VARCHAR), chr(39), "
    "chr(39) || chr(39)) || chr(39)",
    "CREATE MACRO quote_nullable(arg_value) AS coalesce(overrides.main.quote_literal(arg_value), 'NULL')",
    "CREATE MACRO to_regtype(arg_type_name) AS overrides.main.regtype_oid(arg_type_name)",
    "CREATE MACRO to_regclass(arg_relation) AS overrides.main.regclass_oid(arg_relation)",
    # pg_catalog and information_schema are real schemas to clients; DuckDB's `main` is not.
    "CREATE VIEW pg_namespace AS SELECT *, 2615::BIGINT AS tableoid FROM (SELECT oid, nspname, nspowner, nspacl "
    "FROM system.pg_catalog.pg_namespace WHERE nspname <> 'main' UNION ALL SELECT 11, 'pg_catalog', 10, NULL "
    "UNION ALL SELECT 13000, 'information_schema', 10, NULL)",
    # information_schema as PostgreSQL shows it: this database only.
    f"CREATE VIEW information_schema_tables AS SELECT * FROM system.information_schema.tables "
    f"WHERE table_catalog = '{DATABASE}'",
    f"CREATE VIEW information_schema_columns AS SELECT * REPLACE ("
    f"CASE data_type WHEN 'BIGINT' THEN 'bigint' WHEN 'DOUBLE' THEN 'double precision' WHEN 'VARCHAR' THEN 'text' "
    f"WHEN 'DATE' THEN 'date' WHEN 'TIMESTAMP' THEN 'timestamp without time zone' WHEN 'BOOLEAN' THEN 'boolean' "
    f"ELSE lower(data_type) END AS data_type, "
    f"CASE data_type WHEN 'BIGINT' THEN 'int8' WHEN 'DOUBLE' THEN 'float8' WHEN 'VARCHAR' THEN 'text' "
    f"WHEN 'DATE' THEN 'date' WHEN 'TIMESTAMP' THEN 'timestamp' WHEN 'BOOLEAN' THEN 'bool' "
    f"ELSE lower(data_type) END AS udt_name, 'pg_catalog' AS udt_schema, '{DATABASE}' AS udt_catalog, "
    f"coalesce(is_identity, 'NO') AS is_identity, coalesce(is_generated, 'NEVER') AS is_generated) "
    f"FROM system.information_schema.columns WHERE table_catalog = '{DATABASE}'",
    f"CREATE VIEW information_schema_schemata AS SELECT * FROM system.information_schema.schemata "
    f"WHERE catalog_name = '{DATABASE}' AND schema_name <> 'main'",
    # DuckDB's pg_tables and pg_views would also list the overrides' own views (schema main).
    "CREATE VIEW pg_tables AS SELECT * FROM system.pg_catalog.pg_tables WHERE schemaname <> 'main'",
    "CREATE VIEW pg_views AS SELECT * FROM system.pg_catalog.pg_views WHERE schemaname <> 'main'",
    f"CREATE VIEW information_schema_views AS SELECT * FROM system.information_schema.views "
    f"WHERE table_catalog = '{DATABASE}'",
    f"CREATE VIEW pg_database AS SELECT oid, datname, 10::BIGINT AS datdba, 6 AS encoding, 'c' AS datlocprovider, "
    f"false AS datistemplate, true AS datallowconn, -1 AS datconnlimit, 0::BIGINT AS datfrozenxid, "
    f"0::BIGINT AS datminmxid, 0::BIGINT AS dattablespace, 'C' AS datcollate, 'C' AS datctype, "
    f"NULL AS daticulocale, NULL AS daticurules, NULL AS datcollversion, NULL AS datacl "
    f"FROM system.pg_catalog.pg_database WHERE datname = '{DATABASE}'",
    "CREATE VIEW pg_class AS SELECT * REPLACE (NULL::VARCHAR[] AS reloptions, "
    "CASE WHEN relkind = 'r' THEN 2 ELSE 0 END AS relam, 'd' AS relreplident, "
    # The catalog views in the namespaces pg_namespace names (pg_catalog 11, information_schema
    # 13000), as PostgreSQL lists its own; pgcli completes views by schema.
    "CASE relnamespace WHEN (SELECT first(s.oid) FROM duckdb_schemas() AS s WHERE database_name = 'system' "
    "AND schema_name = 'pg_catalog') THEN 11 WHEN (SELECT first(s.oid) FROM duckdb_schemas() AS s "
    "WHERE database_name = 'system' AND schema_name = 'information_schema') THEN 13000 "
    "ELSE relnamespace END AS relnamespace), "
    "false AS relforcerowsecurity, 1259::BIGINT AS tableoid FROM system.pg_catalog.pg_class "
    # Not the overrides' own views and macros, nor DuckDB's own (sqlite_master, duckdb_*).
    "WHERE oid NOT IN (SELECT view_oid FROM duckdb_views() WHERE database_name = 'overrides') "
    "AND relnamespace NOT IN (SELECT s.oid FROM duckdb_schemas() AS s WHERE database_name = 'system' "
    "AND schema_name = 'main')",
    # Text columns are `text` to clients, as the results say (DuckDB reports varchar).
    "CREATE VIEW pg_attribute AS SELECT * REPLACE (CASE WHEN atttypid = 1043 THEN 25 ELSE atttypid END "
    "AS atttypid, 'p' AS attstorage) FROM system.pg_catalog.pg_attribute",
    # Every comment served describes a relation or its column: classoid is pg_class.
    "CREATE VIEW pg_description AS SELECT objoid, 1259::BIGINT AS classoid, objsubid, description "
    "FROM system.pg_catalog.pg_description",
    "CREATE VIEW pg_am AS SELECT 2::BIGINT AS oid, 'heap' AS amname, 't' AS amtype",
    # pg_type: PostgreSQL's own rows (_PG_TYPES), in the pg_catalog namespace.
    _pg_type_view(),
    "CREATE VIEW pg_collation AS SELECT 100::BIGINT AS oid, 'default' AS collname, 11::BIGINT AS collnamespace, "
    "'d' AS collprovider, true AS collisdeterministic, 'C' AS collcollate, 'C' AS collctype",
    "CREATE VIEW pg_sequence AS SELECT 0::BIGINT AS seqrelid, 0::BIGINT AS seqtypid, 0::BIGINT AS seqstart, "
    "0::BIGINT AS seqincrement, 0::BIGINT AS seqmax, 0::BIGINT AS seqmin, 0::BIGINT AS seqcache, "
    "false AS seqcycle WHERE false",
    "CREATE VIEW pg_index AS SELECT 0::BIGINT AS indexrelid, 0::BIGINT AS indrelid, 0 AS indnatts, "
    "0 AS indnkeyatts, false AS indisunique, false AS indnullsnotdistinct, false AS indisprimary, "
    "false AS indisexclusion, true AS indimmediate, false AS indisclustered, true AS indisvalid, "
    "false AS indcheckxmin, true AS indisready, true AS indislive, false AS indisreplident, "
    "CAST([] AS SMALLINT[]) AS indkey, CAST([] AS BIGINT[]) AS indcollation, CAST([] AS BIGINT[]) AS indclass, "
    "CAST([] AS SMALLINT[]) AS indoption, NULL::VARCHAR AS indexprs, NULL::VARCHAR AS indpred WHERE false",
    "CREATE VIEW pg_opclass AS SELECT 0::BIGINT AS oid, '' AS opcname, false AS opcdefault, "
    "0::BIGINT AS opcmethod, 0::BIGINT AS opcnamespace, 2616::BIGINT AS tableoid WHERE false",
    # psql's \dd lists operator families and classes among the commented objects.
    "CREATE VIEW pg_opfamily AS SELECT 0::BIGINT AS oid, 0::BIGINT AS opfmethod, '' AS opfname, "
    "0::BIGINT AS opfnamespace, 10::BIGINT AS opfowner, 2753::BIGINT AS tableoid WHERE false",
    "CREATE MACRO pg_opclass_is_visible(arg_opclass) AS true",
    # PostgreSQL's built-in languages (pgcli reads pg_language to learn the names' casing).
    "CREATE VIEW pg_language AS SELECT * FROM (VALUES (12::BIGINT, 'internal', 10::BIGINT, false, false), "
    "(13::BIGINT, 'c', 10::BIGINT, false, false), (14::BIGINT, 'sql', 10::BIGINT, false, true)) "
    "AS l(oid, lanname, lanowner, lanispl, lanpltrusted)",
    "CREATE MACRO pg_opfamily_is_visible(arg_opfamily) AS true",
    # tableoid: psql's \dd joins pg_description on it (classoid).
    "CREATE VIEW pg_constraint AS SELECT *, 2606::BIGINT AS tableoid FROM system.pg_catalog.pg_constraint",
    "CREATE VIEW pg_roles AS SELECT 10::BIGINT AS oid, 'northstar' AS rolname, false AS rolsuper, "
    "false AS rolinherit, false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, "
    "false AS rolreplication, -1 AS rolconnlimit, NULL AS rolvaliduntil, false AS rolbypassrls, NULL AS rolconfig",
    "CREATE VIEW pg_user AS SELECT 'northstar' AS usename, 10::BIGINT AS usesysid, false AS usecreatedb, "
    "false AS usesuper, false AS userepl, false AS usebypassrls, NULL AS passwd, NULL AS valuntil, "
    "NULL AS useconfig",
    "CREATE VIEW pg_authid AS SELECT * FROM overrides.main.pg_roles",
    # Empty relations for features a read-only semantic layer has none of.
    "CREATE VIEW pg_inherits AS SELECT 0::BIGINT AS inhrelid, 0::BIGINT AS inhparent, 0 AS inhseqno, "
    "false AS inhdetachpending WHERE false",
    "CREATE VIEW pg_foreign_table AS SELECT 0::BIGINT AS ftrelid, 0::BIGINT AS ftserver WHERE false",
    "CREATE VIEW pg_partitioned_table AS SELECT 0::BIGINT AS partrelid WHERE false",
    "CREATE VIEW pg_extension AS SELECT 0::BIGINT AS oid, '' AS extname, '' AS extversion, "
    "0::BIGINT AS extnamespace WHERE false",
    "CREATE VIEW pg_policy AS SELECT 0::BIGINT AS oid, '' AS polname, 0::BIGINT AS polrelid, '' AS polcmd, "
    "false AS polpermissive, CAST([] AS BIGINT[]) AS polroles, '' AS polqual, '' AS polwithcheck WHERE false",
    "CREATE VIEW pg_rewrite AS SELECT 0::BIGINT AS oid, '' AS rulename, 0::BIGINT AS ev_class, '' AS ev_type, "
    "'' AS ev_enabled, false AS is_instead, 2618::BIGINT AS tableoid WHERE false",
    "CREATE VIEW pg_trigger AS SELECT 0::BIGINT AS oid, 0::BIGINT AS tgrelid, '' AS tgname, false AS tgisinternal, "
    "0::BIGINT AS tgparentid, '' AS tgenabled, 2620::BIGINT AS tableoid WHERE false",
    "CREATE VIEW pg_statistic_ext AS SELECT 0::BIGINT AS oid, 0::BIGINT AS stxrelid, 0::BIGINT AS stxnamespace, "
    "'' AS stxname, CAST([] AS VARCHAR[]) AS stxkind, -1 AS stxstattarget, CAST([] AS SMALLINT[]) AS stxkeys "
    "WHERE false",
    "CREATE VIEW pg_publication AS SELECT 0::BIGINT AS oid, '' AS pubname, false AS puballtables, "
    "false AS pubinsert, false AS pubupdate, false AS pubdelete, false AS pubtruncate, false AS pubviaroot "
    "WHERE false",
    "CREATE VIEW pg_publication_namespace AS SELECT 0::BIGINT AS oid, 0::BIGINT AS pnpubid, "
    "0::BIGINT AS pnnspid WHERE false",
    "CREATE VIEW pg_publication_rel AS SELECT 0::BIGINT AS oid, 0::BIGINT AS prrelid, 0::BIGINT AS prpubid, "
    "'' AS prqual, CAST([] AS SMALLINT[]) AS prattrs WHERE false",
    # Statistics: the served tables, with no activity recorded (Metabase reads n_live_tup as
    # an estimated row count).
    "CREATE VIEW pg_stat_user_tables AS SELECT c.oid AS relid, n.nspname AS schemaname, c.relname, "
    "0::BIGINT AS seq_scan, NULL::TIMESTAMPTZ AS last_seq_scan, 0::BIGINT AS seq_tup_read, 0::BIGINT AS idx_scan, "
    "NULL::TIMESTAMPTZ AS last_idx_scan, 0::BIGINT AS idx_tup_fetch, 0::BIGINT AS n_tup_ins, 0::BIGINT AS n_tup_upd, "
    "0::BIGINT AS n_tup_del, 0::BIGINT AS n_tup_hot_upd, 0::BIGINT AS n_tup_newpage_upd, 0::BIGINT AS n_live_tup, "
    "0::BIGINT AS n_dead_tup, 0::BIGINT AS n_mod_since_analyze, 0::BIGINT AS n_ins_since_vacuum, "
    "NULL::TIMESTAMPTZ AS last_vacuum, NULL::TIMESTAMPTZ AS last_autovacuum, NULL::TIMESTAMPTZ AS last_analyze, "
    "NULL::TIMESTAMPTZ AS last_autoanalyze, 0::BIGINT AS vacuum_count, 0::BIGINT AS autovacuum_count, "
    "0::BIGINT AS analyze_count, 0::BIGINT AS autoanalyze_count FROM system.pg_catalog.pg_class c "
    "JOIN system.pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE c.relkind = 'r' AND n.nspname NOT IN ('main', 'pg_catalog', 'information_schema')",
    "CREATE VIEW pg_stat_all_tables AS SELECT * FROM overrides.main.pg_stat_user_tables",
    "CREATE VIEW pg_statio_user_tables AS SELECT relid, schemaname, relname, 0::BIGINT AS heap_blks_read, "
    "0::BIGINT AS heap_blks_hit FROM overrides.main.pg_stat_user_tables",
    "CREATE VIEW pg_range AS SELECT rngtypid::BIGINT AS rngtypid, rngsubtype::BIGINT AS rngsubtype, "
    "rngmultitypid::BIGINT AS rngmultitypid, 0::BIGINT AS rngcollation, 0::BIGINT AS rngsubopc, "
    "'-' AS rngcanonical, '-' AS rngsubdiff FROM (VALUES "
    + ", ".join(str(row) for row in _PG_RANGES)
    + ") AS r(rngtypid, rngsubtype, rngmultitypid)",
    "CREATE VIEW pg_auth_members AS SELECT 0::BIGINT AS oid, 0::BIGINT AS roleid, 0::BIGINT AS member, "
    "0::BIGINT AS grantor, false AS admin_option, false AS inherit_option, false AS set_option WHERE false",
    "CREATE VIEW pg_cursors AS SELECT '' AS name, '' AS statement, false AS is_holdable, false AS is_binary, "
    "false AS is_scrollable, NULL::TIMESTAMPTZ AS creation_time WHERE false",
    "CREATE VIEW pg_matviews AS SELECT '' AS schemaname, '' AS matviewname WHERE false",
]


def settings_view() -> str:
    """pg_settings with what SHOW answers (not DuckDB's own settings)."""
    rows = {
        **{k.lower(): (k, v) for k, v in SHOWN.items() if " " not in k},
        **{k.lower(): (k, v) for k, v in REPORTED.items()},
    }
    values = ", ".join(f"({literal(name)}, {literal(value)})" for name, value in sorted(rows.values()))
    return (
        "CREATE VIEW pg_settings AS SELECT name, setting, NULL AS unit, 'northstar' AS category, "
        "'' AS short_desc, NULL AS extra_desc, 'user' AS context, 'string' AS vartype, 'default' AS source, "
        "NULL AS min_val, NULL AS max_val, NULL AS enumvals, setting AS boot_val, setting AS reset_val, "
        f"false AS pending_restart FROM (VALUES {values}) AS s(name, setting)"
    )


# The columns (and their types, domains as their base type) of the relations clients read most,
# as PostgreSQL 15's own catalog defines them: the catalog views are reshaped to these exact
# columns (pg_shaped_view), so a query answers with PostgreSQL's column names and types.
# Read from a PostgreSQL 15 server with
#   SELECT relname, string_agg(attname || ' ' || typname, ', ' ORDER BY attnum) FROM pg_attribute ...
PG_COLUMNS = {
    "information_schema_columns": (
        "table_catalog name, table_schema name, table_name name, column_name name, "
        "ordinal_position int4, column_default varchar, is_nullable varchar, data_type varchar, "
        "character_maximum_length int4, character_octet_length int4, numeric_precision int4, "
        "numeric_precision_radix int4, numeric_scale int4, datetime_precision int4, "
        "interval_type varchar, interval_precision int4, character_set_catalog name, "
        "character_set_schema name, character_set_name name, collation_catalog name, "
        "collation_schema name, collation_name name, domain_catalog name, domain_schema name, "
        "domain_name name, udt_catalog name, udt_schema name, udt_name name, scope_catalog name, "
        "scope_schema name, scope_name name, maximum_cardinality int4, dtd_identifier name, "
        "is_self_referencing varchar, is_identity varchar, identity_generation varchar, "
        "identity_start varchar, identity_increment varchar, identity_maximum varchar, "
        "identity_minimum varchar, identity_cycle varchar, is_generated varchar, "
        "generation_expression varchar, is_updatable varchar"
    ),
    "information_schema_tables": (
        "table_catalog name, table_schema name, table_name name, table_type varchar, "
        "self_referencing_column_name name, reference_generation varchar, "
        "user_defined_type_catalog name, user_defined_type_schema name, user_defined_type_name name, "
        "is_insertable_into varchar, is_typed varchar, commit_action varchar"
    ),
    "pg_am": ("oid oid, amname name, amhandler regproc, amtype char"),
    "pg_enum": ("oid oid, enumtypid oid, enumsortorder float4, enumlabel name"),
    "pg_matviews": (
        "schemaname name, matviewname name, matviewowner name, tablespace name, hasindexes bool, "
        "ispopulated bool, definition text"
    ),
    "pg_tables": (
        "schemaname name, tablename name, tableowner name, tablespace name, hasindexes bool, "
        "hasrules bool, hastriggers bool, rowsecurity bool"
    ),
    "pg_views": ("schemaname name, viewname name, viewowner name, definition text"),
    "pg_attribute": (
        "attrelid oid, attname name, atttypid oid, attstattarget int4, attlen int2, attnum int2, "
        "attndims int4, attcacheoff int4, atttypmod int4, attbyval bool, attalign char, attstorage char, "
        "attcompression char, attnotnull bool, atthasdef bool, atthasmissing bool, attidentity char, "
        "attgenerated char, attisdropped bool, attislocal bool, attinhcount int4, attcollation oid, "
        "attacl _aclitem, attoptions _text, attfdwoptions _text, attmissingval anyarray"
    ),
    "pg_class": (
        "oid oid, relname name, relnamespace oid, reltype oid, reloftype oid, relowner oid, relam oid, "
        "relfilenode oid, reltablespace oid, relpages int4, reltuples float4, relallvisible int4, "
        "reltoastrelid oid, relhasindex bool, relisshared bool, relpersistence char, relkind char, "
        "relnatts int2, relchecks int2, relhasrules bool, relhastriggers bool, relhassubclass bool, "
        "relrowsecurity bool, relforcerowsecurity bool, relispopulated bool, relreplident char, "
        "relispartition bool, relrewrite oid, relfrozenxid xid, relminmxid xid, relacl _aclitem, "
        "reloptions _text, relpartbound pg_node_tree"
    ),
    "pg_constraint": (
        "oid oid, conname name, connamespace oid, contype char, condeferrable bool, condeferred bool, "
        "convalidated bool, conrelid oid, contypid oid, conindid oid, conparentid oid, confrelid oid, "
        "confupdtype char, confdeltype char, confmatchtype char, conislocal bool, coninhcount int4, "
        "connoinherit bool, conkey _int2, confkey _int2, conpfeqop _oid, conppeqop _oid, conffeqop _oid, "
        "confdelsetcols _int2, conexclop _oid, conbin pg_node_tree"
    ),
    "pg_database": (
        "oid oid, datname name, datdba oid, encoding int4, datlocprovider char, datistemplate bool, "
        "datallowconn bool, datconnlimit int4, datfrozenxid xid, datminmxid xid, dattablespace oid, "
        "datcollate text, datctype text, daticulocale text, datcollversion text, datacl _aclitem"
    ),
    "pg_description": ("objoid oid, classoid oid, objsubid int4, description text"),
    "pg_index": (
        "indexrelid oid, indrelid oid, indnatts int2, indnkeyatts int2, indisunique bool, "
        "indnullsnotdistinct bool, indisprimary bool, indisexclusion bool, indimmediate bool, "
        "indisclustered bool, indisvalid bool, indcheckxmin bool, indisready bool, indislive bool, "
        "indisreplident bool, indkey int2vector, indcollation oidvector, indclass oidvector, "
        "indoption int2vector, indexprs pg_node_tree, indpred pg_node_tree"
    ),
    "pg_namespace": ("oid oid, nspname name, nspowner oid, nspacl _aclitem"),
    "pg_proc": (
        "oid oid, proname name, pronamespace oid, proowner oid, prolang oid, procost float4, "
        "prorows float4, provariadic oid, prosupport regproc, prokind char, prosecdef bool, "
        "proleakproof bool, proisstrict bool, proretset bool, provolatile char, proparallel char, "
        "pronargs int2, pronargdefaults int2, prorettype oid, proargtypes oidvector, "
        "proallargtypes _oid, proargmodes _char, proargnames _text, proargdefaults pg_node_tree, "
        "protrftypes _oid, prosrc text, probin text, prosqlbody pg_node_tree, proconfig _text, "
        "proacl _aclitem"
    ),
    "pg_range": (
        "rngtypid oid, rngsubtype oid, rngmultitypid oid, rngcollation oid, rngsubopc oid, "
        "rngcanonical regproc, rngsubdiff regproc"
    ),
    "pg_roles": (
        "rolname name, rolsuper bool, rolinherit bool, rolcreaterole bool, rolcreatedb bool, "
        "rolcanlogin bool, rolreplication bool, rolconnlimit int4, rolpassword text, "
        "rolvaliduntil timestamptz, rolbypassrls bool, rolconfig _text, oid oid"
    ),
    "pg_settings": (
        "name text, setting text, unit text, category text, short_desc text, extra_desc text, "
        "context text, vartype text, source text, min_val text, max_val text, enumvals _text, "
        "boot_val text, reset_val text, sourcefile text, sourceline int4, pending_restart bool"
    ),
    "pg_type": (
        "oid oid, typname name, typnamespace oid, typowner oid, typlen int2, typbyval bool, "
        "typtype char, typcategory char, typispreferred bool, typisdefined bool, typdelim char, "
        "typrelid oid, typsubscript regproc, typelem oid, typarray oid, typinput regproc, "
        "typoutput regproc, typreceive regproc, typsend regproc, typmodin regproc, typmodout regproc, "
        "typanalyze regproc, typalign char, typstorage char, typnotnull bool, typbasetype oid, "
        "typtypmod int4, typndims int4, typcollation oid, typdefaultbin pg_node_tree, typdefault text, "
        "typacl _aclitem"
    ),
}

# DuckDB types for PostgreSQL's, chosen so the result column reports PostgreSQL's type OID
# (duckdb_type_oid: UINTEGER is oid, FLOAT float4); the text-like ones PostgreSQL types
# apart (name, "char", varchar, pg_node_tree) are VARCHAR here and told apart by column
# name (PG_TEXT_TYPES); xid is an unsigned 32-bit number like oid.
_DUCKDB_OF_PG = {
    "oid": "UINTEGER",
    "xid": "UINTEGER",
    "int2": "SMALLINT",
    "int4": "INTEGER",
    "int8": "BIGINT",
    "float4": "FLOAT",
    "float8": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamptz": "TIMESTAMPTZ",
    "_text": "VARCHAR[]",
    "_oid": "UINTEGER[]",
    "_int2": "SMALLINT[]",
    "int2vector": "SMALLINT[]",
    "oidvector": "UINTEGER[]",
    "_aclitem": "VARCHAR[]",
    "_char": "VARCHAR[]",
}
TEXT_LIKE_OIDS = {"char": 18, "name": 19, "pg_node_tree": 194, "varchar": 1043}
# System columns PostgreSQL reads by name but leaves out of `SELECT *`.
SYSTEM_COLUMNS = ("tableoid",)


# The shaped relations whose source has system columns.
WITH_SYSTEM_COLUMNS = frozenset(
    name
    for name in PG_COLUMNS
    for statement in OVERRIDES
    if statement.startswith(f"CREATE VIEW {name} AS") and any(f"AS {c}" in statement for c in SYSTEM_COLUMNS)
)


def _pg_columns(relation: str) -> list[tuple[str, str]]:
    return [tuple(c.split(" ")) for c in "".join(PG_COLUMNS[relation]).split(", ")]  # type: ignore[misc]


def _pg_text_types() -> dict[str, int]:
    """Output column name -> the text-like PostgreSQL type OID it has in every relation that
    has it (names typed differently in two relations are left as text)."""
    seen: dict[str, set[int]] = {}
    for relation in PG_COLUMNS:
        for name, type_name in _pg_columns(relation):
            seen.setdefault(name, set()).add(TEXT_LIKE_OIDS.get(type_name, 0))
    return {name: oids.pop() for name, oids in seen.items() if len(oids) == 1 and 0 not in oids}


PG_TEXT_TYPES = _pg_text_types()


def pg_shaped_view(con: duckdb.DuckDBPyConnection, relation: str, source: str) -> str:
    """`CREATE VIEW <relation>` with PostgreSQL's columns in PostgreSQL's order, over `source`
    (DuckDB's view or an override): its columns converted, the ones it lacks NULL, and its
    system columns (tableoid) kept last, for queries that name them."""
    have = {row[0]: row[1] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    items = []
    for name, type_name in _pg_columns(relation):
        target = _DUCKDB_OF_PG.get(type_name, "VARCHAR")
        if name not in have:
            items.append(f"NULL::{target} AS {ident(name)}")
        elif have[name] == "BOOLEAN" and type_name == "varchar":
            # information_schema's yes_or_no.
            items.append(f"CASE WHEN {ident(name)} THEN 'YES' WHEN NOT {ident(name)} THEN 'NO' END AS {ident(name)}")
        else:
            # TRY_CAST: DuckDB's own text for a value PostgreSQL keeps as an array (an ACL) is
            # not one; it is NULL here rather than an error for the whole catalog query.
            items.append(f"TRY_CAST({ident(name)} AS {target}) AS {ident(name)}")
    items += [ident(name) for name in SYSTEM_COLUMNS if name in have]
    return f"CREATE VIEW {relation} AS SELECT {', '.join(items)} FROM {source}"


def created_view(statement: str) -> str | None:
    match = re.match(r"CREATE VIEW (\w+) AS", statement)
    return match.group(1) if match else None


INFORMATION_SCHEMA_OVERRIDES = {"tables", "columns", "schemata", "views"}


def ident(name: str) -> str:
    """A name as a quoted DuckDB identifier."""
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def literal(text: str) -> str:
    """A text as a DuckDB string literal."""
    return exp.Literal.string(text).sql("duckdb")
