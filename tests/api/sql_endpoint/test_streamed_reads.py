"""Server-side cursors as pandas and SQLAlchemy use them, on psycopg 3 and psycopg2: SQLAlchemy's
`stream_results` (a named cursor read in partitions) and `pd.read_sql(..., chunksize=)` over it;
the rows, in their batches, are /v1/query's."""

from __future__ import annotations

import pytest

sqlalchemy = pytest.importorskip("sqlalchemy")
pd = pytest.importorskip("pandas")

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: E402,F401
from tests.api.sql_endpoint.test_clients import http_rows  # noqa: E402

QUERY = (
    "SELECT metric_time__week, platform, sessions FROM semantic.metrics "
    "WHERE metric_time__week >= '2026-01-05' ORDER BY 1, 2"
)
HTTP = {
    "metrics": ["sessions"],
    "group_by": ["metric_time__week", "platform"],
    "start": "2026-01-05",
    "order_by": ["metric_time__week", "platform"],
}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_stream_results_and_pandas_chunks(sql_server: SqlServer, api, driver):
    pytest.importorskip(driver)
    want = http_rows(api, HTTP)
    engine = sqlalchemy.create_engine(f"postgresql+{driver}://analyst@{sql_server.host}:{sql_server.port}/northstar")
    try:
        with engine.connect().execution_options(stream_results=True, max_row_buffer=5) as conn:
            partitions = list(conn.execute(sqlalchemy.text(QUERY)).partitions(5))
            assert [len(p) for p in partitions] == [5] * (len(want) // 5) + ([len(want) % 5] if len(want) % 5 else [])
            assert [tuple(row) for p in partitions for row in p] == want

            chunks = list(pd.read_sql(sqlalchemy.text(QUERY), conn, chunksize=7))
        assert len(chunks) == -(-len(want) // 7) and all(len(c) == 7 for c in chunks[:-1])
        frame = pd.concat(chunks, ignore_index=True)
        assert [(d, p, int(n)) for d, p, n in frame.itertuples(index=False)] == want
    finally:
        engine.dispose()
