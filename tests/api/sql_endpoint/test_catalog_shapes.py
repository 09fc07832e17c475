"""The catalog's shape against a real PostgreSQL: the same catalog queries (the relations
clients read, information_schema, and the queries of Metabase's sync, pgjdbc and Superset's
SQLAlchemy inspector) run on `northstar serve --sql-port` and on NORTHSTAR_TEST_POSTGRES_DSN,
and every answer compared by its shape: both answer (no error), with the same column names and
the same column type OIDs. Every mismatch is reported at once.

Rows are not compared: the two databases hold different tables. A few PostgreSQL types
northstar serves as a close stand-in (KNOWN_TYPE_DIFFERENCES) are the only allowed difference.
"""

from __future__ import annotations

import os

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint import test_bi_catalog as bi  # noqa: E402
from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: E402,F401

POSTGRES_DSN = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")

RELATIONS = (
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_namespace",
    "pg_proc",
    "pg_description",
    "pg_index",
    "pg_constraint",
    "pg_range",
    "pg_settings",
    "pg_database",
    "pg_roles",
)

# PostgreSQL type OID -> (the type northstar answers with instead, why). These types have no
# values northstar could send in their own binary form; their columns are NULL or text here.
KNOWN_TYPE_DIFFERENCES = {
    1034: (1009, "aclitem[]: no privileges are granted; NULL, as text[]"),
    24: (25, "regproc: function names, as text"),
    28: (26, "xid: transaction ids, as the unsigned 32-bit oid"),
    22: (1005, "int2vector: as int2[]"),
    30: (1028, "oidvector: as oid[]"),
    1002: (1009, '"char"[]: as text[]'),
    2277: (25, "anyarray: as text"),
    1184: (1114, "timestamptz (rolvaliduntil, always NULL): as timestamp"),
}

# What SQLAlchemy 1.4's PostgreSQL inspector (Superset 6.1's) sends for semantic.metrics, captured
# from its cursor (psycopg2 mogrify); the table's OID as northstar answered it.
SQLALCHEMY_INSPECTOR = {
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg_%' ORDER BY nspname",
    "tables": "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'semantic' AND c.relkind in ('r', 'p')",
    "foreign_tables": "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'semantic' AND c.relkind = 'f'",
    "views": "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'semantic' AND c.relkind IN ('v', 'm')",
    "has_table": "select relname from pg_class c join pg_namespace n on n.oid=c.relnamespace where n.nspname='semantic' and relname='metrics'",
    "table_oid": "SELECT c.oid\nFROM pg_catalog.pg_class c\nLEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace\nWHERE (n.nspname = 'semantic')\nAND c.relname = 'metrics' AND c.relkind in\n('r', 'v', 'm', 'f', 'p')",
    "columns": "SELECT a.attname,\n  pg_catalog.format_type(a.atttypid, a.atttypmod),\n  (\n    SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid)\n    FROM pg_catalog.pg_attrdef d\n    WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum\n    AND a.atthasdef\n  ) AS DEFAULT,\n  a.attnotnull,\n  a.attrelid as table_oid,\n  pgd.description as comment,\n  a.attgenerated as generated,\n                  (SELECT json_build_object(\n        'always', a.attidentity = 'a',\n        'start', s.seqstart,\n        'increment', s.seqincrement,\n        'minvalue', s.seqmin,\n        'maxvalue', s.seqmax,\n        'cache', s.seqcache,\n        'cycle', s.seqcycle)\n    FROM pg_catalog.pg_sequence s\n    JOIN pg_catalog.pg_class c on s.seqrelid = c.\"oid\"\n    WHERE c.relkind = 'S'\n    AND a.attidentity != ''\n    AND s.seqrelid = pg_catalog.pg_get_serial_sequence(\n        a.attrelid::regclass::text, a.attname\n    )::regclass::oid\n    ) as identity_options\nFROM pg_catalog.pg_attribute a\nLEFT JOIN pg_catalog.pg_description pgd ON (\n    pgd.objoid = a.attrelid AND pgd.objsubid = a.attnum)\nWHERE a.attrelid = 23073\nAND a.attnum > 0 AND NOT a.attisdropped\nORDER BY a.attnum",
    "domains": 'SELECT t.typname as "name",\n   pg_catalog.format_type(t.typbasetype, t.typtypmod) as "attype",\n   not t.typnotnull as "nullable",\n   t.typdefault as "default",\n   pg_catalog.pg_type_is_visible(t.oid) as "visible",\n   n.nspname as "schema"\nFROM pg_catalog.pg_type t\n   LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace\nWHERE t.typtype = \'d\'',
    "enums": 'SELECT t.typname as "name",\n       -- no enum defaults in 8.4 at least\n       -- t.typdefault as "default",\n       pg_catalog.pg_type_is_visible(t.oid) as "visible",\n       n.nspname as "schema",\n       e.enumlabel as "label"\n    FROM pg_catalog.pg_type t\n         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace\n         LEFT JOIN pg_catalog.pg_enum e ON t.oid = e.enumtypid\n    WHERE t.typtype = \'e\'\nORDER BY "schema", "name", e.oid',
    "pk_columns": "SELECT a.attname\nFROM pg_attribute a JOIN (\n    SELECT unnest(ix.indkey) attnum,\n           generate_subscripts(ix.indkey, 1) ord\n    FROM pg_index ix\n    WHERE ix.indrelid = 23073 AND ix.indisprimary\n    ) k ON a.attnum=k.attnum\nWHERE a.attrelid = 23073\nORDER BY k.ord",
    "pk_name": "SELECT conname\n   FROM  pg_catalog.pg_constraint r\n   WHERE r.conrelid = 23073 AND r.contype = 'p'\n   ORDER BY 1",
    "foreign_keys": "SELECT r.conname,\n      pg_catalog.pg_get_constraintdef(r.oid, true) as condef,\n      n.nspname as conschema\nFROM  pg_catalog.pg_constraint r,\n      pg_namespace n,\n      pg_class c\n\nWHERE r.conrelid = 23073 AND\n      r.contype = 'f' AND\n      c.oid = confrelid AND\n      n.oid = c.relnamespace\nORDER BY 1",
    "indexes": "SELECT\n    i.relname as relname,\n    ix.indisunique, ix.indexprs,\n    a.attname, a.attnum, c.conrelid, ix.indkey::varchar,\n    ix.indoption::varchar, i.reloptions, am.amname,\n    pg_get_expr(ix.indpred, ix.indrelid),\n    ix.indnkeyatts as indnkeyatts\nFROM\n    pg_class t\n          join pg_index ix on t.oid = ix.indrelid\n          join pg_class i on i.oid = ix.indexrelid\n          left outer join\n              pg_attribute a\n              on t.oid = a.attrelid and a.attnum = ANY(ix.indkey)\n          left outer join\n              pg_constraint c\n              on (ix.indrelid = c.conrelid and\n                  ix.indexrelid = c.conindid and\n                  c.contype in ('p', 'u', 'x'))\n          left outer join\n              pg_am am\n              on i.relam = am.oid\nWHERE\n    t.relkind IN ('r', 'v', 'f', 'm', 'p')\n    and t.oid = 23073\n    and ix.indisprimary = 'f'\nORDER BY\n    t.relname,\n    i.relname",
    "unique_constraints": "SELECT\n    cons.conname as name,\n    cons.conkey as key,\n    a.attnum as col_num,\n    a.attname as col_name\nFROM\n    pg_catalog.pg_constraint cons\n    join pg_attribute a\n      on cons.conrelid = a.attrelid AND\n        a.attnum = ANY(cons.conkey)\nWHERE\n    cons.conrelid = 23073 AND\n    cons.contype = 'u'",
    "table_comment": "SELECT\n    pgd.description as table_comment\nFROM\n    pg_catalog.pg_description pgd\nWHERE\n    pgd.objsubid = 0 AND\n    pgd.objoid = 23073",
    "check_constraints": "SELECT\n    cons.conname as name,\n    pg_get_constraintdef(cons.oid) as src\nFROM\n    pg_catalog.pg_constraint cons\nWHERE\n    cons.conrelid = 23073 AND\n    cons.contype = 'c'",
}

# psql-style and DBeaver-style reads (tests/api/sql_endpoint/test_clients.py).
CLIENT_QUERIES = {
    "namespaces_with_star": "SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN "
    "pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 ORDER BY 1",
    "class_join_star": "SELECT * FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
    "ON n.oid = c.relnamespace WHERE false",
    "attributes": "SELECT c.relname, a.attname, a.attnum, a.atttypid, a.attnotnull, t.typname, "
    "pg_catalog.format_type(a.atttypid, a.atttypmod) AS type FROM pg_catalog.pg_attribute a "
    "JOIN pg_catalog.pg_class c ON a.attrelid = c.oid JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "WHERE a.attnum > 0 AND c.relname = 'metrics'",
    "settings": "SELECT name, setting, unit, vartype, enumvals FROM pg_catalog.pg_settings "
    "WHERE name = 'server_version'",
    "databases": "SELECT d.datname, d.datdba, d.encoding, d.datallowconn FROM pg_catalog.pg_database d",
    "roles": "SELECT r.rolname, r.rolsuper, r.rolcanlogin, r.oid FROM pg_catalog.pg_roles r",
}


def catalog_queries() -> dict[str, str]:
    """Name -> the query, run as is on both servers."""
    queries = {f"select * from {r}": f"SELECT * FROM pg_catalog.{r} LIMIT 0" for r in RELATIONS}
    queries.update(
        {
            f"select * from information_schema.{r}": f"SELECT * FROM information_schema.{r} LIMIT 0"
            for r in ("columns", "tables")
        }
    )
    queries.update(
        {
            "metabase tables": bi.METABASE_TABLES.format(schemas="'semantic'"),
            "metabase privileges": bi.METABASE_PRIVILEGES,
            "metabase fields": bi.METABASE_FIELDS.format(schemas="'semantic'"),
            "metabase indexes": bi.METABASE_INDEXES.format(schemas="'semantic'"),
            "metabase foreign keys": bi.METABASE_FKS.format(schemas="'semantic'"),
            "pgjdbc getTypeInfo": bi.PGJDBC_TYPE_INFO,
            "pgjdbc getTables remarks": bi.PGJDBC_TABLES,
            "pgjdbc getPrimaryKeys": bi.PGJDBC_PRIMARY_KEYS.format(schema="semantic", table="metrics"),
        }
    )
    queries.update({f"sqlalchemy {name}": sql for name, sql in SQLALCHEMY_INSPECTOR.items()})
    queries.update({f"client {name}": sql for name, sql in CLIENT_QUERIES.items()})
    return queries


def shape(conn, sql: str) -> list[tuple[str, int]] | str:
    """(name, type OID) of each result column, or the error's text (an autocommit connection
    goes on after an error)."""
    try:
        cursor = conn.execute(sql)
        return [(d.name, d.type_code) for d in cursor.description or ()]
    except psycopg.Error as exc:
        return f"{exc.sqlstate}: {exc.diag.message_primary}"


def mismatches(ours: list[tuple[str, int]] | str, theirs: list[tuple[str, int]] | str) -> list[str]:
    if isinstance(ours, str) or isinstance(theirs, str):
        return [
            f"northstar: {ours if isinstance(ours, str) else 'answers'}; "
            f"PostgreSQL: {theirs if isinstance(theirs, str) else 'answers'}"
        ]
    found = []
    if [n for n, _ in ours] != [n for n, _ in theirs]:
        found.append(f"columns {[n for n, _ in ours]} != PostgreSQL's {[n for n, _ in theirs]}")
    for (name, got), (_, want) in zip(ours, theirs):
        if got != want and KNOWN_TYPE_DIFFERENCES.get(want, (None,))[0] != got:
            found.append(f"{name}: type {got}, PostgreSQL's {want}")
    return found


def test_catalog_answers_with_postgresql_shapes(sql_server):  # noqa: F811
    if not POSTGRES_DSN:
        pytest.skip("NORTHSTAR_TEST_POSTGRES_DSN is not set")
    report = []
    with (
        psycopg.connect(sql_server.dsn(), autocommit=True) as ours,
        psycopg.connect(POSTGRES_DSN, autocommit=True) as theirs,
    ):
        for name, sql in catalog_queries().items():
            for problem in mismatches(shape(ours, sql), shape(theirs, sql)):
                report.append(f"{name}: {problem}")
    assert not report, "\n".join(report)


def test_a_difference_is_reported():
    """The comparison itself: a renamed column, another type and an error are each reported;
    a known stand-in type is not."""
    assert mismatches([("relname", 19), ("oid", 26)], [("relname", 19), ("oid", 26)]) == []
    assert mismatches([("relacl", 1009)], [("relacl", 1034)]) == []
    assert len(mismatches([("name", 25), ("x", 20)], [("relname", 19), ("x", 23)])) == 3
    assert mismatches("42P01: relation does not exist", [("x", 23)])
