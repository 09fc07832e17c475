"""`northstar serve` in a subprocess for the benchmarks: a free port, ready before use,
stopped after."""

from __future__ import annotations

import datetime
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Served:
    process: subprocess.Popen
    base_url: str


@contextmanager
def served(
    warehouse: Path, *, env: dict[str, str] | None = None, sql_port: int = 0, ready_seconds: float = 60
) -> Iterator[Served]:
    """Serve `warehouse` on a free HTTP port (no SQL endpoint unless `sql_port`), wait until
    `/readyz` answers, and stop the server on exit."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "northstar",
            "serve",
            "--warehouse",
            str(warehouse),
            "--port",
            str(port),
            "--sql-port",
            str(sql_port),
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_seconds
        while True:
            try:
                if httpx.get(base_url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"northstar serve --warehouse {warehouse} did not become ready")
            time.sleep(0.1)
        yield Served(process, base_url)
    finally:
        process.terminate()
        process.wait(timeout=30)


def uncached_seconds(client: httpx.Client, body: dict, i: int) -> float:
    """Seconds for one metric query the result cache cannot answer: `end` is moved back by
    `i + 1` seconds from a date after the data, so each i is a new query with the same rows."""
    end = datetime.datetime(2030, 1, 1) - datetime.timedelta(seconds=i + 1)
    started = time.perf_counter()
    response = client.post("/v1/query", json={**body, "end": end.isoformat()})
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["cached"] is False
    return seconds
