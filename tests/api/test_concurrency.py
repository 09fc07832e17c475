"""The real service under concurrent load answers every query, and answers it right.

A pool of distinct metric queries is drawn from the catalog and answered one at a time first;
those answers are the reference. Then 1, 8 and 32 clients (threads, each with its own
`httpx.Client`) send queries from the pool for a few seconds each: half of the requests repeat
a query exactly (answered from the service's cache once it has seen them), the other half
carry a `limit` no other request uses (same rows, but a fresh cache key, so the SQL runs again
on the warehouse while the other clients' queries do). Every response must be a 200 with the
reference columns and rows.

Throughput per client count is printed (`pytest -s`); it is informative only, nothing asserts
on timing.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

CLIENT_COUNTS = (1, 8, 32)
SECONDS = {1: 2.0, 8: 3.0, 32: 5.0}  # about 10 s of load in all
POOL_SIZE = 120
GRAINS = ("day", "week", "month", "quarter", "year")
# Where the sample's metric time lies: ranges mostly over the event data, some wider.
RANGES = [
    (None, None),
    ("2026-01-05", "2026-04-05"),
    ("2026-02-01", "2026-03-01"),
    ("2026-01-12", "2026-01-19"),
    ("2026-03-08T02:00:00", "2026-03-20T17:30:00"),
    ("2025-01-01", None),
    (None, "2026-02-15"),
]
UNIQUE_LIMITS = itertools.count(10_000_000)  # far above any row count: the limit never cuts


def same_value(got: Any, expected: Any) -> bool:
    if isinstance(expected, float) or isinstance(got, float):
        if got is None or expected is None:
            return got is expected
        return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12)
    return got == expected


def rows_differ(got: list[list[Any]], expected: list[list[Any]]) -> str | None:
    """None when the rows match (in order; floats to 1e-9), else what differs first."""
    if len(got) != len(expected):
        return f"{len(got)} rows, expected {len(expected)}"
    for index, (g, e) in enumerate(zip(got, expected)):
        if len(g) != len(e) or not all(same_value(a, b) for a, b in zip(g, e)):
            return f"row {index}: {g}, expected {e}"
    return None


def query_pool(client: httpx.Client, size: int, seed: int = 20260308) -> list[dict[str, Any]]:
    """Distinct valid query bodies over the catalog's metrics, slices and filter values."""
    rng = random.Random(seed)
    catalog = {m["name"]: m for m in client.get("/v1/metrics").json()["metrics"]}
    plain = sorted(n for n, m in catalog.items() if m["type"] in ("simple", "ratio"))
    names = sorted(catalog)
    categorical = {d["name"] for d in client.get("/v1/dimensions").json()["dimensions"] if d["kind"] == "categorical"}
    values: dict[str, list[Any]] = {}

    def values_of(dimension: str) -> list[Any]:
        if dimension not in values:
            metric = next((m for m in plain if dimension in catalog[m]["dimensions"]), None)
            if metric is None:
                return []
            response = client.post("/v1/query", json={"metrics": [metric], "group_by": [dimension]})
            assert response.status_code == 200, response.text
            values[dimension] = sorted({row[0] for row in response.json()["rows"] if row[0] is not None})
        return values[dimension]

    bodies: dict[str, dict[str, Any]] = {}
    while len(bodies) < size:
        metrics = rng.sample(names, rng.choice((1, 1, 2, 3)))
        dims = set(catalog[metrics[0]]["dimensions"])
        for name in metrics[1:]:
            dims &= set(catalog[name]["dimensions"])
        slices = sorted(dims & categorical)
        group_by = rng.sample(slices, min(len(slices), rng.choice((0, 1, 1, 2))))
        # Metrics other than simple and ratio ones (derived, cumulative, conversion) may need
        # metric time; every query of them gets it.
        if rng.random() < 0.8 or not all(m in plain for m in metrics):
            group_by.insert(rng.randrange(len(group_by) + 1), f"metric_time__{rng.choice(GRAINS)}")
        body: dict[str, Any] = {"metrics": metrics, "group_by": group_by}
        start, end = rng.choice(RANGES)
        if start:
            body["start"] = start
        if end:
            body["end"] = end
        if slices and rng.random() < 0.4:
            dimension = rng.choice(slices)
            present = values_of(dimension)
            if present:
                body["where"] = [
                    {
                        "field": dimension,
                        "op": "in",
                        "values": rng.sample(present, min(len(present), rng.randint(1, 3))),
                    }
                ]
        if rng.random() < 0.15:
            body["timezone"] = rng.choice(["Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"])
        if rng.random() < 0.15:
            body["week_start"] = "sunday"
        bodies.setdefault(repr(sorted(body.items(), key=str)), body)
    return list(bodies.values())


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: int = 0
    uncached: int = 0
    computed: int = 0  # answers the service reports as not from its cache
    failures: list[str] = field(default_factory=list)

    def add(self, uncached: bool, computed: bool, failure: str | None) -> None:
        with self.lock:
            self.requests += 1
            self.uncached += uncached
            self.computed += computed
            if failure is not None and len(self.failures) < 20:
                self.failures.append(failure)


def load(
    base_url: str, pool: list[tuple[dict[str, Any], dict[str, Any]]], clients: int, seconds: float
) -> tuple[Tally, float]:
    """`clients` threads querying the pool until `seconds` have passed; every answer checked."""
    tally = Tally()
    barrier = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client_loop(index: int) -> None:
        rng = random.Random(index)
        with httpx.Client(base_url=base_url, timeout=120) as client:
            barrier.wait()
            while time.monotonic() < deadline[0]:
                body, expected = rng.choice(pool)
                uncached = rng.random() < 0.5
                if uncached:
                    body = {**body, "limit": next(UNIQUE_LIMITS)}
                failure, computed = None, False
                try:
                    response = client.post("/v1/query", json=body)
                    if response.status_code != 200:
                        failure = f"{body}: HTTP {response.status_code} {response.text[:300]}"
                    else:
                        got = response.json()
                        computed = got.get("meta", {}).get("cached") is False
                        if got["columns"] != expected["columns"]:
                            failure = f"{body}: columns {got['columns']}, expected {expected['columns']}"
                        elif (why := rows_differ(got["rows"], expected["rows"])) is not None:
                            failure = f"{body}: {why}"
                except httpx.HTTPError as exc:
                    failure = f"{body}: {type(exc).__name__}: {exc}"
                tally.add(uncached, computed, failure)

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    deadline.append(time.monotonic() + seconds)
    started = time.perf_counter()
    barrier.wait()
    for thread in threads:
        thread.join(timeout=seconds + 180)
    elapsed = time.perf_counter() - started
    assert not any(t.is_alive() for t in threads), "a client hung"
    return tally, elapsed


def test_concurrent_clients_get_the_sequential_answers(api):
    # The reference: each distinct query answered alone, one after another.
    pool = []
    for body in query_pool(api.client, POOL_SIZE):
        response = api.client.post("/v1/query", json=body)
        assert response.status_code == 200, (body, response.text)
        answer = response.json()
        pool.append((body, {"columns": answer["columns"], "rows": answer["rows"]}))
    assert sum(1 for _, expected in pool if expected["rows"]) > POOL_SIZE // 2, "most pool queries should have rows"

    report = []
    for clients in CLIENT_COUNTS:
        tally, elapsed = load(api.base_url, pool, clients, SECONDS[clients])
        assert not tally.failures, f"{clients} clients: {len(tally.failures)}+ bad answers:\n" + "\n".join(
            tally.failures
        )
        assert tally.requests >= clients, f"{clients} clients sent only {tally.requests} requests"
        report.append(
            f"{clients} client{'s' if clients > 1 else ''}: {tally.requests / elapsed:.1f} req/s "
            f"({tally.requests} requests, {tally.uncached} with a fresh limit, "
            f"{tally.computed} not from cache, {elapsed:.1f} s)"
        )
    print("\nthroughput over HTTP, all answers checked: " + "; ".join(report))
