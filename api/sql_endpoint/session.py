"""A connection's session: the server's identity, the parameters it reports at startup and SHOW
answers, the settings a client SETs, the transaction status, and the utility statements (SET,
RESET, SHOW, BEGIN/COMMIT/ROLLBACK, DISCARD, ...), answered here without running any query.

The catalog reads the same parameters (pg_settings, current_setting()), so they are defined
once, here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from api.sql_endpoint import protocol
from api.sql_endpoint.statements import SUPPORTED, SqlError, first_word, strip_comments

SERVER_VERSION = "16.0 (northstar)"
DATABASE = "northstar"
DEFAULT_SCHEMA = "semantic"
VERSION_STRING = f"PostgreSQL {SERVER_VERSION} on x86_64-pc-linux-gnu, served by northstar (read-only semantic layer)"

# Parameters a PostgreSQL server reports to every client at startup (ParameterStatus).
REPORTED = {
    "server_version": SERVER_VERSION,
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "TimeZone": "UTC",
    "IntervalStyle": "postgres",
    "is_superuser": "off",
    "session_authorization": "northstar",
    "application_name": "",
}
# What SHOW answers besides the reported parameters; names are case-insensitive.
SHOWN = {
    "transaction_isolation": "read committed",
    "transaction isolation level": "read committed",
    "default_transaction_isolation": "read committed",
    "transaction_read_only": "on",
    "default_transaction_read_only": "on",
    "search_path": DEFAULT_SCHEMA,
    "max_identifier_length": "63",
    "lc_collate": "C",
    "lc_ctype": "C",
    "max_index_keys": "32",
    "extra_float_digits": "3",
    "statement_timeout": "0",
    "server_version_num": "160000",
    "ssl": "off",
    "timezone": "UTC",
    "datestyle": "ISO, MDY",
    "default_table_access_method": "heap",
}


@dataclass
class Session:
    """Per-connection state: settings and the transaction status letter."""

    user: str
    process_id: int
    settings: dict[str, str] = field(default_factory=dict)
    status: str = "I"  # I idle, T in transaction, E failed transaction

    def get(self, name: str) -> str | None:
        key = name.lower()
        for k, v in self.settings.items():
            if k.lower() == key:
                return v
        for table in (REPORTED, SHOWN):
            for k, v in table.items():
                if k.lower() == key:
                    return v
        if key in ("session_authorization", "user", "current_user"):
            return self.user
        return None


@dataclass(frozen=True)
class UtilityResult:
    tag: str
    columns: tuple[protocol.Column, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()
    parameter_status: tuple[tuple[str, str], ...] = ()


def run_utility(sql: str, session: Session) -> UtilityResult:
    """SET, RESET, SHOW, transaction control, DISCARD and friends, answered locally."""
    word = first_word(sql)
    text = " ".join(strip_comments(sql).split())
    lowered = text.lower()
    if word == "show":
        name = text[5:].strip().strip('"')
        if name.lower() == "all":
            rows = sorted({**{k: v for k, v in {**REPORTED, **SHOWN}.items()}, **session.settings}.items())
            cols = (
                protocol.Column("name", protocol.TEXT),
                protocol.Column("setting", protocol.TEXT),
                protocol.Column("description", protocol.TEXT),
            )
            return UtilityResult("SHOW", cols, tuple((k, v, "") for k, v in rows))
        if name.lower() == "time zone":
            name = "TimeZone"
        value = session.get(name)
        if value is None:
            raise SqlError("42704", f'unrecognized configuration parameter "{name}"')
        column = name.split()[-1] if name.lower() == "transaction isolation level" else name
        return UtilityResult("SHOW", (protocol.Column(column.lower(), protocol.TEXT),), ((value,),))
    if word == "set":
        return _set(text, session)
    if word == "reset":
        name = text[6:].strip().strip('"')
        if name.lower() == "all":
            session.settings.clear()
        else:
            session.settings.pop(name, None)
        return UtilityResult("RESET")
    if word in ("begin", "start"):
        if session.status == "I":
            session.status = "T"
        return UtilityResult("BEGIN" if word == "begin" else "START TRANSACTION")
    if word in ("commit", "end"):
        tag = "ROLLBACK" if session.status == "E" else "COMMIT"
        session.status = "I"
        return UtilityResult(tag)
    if word in ("rollback", "abort"):
        if lowered.startswith("rollback to"):
            if session.status == "E":
                session.status = "T"
            return UtilityResult("ROLLBACK")
        session.status = "I"
        return UtilityResult("ROLLBACK")
    if word == "savepoint":
        return UtilityResult("SAVEPOINT")
    if word == "release":
        return UtilityResult("RELEASE")
    if word == "discard":
        if lowered == "discard all":
            session.settings.clear()
        return UtilityResult(text.upper())
    if word == "deallocate":
        return UtilityResult("DEALLOCATE ALL" if lowered.endswith(" all") else "DEALLOCATE")
    if word == "close":
        return UtilityResult("CLOSE CURSOR ALL" if lowered.endswith(" all") else "CLOSE CURSOR")
    if word in ("listen", "unlisten"):
        return UtilityResult(word.upper())
    raise SqlError("0A000", f"{word.upper()} is not supported", hint=SUPPORTED)


_SET_RE = re.compile(r"set\s+(?:session\s+|local\s+)?(?P<name>[\w.\"]+)\s*(?:=|\s+to\s+)\s*(?P<value>.*)$", re.I | re.S)


def _set(text: str, session: Session) -> UtilityResult:
    lowered = text.lower()
    if lowered.startswith(("set session characteristics", "set transaction")):
        return UtilityResult("SET")
    match = re.match(r"set\s+(?:session\s+|local\s+)?time\s+zone\s+(?P<value>.*)$", text, re.I | re.S)
    if match:
        name, value = "TimeZone", match.group("value")
    else:
        match = _SET_RE.match(text)
        if not match:
            raise SqlError(
                "42601", f"cannot read the SET statement: {text}", hint="use SET name = value or SET name TO value"
            )
        name, value = match.group("name").strip('"'), match.group("value")
    values = [v.strip() for v in value.split(",")]
    value = ", ".join(v[1:-1].replace("''", "'") if len(v) >= 2 and v[0] == v[-1] == "'" else v for v in values)
    if value.lower() == "default":
        session.settings.pop(name, None)
        value = session.get(name) or ""
    else:
        session.settings[name] = value
    # Accepted and reported back; answers stay in UTC (timestamps are sent without a zone).
    reported = [k for k in REPORTED if k.lower() == name.lower()]
    return UtilityResult("SET", parameter_status=tuple((k, value) for k in reported))
