"""The corpus dbt projects, each built once per test session by the real
`northstar build --dbt-project` and shared by every test that reads it."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from tests.conftest import northstar

CORPUS = Path(__file__).parent
PROJECTS = ("marketplace", "saas", "funnel")

_root: Path | None = None
_built: dict[str, Path] = {}


def corpus_warehouse(name: str) -> Path:
    """The published warehouse path of project `name`, built on first use."""
    global _root
    if name not in _built:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="northstar-corpus-"))
            atexit.register(shutil.rmtree, _root, True)
        warehouse = _root / name / f"{name}.duckdb"
        warehouse.parent.mkdir(parents=True)
        northstar("build", "--dbt-project", str(CORPUS / name), "--warehouse", str(warehouse), "--no-docs")
        _built[name] = warehouse
    return _built[name]
