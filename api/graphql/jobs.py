"""Asynchronous queries of the GraphQL API: `createQuery` starts one and returns its id at once;
`query(queryId, pageNum)` reports its status and, once it succeeded, a page of its rows.

Answers are kept per query id for a bounded time (`ttl_s`) and in a bounded store (at most
`max_queries` queries and `max_rows` rows in all; the oldest go first). A query belongs to the
token that created it: another token asking for it is told it does not exist.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pyarrow as pa

from metrics.errors import MetricsError, NotFound

PAGE_ROWS = 1024
log = logging.getLogger("northstar.graphql")


@dataclass
class QueryJob:
    id: str
    owner: str | None
    status: str = "PENDING"  # PENDING, RUNNING, COMPILED, SUCCESSFUL, FAILED
    sql: str | None = None
    error: str | None = None
    table: pa.Table | None = None
    created: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def total_pages(self) -> int | None:
        if self.table is None:
            return None
        return max(1, -(-self.table.num_rows // PAGE_ROWS))

    def page(self, number: int) -> pa.Table:
        assert self.table is not None
        if number < 1 or number > (self.total_pages or 1):
            raise NotFound(
                f"query {self.id} has {self.total_pages} page(s) of up to {PAGE_ROWS} rows; "
                f"page {number} does not exist."
            )
        return self.table.slice((number - 1) * PAGE_ROWS, PAGE_ROWS)


class QueryJobs:
    def __init__(
        self, workers: int = 4, ttl_s: float = 900.0, max_queries: int = 1000, max_rows: int = 5_000_000
    ) -> None:
        self.ttl_s = ttl_s
        self.max_queries = max_queries
        self.max_rows = max_rows
        self._jobs: OrderedDict[str, QueryJob] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graphql-query")

    def submit(self, owner: str | None, compile_sql: Callable[[], str], run: Callable[[], pa.Table]) -> QueryJob:
        job = QueryJob(secrets.token_hex(16), owner)
        with self._lock:
            self._jobs[job.id] = job
            self._evict()
        self._pool.submit(self._run, job, compile_sql, run)
        return job

    def _run(self, job: QueryJob, compile_sql: Callable[[], str], run: Callable[[], pa.Table]) -> None:
        job.status = "RUNNING"
        try:
            job.sql = compile_sql()
            job.status = "COMPILED"
            table = run()
        except MetricsError as exc:
            job.error, job.status = exc.message, "FAILED"
            job.done.set()
            return
        except Exception:  # a bug: the client is told (not left polling), the log has the details
            log.exception("graphql query %s failed", job.id)
            job.error, job.status = (
                (f"the service could not answer this query (an internal error); quote query id {job.id}."),
                "FAILED",
            )
            job.done.set()
            return
        with self._lock:
            job.table, job.status = table, "SUCCESSFUL"
            self._evict()
        job.done.set()

    def get(self, owner: str | None, query_id: str) -> QueryJob:
        with self._lock:
            self._evict()
            job = self._jobs.get(query_id)
        if job is None or job.owner != owner:
            raise NotFound(
                f"no query with id {query_id!r}: it never existed, belongs to another token, or its "
                f"answer expired (answers are kept {self.ttl_s:g} s); create it again."
            )
        return job

    def wait(self, owner: str | None, query_id: str, seconds: float) -> QueryJob:
        """The job once it has finished, or after `seconds` (a long poll: clients that poll
        with a back-off get a fast answer without polling faster)."""
        job = self.get(owner, query_id)
        job.done.wait(seconds)
        return job

    def cancel(self, owner: str | None, query_id: str) -> QueryJob:
        job = self.get(owner, query_id)
        with self._lock:
            self._jobs.pop(query_id, None)
        return job

    def _evict(self) -> None:
        """Drop expired answers, then the oldest until the store is within its bounds."""
        now = time.monotonic()
        for job_id in [j.id for j in self._jobs.values() if now - j.created > self.ttl_s]:
            del self._jobs[job_id]
        rows = sum(j.table.num_rows for j in self._jobs.values() if j.table is not None)
        while self._jobs and (len(self._jobs) > self.max_queries or rows > self.max_rows):
            _, oldest = self._jobs.popitem(last=False)
            rows -= oldest.table.num_rows if oldest.table is not None else 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
