"""The state table: every notification northstar decided to send, with its delivery status.

A SQLite file in the data directory (`notifications.sqlite`, 0600). The idempotency key of a
notification is derived from its destination, subject and state, so the same news is one row
however many builds or runs see it; a row that is `sent` is never sent again, a `failed` one is
retried by the next run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_FILE = "notifications.sqlite"

_SCHEMA = """
create table if not exists notifications (
    key text primary key,
    destination text not null,
    subscription text not null,
    kind text not null,
    subject text not null,
    state text not null,
    build_id text,
    title text not null,
    created_at text not null,
    status text not null,          -- pending | sent | failed
    attempts integer not null default 0,
    last_error text,
    http_status integer,
    sent_at text,
    body text not null
)
"""


@dataclass(frozen=True)
class Delivery:
    key: str
    destination: str
    subscription: str
    kind: str
    subject: str
    state: str
    build_id: str | None
    title: str
    created_at: str
    status: str
    attempts: int
    last_error: str | None
    http_status: int | None
    sent_at: str | None
    body: str


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class StateStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, data_dir: Path) -> StateStore:
        return cls(Path(data_dir) / STATE_FILE)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists()
        con = sqlite3.connect(self.path, timeout=30)
        if fresh:
            os.chmod(self.path, 0o600)
        con.execute(_SCHEMA)
        return con

    def get(self, key: str) -> Delivery | None:
        with self._lock, self._connect() as con:
            row = con.execute(f"select {_COLUMNS} from notifications where key = ?", (key,)).fetchone()
        return Delivery(*row) if row else None

    def record(
        self,
        key: str,
        destination: str,
        subscription: str,
        kind: str,
        subject: str,
        state: str,
        build_id: str | None,
        title: str,
        body: str,
    ) -> Delivery:
        """The row of `key`, inserted as pending if it is new."""
        with self._lock, self._connect() as con:
            con.execute(
                "insert or ignore into notifications (key, destination, subscription, kind, subject, state, "
                "build_id, title, created_at, status, body) values (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (key, destination, subscription, kind, subject, state, build_id, title, now(), body),
            )
            row = con.execute(f"select {_COLUMNS} from notifications where key = ?", (key,)).fetchone()
        return Delivery(*row)

    def finish(self, key: str, status: str, attempts: int, error: str | None, http_status: int | None) -> None:
        with self._lock, self._connect() as con:
            con.execute(
                "update notifications set status = ?, attempts = attempts + ?, last_error = ?, "
                "http_status = ?, sent_at = case when ? = 'sent' then ? else sent_at end where key = ?",
                (status, attempts, error, http_status, status, now(), key),
            )

    def list(self, limit: int = 100, status: str | None = None, destination: str | None = None) -> list[Delivery]:
        if not self.path.exists():
            return []
        where, params = [], []
        if status:
            where.append("status = ?")
            params.append(status)
        if destination:
            where.append("destination = ?")
            params.append(destination)
        sql = (
            f"select {_COLUMNS} from notifications"
            + (" where " + " and ".join(where) if where else "")
            + " order by created_at desc, key limit ?"
        )
        with self._lock, self._connect() as con:
            return [Delivery(*row) for row in con.execute(sql, (*params, limit)).fetchall()]


_COLUMNS = (
    "key, destination, subscription, kind, subject, state, build_id, title, created_at, status, attempts, "
    "last_error, http_status, sent_at, body"
)


def body_of(delivery: Delivery) -> dict[str, Any]:
    return json.loads(delivery.body)
