"""Catalog queries BI tools send as they connect, in their own text (taken from their sources),
over the wire to `northstar serve --sql-port`, and where a real PostgreSQL is at hand
(NORTHSTAR_TEST_POSTGRES_DSN) the same query there, for the shape of the answer.

- Metabase's sync (src/metabase/driver/postgres.clj): describe-database (`pg_stat_user_tables`,
  `'pg_class'::regclass`), current-user-table-privileges (labels `AS select`, `AS update`),
  describe-fields (`format('%I.%I', ...)::regclass`), describe-fks and describe-indexes
  (`information_schema._pg_expandarray`), as HoneySQL renders them.
"""

from __future__ import annotations

import os

import pytest

psycopg = pytest.importorskip("psycopg")

from tests.api.sql_endpoint.sql_servers import sql_server  # noqa: E402,F401

POSTGRES_DSN = os.environ.get("NORTHSTAR_TEST_POSTGRES_DSN")

METABASE_TABLES = (
    'SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN \'r\' THEN \'TABLE\' '
    "WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' "
    'WHEN \'m\' THEN \'MATERIALIZED VIEW\' ELSE NULL END AS "type", "d"."description" AS "description", '
    '"stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" '
    'INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" '
    'LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = 0) '
    'AND ("d"."classoid" = \'pg_class\'::regclass) '
    'LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") '
    'AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") '
    'AND ("n"."nspname" !~ \'^pg_\') AND ("n"."nspname" <> \'information_schema\') '
    "AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN ({schemas})) "
    'ORDER BY "type" ASC, "schema" ASC, "name" ASC'
)

_OBJECT = (
    "'\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"'"
)
METABASE_PRIVILEGES = "\n".join(
    [
        "with table_privileges as (",
        " select",
        "   NULL as role,",
        "   t.schemaname as schema,",
        "   t.objectname as table,",
        f"   pg_catalog.has_any_column_privilege(current_user, {_OBJECT},  'update') as update,",
        f"   pg_catalog.has_any_column_privilege(current_user, {_OBJECT},  'select') as select,",
        f"   pg_catalog.has_any_column_privilege(current_user, {_OBJECT},  'insert') as insert,",
        f"   pg_catalog.has_table_privilege(     current_user, {_OBJECT},  'delete') as delete",
        " from (",
        "   select schemaname, tablename as objectname from pg_catalog.pg_tables",
        "   union",
        "   select schemaname, viewname as objectname from pg_catalog.pg_views",
        "   union",
        "   select schemaname, matviewname as objectname from pg_catalog.pg_matviews",
        " ) t",
        " where t.schemaname !~ '^pg_'",
        "   and t.schemaname <> 'information_schema'",
        "   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')",
        ")",
        "select t.*",
        "from table_privileges t",
    ]
)

METABASE_FIELDS = (
    'SELECT "c"."column_name" AS "name", CASE WHEN "c"."udt_schema" IN (\'public\', \'pg_catalog\') '
    'THEN FORMAT(\'%s\', "c"."udt_name") ELSE FORMAT(\'"%s"."%s"\', "c"."udt_schema", "c"."udt_name") END '
    'AS "database-type", "c"."ordinal_position" - 1 AS "database-position", "c"."table_schema" AS "table-schema", '
    '"c"."table_name" AS "table-name", "pk"."column_name" IS NOT NULL AS "pk?", '
    'COL_DESCRIPTION(CAST(CAST(FORMAT(\'%I.%I\', CAST("c"."table_schema" AS TEXT), CAST("c"."table_name" AS TEXT)) '
    'AS REGCLASS) AS OID), "c"."ordinal_position") AS "field-comment", '
    '(("column_default" IS NULL) OR (LOWER("column_default") = \'null\')) AND ("is_nullable" = \'NO\') '
    'AND NOT ((("column_default" IS NOT NULL) AND ("column_default" LIKE \'%nextval(%\')) OR ("is_identity" <> \'NO\')) '
    'AS "database-required", (("column_default" IS NOT NULL) AND ("column_default" LIKE \'%nextval(%\')) '
    'OR ("is_identity" <> \'NO\') AS "database-is-auto-increment" FROM "information_schema"."columns" AS "c" '
    'LEFT JOIN (SELECT "tc"."table_schema", "tc"."table_name", "kc"."column_name" '
    'FROM "information_schema"."table_constraints" AS "tc" INNER JOIN "information_schema"."key_column_usage" AS "kc" '
    'ON ("tc"."constraint_name" = "kc"."constraint_name") AND ("tc"."table_schema" = "kc"."table_schema") '
    'AND ("tc"."table_name" = "kc"."table_name") WHERE "tc"."constraint_type" = \'PRIMARY KEY\') AS "pk" '
    'ON ("c"."table_schema" = "pk"."table_schema") AND ("c"."table_name" = "pk"."table_name") '
    'AND ("c"."column_name" = "pk"."column_name") '
    'WHERE c.table_schema !~ \'^information_schema|catalog_history|pg_\' AND ("c"."table_schema" IN ({schemas})) '
    'UNION ALL SELECT "pa"."attname" AS "name", CASE WHEN "ptn"."nspname" IN (\'public\', \'pg_catalog\') '
    'THEN FORMAT(\'%s\', "pt"."typname") ELSE FORMAT(\'"%s"."%s"\', "ptn"."nspname", "pt"."typname") END '
    'AS "database-type", "pa"."attnum" - 1 AS "database-position", "pn"."nspname" AS "table-schema", '
    '"pc"."relname" AS "table-name", FALSE AS "pk?", NULL AS "field-comment", FALSE AS "database-required", '
    'FALSE AS "database-is-auto-increment" FROM "pg_catalog"."pg_class" AS "pc" '
    'INNER JOIN "pg_catalog"."pg_namespace" AS "pn" ON "pn"."oid" = "pc"."relnamespace" '
    'INNER JOIN "pg_catalog"."pg_attribute" AS "pa" ON "pa"."attrelid" = "pc"."oid" '
    'INNER JOIN "pg_catalog"."pg_type" AS "pt" ON "pt"."oid" = "pa"."atttypid" '
    'INNER JOIN "pg_catalog"."pg_namespace" AS "ptn" ON "ptn"."oid" = "pt"."typnamespace" '
    'WHERE ("pc"."relkind" = \'m\') AND ("pa"."attnum" >= 1) AND ("pn"."nspname" IN ({schemas})) '
    'ORDER BY "table-schema" ASC, "table-name" ASC, "database-position" ASC'
)

METABASE_INDEXES = (
    'SELECT "tmp"."table-schema", "tmp"."table-name", TRIM(BOTH \'"\' FROM PG_CATALOG.PG_GET_INDEXDEF('
    '"tmp"."ci_oid", "tmp"."pos", FALSE)) AS "field-name" FROM (SELECT "n"."nspname" AS "table-schema", '
    '"ct"."relname" AS "table-name", "ci"."oid" AS "ci_oid", (INFORMATION_SCHEMA._PG_EXPANDARRAY("i"."indkey")).n '
    'AS "pos" FROM "pg_catalog"."pg_class" AS "ct" INNER JOIN "pg_catalog"."pg_namespace" AS "n" '
    'ON "ct"."relnamespace" = "n"."oid" INNER JOIN "pg_catalog"."pg_index" AS "i" ON "ct"."oid" = "i"."indrelid" '
    'INNER JOIN "pg_catalog"."pg_class" AS "ci" ON "ci"."oid" = "i"."indexrelid" '
    'WHERE (PG_CATALOG.PG_GET_EXPR("i"."indpred", "i"."indrelid") IS NULL) '
    'AND n.nspname !~ \'^information_schema|catalog_history|pg_\' AND ("n"."nspname" IN ({schemas}))) AS "tmp" '
    'WHERE "tmp"."pos" = 1'
)

METABASE_FKS = (
    'SELECT "fk_ns"."nspname" AS "fk-table-schema", "fk_table"."relname" AS "fk-table-name", '
    '"fk_column"."attname" AS "fk-column-name", "pk_ns"."nspname" AS "pk-table-schema", '
    '"pk_table"."relname" AS "pk-table-name", "pk_column"."attname" AS "pk-column-name" FROM "pg_constraint" AS "c" '
    'INNER JOIN "pg_class" AS "fk_table" ON "c"."conrelid" = "fk_table"."oid" '
    'INNER JOIN "pg_namespace" AS "fk_ns" ON "c"."connamespace" = "fk_ns"."oid" '
    'INNER JOIN "pg_attribute" AS "fk_column" ON "c"."conrelid" = "fk_column"."attrelid" '
    'INNER JOIN "pg_class" AS "pk_table" ON "c"."confrelid" = "pk_table"."oid" '
    'INNER JOIN "pg_namespace" AS "pk_ns" ON "pk_table"."relnamespace" = "pk_ns"."oid" '
    'INNER JOIN "pg_attribute" AS "pk_column" ON "c"."confrelid" = "pk_column"."attrelid" '
    "WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"contype\" = 'f'::char) "
    'AND ("fk_column"."attnum" = ANY(c.conkey)) AND ("pk_column"."attnum" = ANY(c.confkey)) '
    'AND ("fk_ns"."nspname" IN ({schemas})) ORDER BY "fk-table-schema" ASC, "fk-table-name" ASC'
)


def _run(dsn: str, sql: str) -> tuple[list[str], list[tuple]]:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [d.name for d in cur.description], cur.fetchall()


@pytest.fixture(scope="module")
def postgres_dsn():
    if not POSTGRES_DSN:
        pytest.skip("NORTHSTAR_TEST_POSTGRES_DSN is not set")
    return POSTGRES_DSN


def test_metabase_sync_lists_describes_and_grants(sql_server):
    dsn = sql_server.dsn()
    names, rows = _run(dsn, METABASE_TABLES.format(schemas="'semantic', 'marts'"))
    assert names == ["schema", "name", "type", "description", "estimated_row_count"]
    tables = {(r[0], r[1]): r for r in rows}
    metrics = tables["semantic", "metrics"]
    assert metrics[2] == "TABLE" and metrics[3] and metrics[4] == 0  # the table's comment reaches Metabase
    assert {r[2] for r in rows} == {"TABLE"} and {r[0] for r in rows} == {"semantic", "marts"}

    names, rows = _run(dsn, METABASE_PRIVILEGES)
    assert names == ["role", "schema", "table", "update", "select", "insert", "delete"]
    privileges = {(r[1], r[2]): r[3:] for r in rows}
    # Every served table (and nothing of the catalog database itself) is readable, none writable.
    assert set(privileges) == set(tables)
    assert set(privileges.values()) == {(False, True, False, False)}

    names, rows = _run(dsn, METABASE_FIELDS.format(schemas="'semantic'"))
    fields = {(r[3], r[4], r[0]): r for r in rows}
    active = fields["semantic", "metrics", "active_users"]
    # The type as pg_type names it; the comment found through format('%I.%I', ...)::regclass.
    assert active[1] == "int8" and active[6]
    assert fields["semantic", "metrics", "metric_time__day"][1] == "date"
    assert {r[7] for r in rows} == {False} and {r[8] for r in rows} == {False}
    positions = sorted(r[2] for r in rows if r[4] == "metrics")
    assert positions == list(range(len(positions)))

    assert _run(dsn, METABASE_INDEXES.format(schemas="'semantic'"))[1] == []
    assert _run(dsn, METABASE_FKS.format(schemas="'semantic'"))[1] == []


def test_metabase_sync_answers_with_postgresql_shapes(sql_server, postgres_dsn):
    """The same queries on a real PostgreSQL name the same columns."""
    for query, schemas in (
        (METABASE_TABLES, "'public'"),
        (METABASE_PRIVILEGES, None),
        (METABASE_FIELDS, "'public'"),
        (METABASE_INDEXES, "'public'"),
        (METABASE_FKS, "'public'"),
    ):
        sql = query if schemas is None else query.format(schemas=schemas)
        ours = sql if schemas is None else query.format(schemas="'semantic'")
        assert _run(sql_server.dsn(), ours)[0] == _run(postgres_dsn, sql)[0]


def test_keyword_labels_format_and_expandarray(sql_server, postgres_dsn):
    """What PostgreSQL answers for keyword labels, format() and _pg_expandarray, northstar answers."""
    queries = [
        'SELECT 1 AS select, 2 AS "update", 3 AS Update, 4 AS table',
        "SELECT format('%I.%I', 'semantic', 'Metrics'), format('%s-%L-%%', 'a', 'it''s'), format('%L', NULL), "
        "format('%2$s %1$s', 'a', 'b')",
        "SELECT (information_schema._pg_expandarray(ARRAY[5, 7])).x AS x, "
        "(information_schema._pg_expandarray(ARRAY[5, 7])).n AS n",
        "SELECT 'pg_class'::regclass::oid AS pg_class, 'pg_namespace'::regclass::oid AS pg_namespace",
    ]
    for sql in queries:
        assert _run(sql_server.dsn(), sql) == _run(postgres_dsn, sql), sql


# -- catalog holes DBeaver, JDBC, Power BI (Npgsql) and SQLAlchemy fall into ----------------

# pgjdbc PgDatabaseMetaData.getTypeInfo's query.
PGJDBC_TYPE_INFO = (
    "SELECT t.typname,t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON (t.typnamespace = n.oid) "
    "WHERE n.nspname  != 'pg_toast' AND  (t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_catalog.pg_class c "
    "WHERE c.oid = t.typrelid))"
)
# pgjdbc getTables' remarks join.
PGJDBC_TABLES = (
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, d.description AS REMARKS "
    "FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_description d "
    "ON (c.oid = d.objoid AND d.objsubid = 0  and d.classoid = 'pg_class'::regclass) "
    "WHERE c.relnamespace = n.oid AND n.nspname LIKE 'semantic' AND c.relname LIKE 'metrics'"
)


def test_catalog_relations_and_functions_clients_read(sql_server, postgres_dsn):
    dsn = sql_server.dsn()
    types = dict(_run(dsn, PGJDBC_TYPE_INFO)[1])
    reference = dict(_run(postgres_dsn, PGJDBC_TYPE_INFO)[1])
    # Every type northstar serves, with PostgreSQL's own OID, and their arrays.
    for name in (
        "bool",
        "int8",
        "int4",
        "int2",
        "float8",
        "text",
        "varchar",
        "date",
        "timestamp",
        "numeric",
        "_text",
        "_int8",
        "_int2",
        "_float8",
        "name",
        "oid",
    ):
        assert types[name] == reference[name], name
    assert _run(dsn, PGJDBC_TABLES)[1][0][3], "the table's comment is its REMARKS"

    same = [
        "SELECT rngtypid, rngsubtype, rngmultitypid FROM pg_catalog.pg_range WHERE rngtypid = 0",
        "SELECT pg_catalog.pg_get_function_result(0) AS result",
        "SELECT roleid, member FROM pg_catalog.pg_auth_members WHERE false",
        "SELECT array_to_string(ARRAY['a', NULL, 'b'], ',', '*') AS a, array_to_string(ARRAY['a', 'b'], '/') AS b",
        "SELECT name, statement FROM pg_catalog.pg_cursors",
        "SELECT current_setting('default_table_access_method') AS am",
        "SELECT c.tableoid FROM pg_catalog.pg_class c WHERE c.relname = 'pg_class'",
        "SELECT n.tableoid FROM pg_catalog.pg_namespace n WHERE n.nspname = 'pg_catalog'",
        "SELECT typname, n.nspname, typarray, typelem, typcategory FROM pg_type t JOIN pg_namespace n "
        "ON n.oid = t.typnamespace WHERE typname IN ('text', '_text', 'int8', '_int8', 'float8', 'date', 'bool') "
        "ORDER BY typname",
    ]
    for sql in same:
        assert _run(dsn, sql) == _run(postgres_dsn, sql), sql
    assert _run(dsn, "SHOW default_table_access_method")[1] == [("heap",)]
    assert _run(dsn, "SELECT pg_catalog.pg_table_size('semantic.metrics'::regclass) AS size")[1] == [(0,)]


def test_reloptions_are_text_arrays_for_sqlalchemy_and_pandas(sql_server, postgres_dsn):
    """reloptions is text[] (NULL without options), in text and binary results; SQLAlchemy's
    Table(autoload_with=) and pandas' read_sql_table read the table definition through it."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    pd = pytest.importorskip("pandas")
    sql = "SELECT c.reloptions FROM pg_catalog.pg_class c WHERE c.relname = '{}'"
    with psycopg.connect(postgres_dsn) as conn:
        want = conn.execute(sql.format("pg_class")).description[0].type_code
    for binary in (False, True):
        with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
            cur = conn.cursor(binary=binary)
            cur.execute(sql.format("metrics"))
            assert cur.description[0].type_code == want == 1009
            assert cur.fetchall() == [(None,)]
            cur.execute("SELECT ARRAY['fillfactor=70', 'a b'] AS options, ARRAY[1, 2]::int2[] AS keys")
            assert [d.type_code for d in cur.description] == [1009, 1005]
            assert cur.fetchone() == (["fillfactor=70", "a b"], [1, 2])
    for driver in ("psycopg", "psycopg2"):
        if driver == "psycopg2":
            pytest.importorskip("psycopg2")
        engine = sqlalchemy.create_engine(
            f"postgresql+{driver}://analyst@{sql_server.host}:{sql_server.port}/northstar"
        )
        try:
            table = sqlalchemy.Table("metrics", sqlalchemy.MetaData(), schema="semantic", autoload_with=engine)
            assert {"active_users", "metric_time__month", "platform"} <= set(table.columns.keys())
            assert table.comment
            frame = pd.read_sql_table(
                "metrics", engine, schema="semantic", columns=["metric_time__month", "active_users"]
            )
            assert list(frame.columns) == ["metric_time__month", "active_users"] and len(frame) > 0
        finally:
            engine.dispose()


# pgjdbc getPrimaryKeys (42.2.13 and later), the table named as pgjdbc escapes it.
PGJDBC_PRIMARY_KEYS = (
    "SELECT        result.TABLE_CAT,        result.TABLE_SCHEM,        result.TABLE_NAME,        result.COLUMN_NAME,"
    "        result.KEY_SEQ,        result.PK_NAME FROM      (SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM,"
    "   ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME,   (information_schema._pg_expandarray(i.indkey)).n "
    "AS KEY_SEQ, ci.relname AS PK_NAME,   information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM "
    "FROM pg_catalog.pg_class ct   JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid)   "
    "JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid)   JOIN pg_catalog.pg_index i ON ( a.attrelid = "
    "i.indrelid)   JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true  AND n.nspname = E'{schema}' "
    "AND ct.relname = E'{table}' AND i.indisprimary  ) result where  result.A_ATTNUM = (result.KEYS).x  "
    "ORDER BY result.table_name, result.pk_name, result.key_seq"
)


def test_pgjdbc_primary_keys(sql_server, postgres_dsn):
    names, rows = _run(sql_server.dsn(), PGJDBC_PRIMARY_KEYS.format(schema="semantic", table="metrics"))
    assert rows == []  # the semantic layer has no keys
    assert names == _run(postgres_dsn, PGJDBC_PRIMARY_KEYS.format(schema="pg_catalog", table="pg_class"))[0]


# -- driver-level ---------------------------------------------------------------------------

ANY_SQL = (
    "SELECT metric_time__week, platform, active_users FROM semantic.metrics WHERE platform = ANY({}) "
    "ORDER BY metric_time__week, platform LIMIT 50"
)


def test_array_parameters_bind_like_an_array_literal(sql_server):
    """psycopg 3 binds a list as an array (text or binary, typed or not); the answer is that
    of the same list written as ARRAY[...]."""
    with psycopg.connect(sql_server.dsn(), autocommit=True) as conn:
        want = conn.execute(ANY_SQL.format("ARRAY['ios', 'web']")).fetchall()
        assert want and {r[1] for r in want} == {"ios", "web"}
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            assert cur.execute(ANY_SQL.format("%s"), (["ios", "web"],)).fetchall() == want
            assert cur.execute(ANY_SQL.format("%s::text[]"), (["ios", "web"],)).fetchall() == want


def test_psycopg_named_cursor_reads_in_batches(sql_server):
    """psycopg 3 named cursors (pandas chunksize, SQLAlchemy stream_results): DECLARE, then
    Describe of the cursor as a portal, then FETCH in batches."""
    sql = "SELECT metric_time__week, platform, active_users FROM semantic.metrics ORDER BY 1, 2 LIMIT 30"
    with psycopg.connect(sql_server.dsn()) as conn:
        want = conn.execute(sql).fetchall()
        with conn.cursor(name="weekly") as cur:
            cur.itersize = 7
            cur.execute(sql)
            assert [d.name for d in cur.description] == ["metric_time__week", "platform", "active_users"]
            got = cur.fetchmany(5) + list(cur)
    assert want and got == want
