"""Statements as a PostgreSQL client sends them, read before anything is parsed: a Query
message split into its statements, each statement's leading keyword (which tells a session
statement from a refused write or a query), and the lexical fixes sqlglot needs to parse what
PostgreSQL accepts. Also the error the endpoint answers a client with (`SqlError`) and the hint
naming what it serves.

The server reads every statement with these before it knows whether it is a semantic, marts or
catalog query, so they depend on nothing else in the endpoint.
"""

from __future__ import annotations

import re

import sqlglot

UTILITY_WORDS = {
    "set",
    "reset",
    "show",
    "begin",
    "start",
    "commit",
    "end",
    "rollback",
    "abort",
    "discard",
    "deallocate",
    "close",
    "listen",
    "unlisten",
    "savepoint",
    "release",
    "prepare",
}
WRITE_WORDS = {
    "insert",
    "update",
    "delete",
    "merge",
    "create",
    "drop",
    "alter",
    "truncate",
    "grant",
    "revoke",
    "comment",
    "vacuum",
    "analyze",
    "refresh",
    "reindex",
    "cluster",
    "lock",
    "call",
    "do",
    "import",
}
QUERY_WORDS = {"select", "with", "values", "table", "("}

SUPPORTED = (
    "northstar answers read-only SELECTs over semantic.metrics (and the per-group tables) and "
    "marts.*, plus catalog introspection (pg_catalog, information_schema) and SET/SHOW/BEGIN/COMMIT"
)


class SqlError(Exception):
    """An error for the client, with its SQLSTATE (and the 1-based position in the statement
    it is about, when known)."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint
        self.position = position


def split_statements(sql: str) -> list[str]:
    """Splits a Query message on top-level semicolons (not inside quotes, dollar quotes or
    comments); blank statements are dropped.

    >>> split_statements("select 1; select ';' as x ; -- c;\\n")
    ['select 1', "select ';' as x"]
    >>> split_statements("select $$a;b$$; select 2")
    ['select $$a;b$$', 'select 2']
    """
    out: list[str] = []
    start = i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == "'" or c == '"':
            i = _skip_quoted(sql, i, c)
            continue
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
            continue
        if c == "/" and sql.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if sql.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif sql.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            continue
        if c == "$":
            match = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", sql[i:])
            if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = match.group(0)
                end = sql.find(tag, i + len(tag))
                i = n if end < 0 else end + len(tag)
                continue
        if c == ";":
            out.append(sql[start:i])
            start = i + 1
        i += 1
    out.append(sql[start:])
    return [s.strip() for s in out if strip_comments(s).strip()]


_ALIAS_ENDS = {"COMMA", "FROM", "R_PAREN", "SEMICOLON"}

# PostgreSQL's types whose values are OIDs: casts to them become numbers in catalog queries,
# and an array of one of them is written by its array type's name (underscore_array_types).
OID_TYPES = {
    "regclass",
    "regtype",
    "regproc",
    "regprocedure",
    "regnamespace",
    "regrole",
    "regoper",
    "oid",
    "xid",
    "cid",
    "tid",
    "regconfig",
    "regdictionary",
}


def quote_keyword_aliases(sql: str) -> str:
    """PostgreSQL takes any keyword as a column label after AS (`... AS select,`, as
    Metabase's privilege query writes it); sqlglot does not, so such labels are quoted
    (lower-cased, the name PostgreSQL gives them).

    >>> quote_keyword_aliases("select 1 as select, 2 AS Update from t")
    'select 1 as "select", 2 AS "update" from t'
    >>> quote_keyword_aliases("select 'as select,' as x")
    "select 'as select,' as x"
    """
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(sql)
    except sqlglot.errors.TokenError:
        return sql
    edits: list[tuple[int, int, str]] = []
    for before, token, after in zip(tokens, tokens[1:], [*tokens[2:], None]):
        if before.token_type != TokenType.ALIAS or token.token_type in (TokenType.VAR, TokenType.IDENTIFIER):
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", token.text) or sql[token.start : token.end + 1] != token.text:
            continue
        if after is None or after.token_type.name in _ALIAS_ENDS:
            edits.append((token.start, token.end + 1, f'"{token.text.lower()}"'))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


def underscore_array_types(sql: str) -> str:
    """`x::regtype[]` as `x::_regtype`, PostgreSQL's own name of the array type: sqlglot cannot
    read an array of a type it does not know (pgcli's function query casts to regtype[]).

    >>> underscore_array_types("select proargtypes::regtype[]::text[], '::regtype[]' from pg_proc")
    "select proargtypes::_regtype::text[], '::regtype[]' from pg_proc"
    """
    from sqlglot.tokens import TokenType

    try:
        tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(sql)
    except sqlglot.errors.TokenError:
        return sql
    edits: list[tuple[int, int, str]] = []
    for cast, name, opening, closing in zip(tokens, tokens[1:], tokens[2:], tokens[3:]):
        if (
            cast.token_type == TokenType.DCOLON
            and name.text.lower() in OID_TYPES
            and opening.token_type == TokenType.L_BRACKET
            and closing.token_type == TokenType.R_BRACKET
        ):
            edits.append((name.start, closing.end + 1, f"_{name.text.lower()}"))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end:]
    return sql


def _skip_quoted(sql: str, i: int, quote: str) -> int:
    backslashes = quote == "'" and i > 0 and sql[i - 1] in "eE"
    i += 1
    while i < len(sql):
        if backslashes and sql[i] == "\\":
            i += 2
            continue
        if sql[i] == quote:
            if sql.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return i


def strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)


def first_word(sql: str) -> str:
    """The statement's leading keyword, lower-cased.

    >>> first_word("  /* x */ SELECT 1"), first_word("(select 1)"), first_word("show all")
    ('select', '(', 'show')
    """
    text = strip_comments(sql).lstrip()
    if text.startswith("("):
        return "("
    match = re.match(r"[A-Za-z_]+", text)
    return match.group(0).lower() if match else ""
