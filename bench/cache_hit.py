"""Cache-hit latency over HTTP beside raw uvicorn's floor, in one run.

The service is started on a build of the sample; each query of bench/run.py is asked once
(the miss) and then `--repeat` times (hits: served as the bytes encoded the first time). In
the same run a bare ASGI app under the same uvicorn answers a static JSON body of the same
size: the floor no route of ours can beat. Both are measured with one keep-alive client,
alternating, so machine noise falls on both.

Usage:
    python bench/cache_hit.py                   # builds the sample into bench/out/ if absent
    python bench/cache_hit.py --repeat 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from run import QUERIES  # bench/ is on sys.path when run as a script
from serving import REPO, free_port, served

OUT = REPO / "bench" / "out"

# A static-JSON ASGI app: the floor is uvicorn + its HTTP parser + one send, nothing else.
FLOOR_APP = """
import os
BODY = b"x" * int(os.environ["FLOOR_BYTES"])
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
"""


def sample_warehouse() -> Path:
    warehouse = OUT / "cache_hit" / "northstar.duckdb"
    if not warehouse.exists():
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "northstar",
                "build",
                "--landing",
                str(REPO / "seeds" / "sample"),
                "--warehouse",
                str(warehouse),
            ],
            cwd=REPO,
            check=True,
        )
    return warehouse


def timed(client: httpx.Client, method: str, url: str, **kwargs) -> float:
    started = time.perf_counter()
    response = client.request(method, url, **kwargs)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    warehouse = sample_warehouse()
    port = free_port()
    floor_dir = OUT / "cache_hit"
    (floor_dir / "floor_app.py").write_text(FLOOR_APP)
    print("| query | body bytes | cache hit p50 ms | uvicorn static JSON p50 ms | hit / floor |")
    print("|---|---|---|---|---|")
    with served(warehouse) as service, httpx.Client(base_url=service.base_url, timeout=30) as client:
        for name, body in QUERIES.items():
            first = client.post("/v1/query", json=body)
            assert first.status_code == 200, first.text
            size = len(first.content)
            floor = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "floor_app:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-server-header",
                ],
                cwd=floor_dir,
                env={**os.environ, "FLOOR_BYTES": str(size)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as raw:
                    deadline = time.monotonic() + 30
                    while True:
                        try:
                            raw.get("/")
                            break
                        except httpx.HTTPError:
                            if time.monotonic() > deadline:
                                raise
                            time.sleep(0.05)
                    hits, floors = [], []
                    for _ in range(args.repeat):
                        hits.append(timed(client, "POST", "/v1/query", json=body))
                        floors.append(timed(raw, "GET", "/"))
                    assert client.post("/v1/query", json=body).json()["meta"]["cached"] is True
            finally:
                floor.terminate()
                floor.wait(timeout=30)
            hit, low = statistics.median(hits) * 1000, statistics.median(floors) * 1000
            print(f"| {name} | {size} | {hit:.2f} | {low:.2f} | {hit / low:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
