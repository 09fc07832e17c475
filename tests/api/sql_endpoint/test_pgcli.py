"""pgcli's own completion metadata (its PGExecute queries, run by its CompletionRefresher into
its PGCompleter) against the SQL endpoint: schemas, tables, columns with their types, views,
functions and data types load, and completing a query suggests the served names."""

from __future__ import annotations

import pytest

pytest.importorskip("pgcli")

from pgcli.completion_refresher import CompletionRefresher  # noqa: E402
from pgcli.pgcompleter import PGCompleter  # noqa: E402
from pgcli.pgexecute import PGExecute  # noqa: E402
from prompt_toolkit.document import Document  # noqa: E402

from tests.api.sql_endpoint.sql_servers import SqlServer, sql_server  # noqa: E402,F401


def _completions(completer: PGCompleter, text: str) -> list[str]:
    """What pgcli suggests with the cursor at `|` (or at the end)."""
    cursor = text.index("|") if "|" in text else len(text)
    document = Document(text=text.replace("|", ""), cursor_position=cursor)
    return [c.text for c in completer.get_completions(document, None)]


def test_pgcli_loads_its_completion_metadata_and_completes(sql_server: SqlServer, api):
    executor = PGExecute(
        database="northstar", user="analyst", password=None, host=sql_server.host, port=sql_server.port, dsn=None
    )
    try:
        assert {"semantic", "marts"} <= set(executor.schemata())
        assert ("semantic", "metrics") in set(executor.tables())
        # The views are the catalog's, each in its schema (pgcli completes them by schema).
        assert {schema for schema, _ in executor.views()} <= {"pg_catalog", "information_schema"}
        # `kinds` is bound as a list (relkind = ANY(%s)); the types are pg_type names.
        columns = {(s, t, c): type_name for s, t, c, type_name, *_ in executor.table_columns()}
        assert columns["semantic", "metrics", "active_users"] == "bigint"
        assert columns["semantic", "metrics", "metric_time__day"] == "date"
        assert columns["semantic", "metrics", "platform"] == "text"
        assert list(executor.functions()) == [] and list(executor.datatypes()) == []  # none served

        completer = PGCompleter(smart_completion=True, settings={"keyword_casing": "lower"})
        for refresh in CompletionRefresher().refreshers.values():  # every one of pgcli's loaders
            refresh(completer, executor)
    finally:
        executor.conn.close()
    assert "metrics" in _completions(completer, "SELECT * FROM semantic.")
    assert "dim_accounts" in _completions(completer, "SELECT * FROM marts.dim_")
    assert _completions(completer, "SELECT active_| FROM semantic.metrics")[:1] == ["active_users"]
