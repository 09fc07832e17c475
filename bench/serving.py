"""`northstar serve` in a subprocess for the benchmarks: a free port, ready before use,
stopped after."""

from __future__ import annotations

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
def served(warehouse: Path, *, env: dict[str, str] | None = None, sql_port: int = 0,
           ready_seconds: float = 60) -> Iterator[Served]:
    """Serve `warehouse` on a free HTTP port (no SQL endpoint unless `sql_port`), wait until
    `/readyz` answers, and stop the server on exit."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "northstar", "serve", "--warehouse", str(warehouse),
                                "--port", str(port), "--sql-port", str(sql_port)], cwd=REPO,
                               env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
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
