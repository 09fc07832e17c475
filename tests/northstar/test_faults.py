"""Faults: a build killed with SIGKILL at any stage never touches what is served, and the next
build succeeds; a published warehouse file that is deleted, truncated or replaced by garbage makes
`/readyz` answer 503 with the cause while `/healthz` stays up, until a good build is published.

Everything runs on a private copy of the session's data directory (its builds and the published
symlink), served by a real `northstar serve`; the session warehouse itself is never touched.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from northstar.build import BUILD_INFO_FILE, WAREHOUSE_FILE, publish
from tests.conftest import REPO, SAMPLE, BuiltWarehouse, Server, northstar

# Fixed seed: the kill delays within each stage are the same on every run.
SEED = 8
QUERY = {"metrics": ["active_users", "sessions"], "group_by": ["platform"], "order_by": ["platform"]}


def copy_data_dir(source: BuiltWarehouse, target: Path) -> Path:
    """The session's builds and published symlink (not its tokens or audit log) in `target`."""
    target.mkdir(parents=True)
    shutil.copytree(
        source.data_dir / "builds", target / "builds", symlinks=True, ignore=shutil.ignore_patterns("failed-*")
    )
    warehouse = target / source.warehouse.name
    os.symlink(os.readlink(source.warehouse), warehouse)  # relative: points into the copy
    return warehouse


@pytest.fixture(scope="module")
def served(built_warehouse: BuiltWarehouse, tmp_path_factory: pytest.TempPathFactory):
    warehouse = copy_data_dir(built_warehouse, tmp_path_factory.mktemp("faults") / "data")
    server = Server(warehouse)
    try:
        server.wait_ready()
        yield warehouse, server
    finally:
        server.stop()


def answer(server: Server) -> list:
    response = httpx.post(server.base_url + "/v1/query", json=QUERY, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def ready(server: Server) -> httpx.Response:
    return httpx.get(server.base_url + "/readyz", timeout=60)


def dbt_children(pid: int) -> list[str]:
    """Command lines of the processes in `pid`'s process group (the build and its dbt runs)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pid:
                continue
            lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ProcessLookupError):
            continue
    return lines


def new_build_dirs(builds: Path, before: set[str]) -> list[Path]:
    return [d for d in builds.iterdir() if d.is_dir() and d.name not in before]


def wait_for(condition, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the build ended before the kill point (exit {proc.returncode})"
        assert time.monotonic() < deadline, "the kill point was never reached"
        time.sleep(0.05)


def duckdb_loaded(pid: int) -> bool:
    try:
        return "_duckdb" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def in_dbt(command: str):
    return lambda pid, new: any(f"cli() {command}" in c for c in dbt_children(pid))


class AfterDocs:
    """dbt docs generate has run and exited: the build is reading dbt's artifacts and is about
    to write build.json and swap the symlink."""

    def __init__(self) -> None:
        self.docs_seen = False

    def __call__(self, pid: int, new: list[Path]) -> bool:
        children = dbt_children(pid)
        self.docs_seen = self.docs_seen or any("cli() docs generate" in c for c in children)
        return self.docs_seen and not any("cli()" in c for c in children)


# Stage -> (how to tell the build is in it, range of the seeded delay before the kill).
STAGES = {
    # DuckDB is loaded for the contract check, and the build directory comes right after it.
    "contract check": (lambda pid, new: not new and duckdb_loaded(pid), (0.0, 0.3)),
    "dbt build": (in_dbt("build"), (1.0, 10.0)),
    "dbt docs generate": (in_dbt("docs generate"), (0.2, 2.0)),
    "before publish": (AfterDocs(), (0.0, 0.0)),
}


def test_a_build_killed_at_any_stage_leaves_the_served_warehouse_intact_and_the_next_one_succeeds(served):
    warehouse, server = served
    builds = warehouse.parent / "builds"
    good_target = os.readlink(warehouse)
    good_build = ready(server).json()["build_id"]
    rows = answer(server)
    rng = random.Random(SEED)

    for stage, (reached, (low, high)) in STAGES.items():
        before = {d.name for d in builds.iterdir()}
        proc = subprocess.Popen(
            [sys.executable, "-m", "northstar", "build", "--landing", str(SAMPLE), "--warehouse", str(warehouse)],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(lambda: reached(proc.pid, new_build_dirs(builds, before)), proc)
            time.sleep(rng.uniform(low, high))
            assert proc.poll() is None, f"the build finished before the kill during {stage}"
            in_stage = reached(proc.pid, new_build_dirs(builds, before))
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the build and its dbt processes, like an OOM kill of the unit
            proc.wait()
        assert in_stage, f"the kill missed the {stage} stage"

        target = os.readlink(warehouse)
        readiness = ready(server)
        assert readiness.status_code == 200, readiness.text
        if stage == "before publish" and target != good_target:
            # The kill landed just after the swap: what is served is then a complete, tested build.
            assert (warehouse.parent / target).parent.joinpath(BUILD_INFO_FILE).exists()
            good_target, good_build = target, readiness.json()["build_id"]
        else:
            assert target == good_target, f"killed during {stage}, the served warehouse moved"
            assert readiness.json()["build_id"] == good_build
        assert answer(server) == rows, f"killed during {stage}, the served answer changed"

    def unfinished() -> list[str]:
        return [
            d.name
            for d in builds.iterdir()
            if d.is_dir() and not d.name.startswith("failed-") and not (d / BUILD_INFO_FILE).exists()
        ]

    assert len(unfinished()) >= 3  # the killed builds' directories, with their partial warehouses
    result = northstar("build", "--landing", str(SAMPLE), "--warehouse", str(warehouse))
    assert result.returncode == 0
    assert unfinished() == []  # the next build clears what the killed ones left behind
    assert os.readlink(warehouse) != good_target
    readiness = ready(server)
    assert readiness.status_code == 200 and readiness.json()["build_id"] != good_build
    assert answer(server) == rows  # same landing data, same answer, from the new build


def break_by_truncating(warehouse: Path) -> None:
    real = Path(os.path.realpath(warehouse))
    os.truncate(real, real.stat().st_size // 2)


def break_by_deleting(warehouse: Path) -> None:
    Path(os.path.realpath(warehouse)).unlink()


def break_by_pointing_at_garbage(warehouse: Path) -> None:
    garbage = warehouse.parent / "garbage"
    garbage.mkdir(exist_ok=True)
    (garbage / WAREHOUSE_FILE).write_bytes(random.Random(SEED).randbytes(300_000))
    shutil.copy2(Path(os.path.realpath(warehouse)).parent / "semantic_manifest.json", garbage)
    publish(garbage / WAREHOUSE_FILE, warehouse)


def break_by_pointing_nowhere(warehouse: Path) -> None:
    publish(warehouse.parent / "builds" / "no-such-build" / WAREHOUSE_FILE, warehouse)


@pytest.mark.parametrize(
    "damage, cause",
    [
        (break_by_truncating, "no longer opens"),
        (break_by_deleting, "is gone"),
        (break_by_pointing_at_garbage, "cannot be opened"),
        (break_by_pointing_nowhere, "cannot be opened"),
    ],
    ids=["truncated", "deleted", "garbage", "dangling"],
)
def test_a_broken_published_warehouse_fails_readiness_with_the_cause_then_recovers(served, damage, cause):
    warehouse, server = served
    assert ready(server).status_code == 200
    # A pristine copy of the served build, to publish again afterwards as a new build would be.
    served_dir = Path(os.path.realpath(warehouse)).parent
    spare = warehouse.parent / "builds" / f"{served_dir.name}-{damage.__name__}"
    shutil.copytree(served_dir, spare)

    damage(warehouse)
    for _ in range(5):  # every probe answers promptly with the cause; the server keeps running
        started = time.monotonic()
        readiness = ready(server)
        assert readiness.status_code == 503, readiness.text
        body = readiness.json()
        assert body["status"] == "unavailable" and body["error"]["code"] == "warehouse_unavailable"
        assert cause in body["error"]["message"] and "northstar build" in body["error"]["message"]
        assert time.monotonic() - started < 30
        assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
    assert server.proc.poll() is None

    publish(spare / WAREHOUSE_FILE, warehouse)
    readiness = ready(server)
    assert readiness.status_code == 200, readiness.text
    assert readiness.json()["warning"] is None
    answer(server)
