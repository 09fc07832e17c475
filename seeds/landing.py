"""Landing contract schemas and the Arrow/Parquet plumbing of the generator.

The helpers here turn numpy arrays into Arrow columns without going through
Python objects (ids, decimals, dictionary look-ups), which is what keeps the
generator fast at tens of millions of rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TS = pa.timestamp("us")
REVENUE = pa.decimal128(18, 2)


def _f(name: str, typ: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


#: The landing contract: one schema per table. Columns the contract does not
#: mark nullable are declared non-nullable, so Parquet stores them REQUIRED.
SCHEMAS: dict[str, pa.Schema] = {
    "accounts": pa.schema(
        [
            _f("account_id", pa.string()),
            _f("account_name", pa.string()),
            _f("plan", pa.string()),
            _f("industry", pa.string(), True),
            _f("region", pa.string()),
            _f("created_at", TS),
        ]
    ),
    "users": pa.schema(
        [
            _f("user_id", pa.string()),
            _f("account_id", pa.string()),
            _f("signup_at", TS),
            _f("country", pa.string(), True),
            _f("is_internal", pa.bool_()),
        ]
    ),
    "events": pa.schema(
        [
            _f("event_id", pa.string()),
            _f("user_id", pa.string()),
            _f("session_id", pa.string()),
            _f("event_name", pa.string()),
            _f("event_ts", TS),
            _f("platform", pa.string()),
            _f("app_version", pa.string(), True),
            _f("feature_key", pa.string(), True),
            _f("revenue_usd", REVENUE, True),
        ]
    ),
    "releases": pa.schema(
        [
            _f("platform", pa.string()),
            _f("app_version", pa.string()),
            _f("released_at", TS),
        ]
    ),
    "launches": pa.schema(
        [
            _f("launch_id", pa.string()),
            _f("feature_key", pa.string()),
            _f("launch_name", pa.string()),
            _f("tier", pa.string()),
            _f("owner_team", pa.string()),
            _f("launched_at", TS),
        ]
    ),
    "experiments": pa.schema(
        [
            _f("experiment_id", pa.string()),
            _f("experiment_name", pa.string()),
            _f("feature_key", pa.string(), True),
            _f("hypothesis", pa.string(), True),
            _f("control_variant", pa.string()),
            _f("started_at", TS),
            _f("ended_at", TS, True),
        ]
    ),
    "experiment_assignments": pa.schema(
        [
            _f("experiment_id", pa.string()),
            _f("user_id", pa.string()),
            _f("variant", pa.string()),
            _f("assigned_at", TS),
        ]
    ),
    "errors": pa.schema(
        [
            _f("error_id", pa.string()),
            _f("user_id", pa.string(), True),
            _f("session_id", pa.string(), True),
            _f("occurred_at", TS),
            _f("platform", pa.string()),
            _f("app_version", pa.string(), True),
            _f("severity", pa.string()),
            _f("error_type", pa.string()),
        ]
    ),
    "incidents": pa.schema(
        [
            _f("incident_id", pa.string()),
            _f("severity", pa.string()),
            _f("opened_at", TS),
            _f("resolved_at", TS, True),
            _f("feature_key", pa.string(), True),
            _f("launch_id", pa.string(), True),
        ]
    ),
    "support_tickets": pa.schema(
        [
            _f("ticket_id", pa.string()),
            _f("account_id", pa.string()),
            _f("user_id", pa.string(), True),
            _f("created_at", TS),
            _f("resolved_at", TS, True),
            _f("category", pa.string()),
            _f("priority", pa.string()),
            _f("feature_key", pa.string(), True),
        ]
    ),
    "feedback": pa.schema(
        [
            _f("feedback_id", pa.string()),
            _f("user_id", pa.string()),
            _f("submitted_at", TS),
            _f("channel", pa.string()),
            _f("nps_score", pa.int32(), True),
            _f("csat_score", pa.int32(), True),
            _f("comment", pa.string(), True),
            _f("feature_key", pa.string(), True),
        ]
    ),
}

#: Tables written as a single ``<table>.parquet`` file (everything but events).
FILE_TABLES: tuple[str, ...] = tuple(t for t in SCHEMAS if t != "events")
EVENTS_DIR = "events"
PARQUET_OPTIONS = {"compression": "zstd"}
#: Unique ids gain nothing from dictionary encoding and only cost write time.
_NO_DICTIONARY = {"event_id", "error_id", "ticket_id", "feedback_id"}


def _parquet_options(schema: pa.Schema) -> dict[str, object]:
    return {**PARQUET_OPTIONS, "use_dictionary": [n for n in schema.names if n not in _NO_DICTIONARY]}


# --------------------------------------------------------------------------- ids

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection on uint64 that scrambles counters.

    Being a bijection, distinct counters give distinct ids, so ids look random
    but can never collide.
    """
    z = x.astype(np.uint64, copy=True)
    z += np.uint64(0x9E3779B97F4A7C15)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def salt(seed: int, kind: str) -> np.uint64:
    """A per-seed, per-id-kind constant XORed into counters before mixing."""
    h = np.uint64(seed & 0xFFFFFFFF) << np.uint64(32)
    for ch in kind.encode():
        h = mix64(np.array([h ^ np.uint64(ch)], dtype=np.uint64))[0]
    return h


def _fixed_width_strings(chars: np.ndarray) -> pa.Array:
    """Build a string array from an ``(n, width)`` uint8 matrix of ASCII bytes."""
    n, width = chars.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(
            pa.string(),
            n,
            [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(np.ascontiguousarray(chars).reshape(-1))],
        )
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars).reshape(-1))]
    ).cast(pa.string())


def hex_ids(prefix: str, counters: np.ndarray, id_salt: np.uint64) -> pa.Array:
    """Ids like ``evt_3f9c0a...``: prefix + 16 hex digits of a scrambled counter.

    Args:
        prefix: Literal prefix, e.g. ``"evt_"``.
        counters: Distinct non-negative integers (a running counter).
        id_salt: Per-seed constant from :func:`salt`.
    """
    x = mix64(counters.astype(np.uint64) ^ id_salt)
    # Big-endian bytes, then one hex digit per nibble (most significant first).
    octets = x.astype(">u8").view(np.uint8).reshape(len(x), 8)
    p = np.frombuffer(prefix.encode(), dtype=np.uint8)
    chars = np.empty((len(x), len(p) + 16), dtype=np.uint8)
    chars[:, : len(p)] = p
    chars[:, len(p) :: 2] = _HEX[octets >> 4]
    chars[:, len(p) + 1 :: 2] = _HEX[octets & 0xF]
    return _fixed_width_strings(chars)


def seq_ids(prefix: str, n: int, width: int) -> pa.Array:
    """Sequential readable ids like ``usr_000042`` (1-based)."""
    return pa.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], pa.string())


# ----------------------------------------------------------------------- columns


def take(dictionary: pa.Array, codes: np.ndarray) -> pa.Array:
    """Dictionary look-up: ``dictionary[codes]`` with ``code < 0`` meaning null."""
    codes = np.asarray(codes)
    mask = codes < 0
    idx = pa.array(np.where(mask, 0, codes).astype(np.int32), pa.int32(), mask=mask if mask.any() else None)
    return dictionary.take(idx)


def strings(values: list[str] | tuple[str, ...]) -> pa.Array:
    """A small string dictionary for :func:`take`."""
    return pa.array(list(values), pa.string())


def timestamps(us: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Microseconds since the epoch to ``timestamp[us]`` (naive UTC)."""
    arr = np.asarray(us, dtype=np.int64).astype("datetime64[us]")
    if valid is None:
        return pa.array(arr, TS)
    return pa.array(arr, TS, mask=~valid)


def decimal_cents(cents: np.ndarray, valid: np.ndarray) -> pa.Array:
    """Integer cents to ``decimal128(18, 2)`` by writing the 128-bit words directly.

    A decimal128 value is its unscaled integer as a little-endian two's
    complement 128-bit number, so cents go in the low word and their sign
    extension in the high word.
    """
    n = len(cents)
    words = np.empty((n, 2), dtype=np.int64)
    words[:, 0] = np.where(valid, cents, 0)
    words[:, 1] = words[:, 0] >> 63
    null_count = int(n - np.count_nonzero(valid))
    validity = pa.py_buffer(np.packbits(valid, bitorder="little")) if null_count else None
    return pa.Array.from_buffers(REVENUE, n, [validity, pa.py_buffer(words.reshape(-1))], null_count=null_count)


def int32s(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Nullable int32 column."""
    return pa.array(np.asarray(values, dtype=np.int32), pa.int32(), mask=None if valid is None else ~valid)


def table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """Assemble a contract table, checking column names and order."""
    schema = SCHEMAS[name]
    if list(columns) != schema.names:
        raise ValueError(f"{name}: columns {list(columns)} != contract {schema.names}")
    return pa.Table.from_arrays(list(columns.values()), schema=schema)


class TableSink:
    """Writes one contract table to a single Parquet file, a row group at a time.

    Rows are buffered up to ``flush_rows`` so that the file does not end up
    with thousands of tiny row groups, while memory stays bounded.
    """

    def __init__(self, path: Path, name: str, flush_rows: int = 500_000) -> None:
        self.name = name
        self.rows = 0
        self._flush_rows = flush_rows
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._writer = pq.ParquetWriter(path, SCHEMAS[name], **_parquet_options(SCHEMAS[name]))

    def write(self, tbl: pa.Table) -> None:
        """Append rows (a table with the contract schema)."""
        if tbl.num_rows == 0:
            return
        self._buffer.append(tbl)
        self._buffered += tbl.num_rows
        self.rows += tbl.num_rows
        if self._buffered >= self._flush_rows:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write_table(pa.concat_tables(self._buffer))
            self._buffer, self._buffered = [], 0

    def close(self) -> None:
        """Flush and close the file (an empty table still gets a valid file)."""
        self._flush()
        self._writer.close()


def write_table(path: Path, tbl: pa.Table) -> None:
    """Write a whole table to one Parquet file."""
    pq.write_table(tbl, path, **_parquet_options(tbl.schema))
