"""Encode a query result as JSON, CSV, Parquet or Arrow IPC."""

from __future__ import annotations

import csv
import dataclasses
import io

import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
from fastapi import Request
from fastapi.responses import Response

from metrics.engine import QueryResult
from metrics.execution.client import ResultColumn, to_jsonable

MEDIA = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "arrow": "application/vnd.apache.arrow.stream",
}
_ACCEPT = {
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
}


def negotiate(explicit: str | None, request: Request) -> str:
    """`format=` wins; otherwise the first Accept type we can produce; JSON by default."""
    if explicit:
        return explicit
    accept = request.headers.get("accept", "")
    for part in accept.split(","):
        kind = part.split(";")[0].strip().lower()
        if kind in _ACCEPT:
            return _ACCEPT[kind]
    return "json"


def with_completeness(result: QueryResult) -> QueryResult:
    """The result with a boolean `<metric>__complete` column per metric, after all the others."""
    names = result.metric_names
    if not names:
        return result
    columns = result.columns + tuple(ResultColumn(f"{name}__complete", "boolean") for name in names)
    rows = [tuple(row) + tuple(flags) for row, flags in zip(result.rows, result.complete)]
    return dataclasses.replace(result, columns=columns, rows=rows)


def incomplete_json(result: QueryResult) -> list[dict]:
    """`meta.incomplete`: each (bucket, metric) that is not complete, with the reason."""
    return [
        {"bucket": to_jsonable(i.bucket), "metric": i.metric, "reason": i.reason.value, "message": i.message}
        for i in result.incomplete
    ]


def json_rows(result: QueryResult) -> list[list]:
    return [[to_jsonable(v) for v in row] for row in result.rows]


def csv_response(result: QueryResult, filename: str = "query.csv") -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in result.columns])
    for row in result.rows:
        writer.writerow(
            ["" if v is None else ("true" if v else "false") if isinstance(v, bool) else to_jsonable(v) for v in row]
        )
    return Response(
        buffer.getvalue(), media_type=MEDIA["csv"], headers={"Content-Disposition": f'inline; filename="{filename}"'}
    )


def arrow_table(result: QueryResult) -> pa.Table:
    columns = {c.name: [row[i] for row in result.rows] for i, c in enumerate(result.columns)}
    return pa.table(columns)


def binary_response(result: QueryResult, fmt: str) -> Response:
    table = arrow_table(result)
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink)
        filename = "query.parquet"
    else:
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        filename = "query.arrow"
    return Response(
        sink.getvalue(), media_type=MEDIA[fmt], headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )
