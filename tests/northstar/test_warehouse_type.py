"""Choosing the warehouse: NORTHSTAR_WAREHOUSE_TYPE (or --warehouse-type), and
NORTHSTAR_WAREHOUSE=postgres read as the type rather than as a file called `postgres`."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings


@pytest.fixture(autouse=True)
def _no_warehouse_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NORTHSTAR_WAREHOUSE", "NORTHSTAR_WAREHOUSE_TYPE", "NORTHSTAR_POSTGRES_DSN", "NORTHSTAR_SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)


def test_default_is_duckdb(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.warehouse_type == "duckdb"
    assert settings.warehouse_path == tmp_path / "northstar.duckdb"


def test_type_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE_TYPE", "postgres")
    monkeypatch.setenv("NORTHSTAR_POSTGRES_DSN", "postgresql://u:secret@db:5432/analytics")
    settings = Settings(data_dir=tmp_path)
    assert settings.warehouse_type == "postgres"
    assert settings.warehouse_path == tmp_path / "northstar.postgres"
    assert settings.postgres_dsn_text == "postgresql://u:secret@db:5432/analytics"
    assert "secret" not in repr(settings)


def test_warehouse_postgres_means_the_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", "postgres")
    settings = Settings(data_dir=tmp_path)
    assert (settings.warehouse_type, settings.warehouse_path) == ("postgres", tmp_path / "northstar.postgres")


def test_a_path_stays_a_path(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, warehouse=tmp_path / "postgres")
    assert settings.warehouse_type == "duckdb" and settings.warehouse_path == tmp_path / "postgres"


def test_spark_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NORTHSTAR_WAREHOUSE", "spark")
    settings = Settings(data_dir=tmp_path)
    assert (settings.warehouse_type, settings.warehouse_path) == ("spark", tmp_path / "northstar.spark")
    assert settings.spark_master == "local[2]"
    monkeypatch.setenv("NORTHSTAR_SPARK_MASTER", "spark://spark-master:7077")
    assert Settings(data_dir=tmp_path).spark_master == "spark://spark-master:7077"


def test_unknown_type_names_the_choices() -> None:
    with pytest.raises(ValidationError, match="'duckdb', 'postgres' or 'spark'"):
        Settings(warehouse_type="oracle")
