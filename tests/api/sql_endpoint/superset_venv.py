"""A virtualenv with `apache-superset` installed, for the tests that run Superset's own code.

Superset pins versions that conflict with this project's (Flask, SQLAlchemy, pandas...), so it
lives in a venv of its own, built once per machine under a cache directory keyed by the pinned
versions and reused by later runs (a cold install takes minutes, a warm one nothing).
`cachetools` and `flask-caching==2.3.1` are pinned because Superset 6.1 does not start without
them (`superset.utils.cache_manager` imports both, and flask-caching 2.4+ drops an API it uses).

Run as a script to build the venv ahead of the tests (CI does, to keep the build out of the test
timings): `python -m tests.api.sql_endpoint.superset_venv`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PINNED = (
    "apache-superset==6.1.0",
    "flask-caching==2.3.1",
    "cachetools==5.5.2",
    "psycopg2-binary==2.9.10",
)


def cache_root() -> Path:
    base = os.environ.get("NORTHSTAR_TEST_CACHE") or Path.home() / ".cache" / "northstar-test"
    return Path(base)


def venv_dir() -> Path:
    # Keyed by the pins and the interpreter: a change of either builds a new venv beside the old.
    key = hashlib.sha256("\n".join((*PINNED, sys.version)).encode()).hexdigest()[:12]
    return cache_root() / f"superset-venv-{key}"


def venv_python() -> Path:
    return venv_dir() / "bin" / "python"


def ensure_superset_venv() -> Path:
    """The venv's interpreter, building the venv first if no complete one is cached.

    Raises `subprocess.CalledProcessError` if the install fails: a failed install is a test
    failure, never a skip.
    """
    target = venv_dir()
    done_marker = target / ".northstar-complete"
    if done_marker.exists():
        return venv_python()
    # Build beside the target and rename at the end, so a build cut short never looks complete.
    building = target.with_name(target.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    pip = [str(building / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip", "setuptools", "wheel"], check=True)
    subprocess.run([*pip, "install", *PINNED], check=True)
    (building / ".northstar-complete").write_text("\n".join(PINNED) + "\n")
    if target.exists():
        shutil.rmtree(target)
    # The tests only run its bin/python (a link to the base interpreter, which finds the venv's
    # site-packages from its own place), so the scripts' stale shebangs do not matter.
    building.rename(target)
    return venv_python()


if __name__ == "__main__":
    started = time.monotonic()
    python = ensure_superset_venv()
    print(f"{python} ready in {time.monotonic() - started:.0f} s")
