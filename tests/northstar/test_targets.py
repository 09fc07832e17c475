"""The warehouse targets of a build (northstar/targets.py): each engine's target has every
method of the `WarehouseTarget` protocol, and a build's settings are checked before anything
is built."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from northstar.build import build
from northstar.errors import BuildFailed
from northstar.targets import (
    DEFAULT_SPARK_MASTER,
    DuckDBTarget,
    NewBuild,
    PostgresTarget,
    SparkTarget,
    WarehouseTarget,
    target_type,
)
from tests.conftest import REPO, SAMPLE

PROTOCOL = {
    name for name, member in vars(WarehouseTarget).items() if inspect.isfunction(member) and not name.startswith("_")
}


@pytest.mark.parametrize("cls", [DuckDBTarget, PostgresTarget, SparkTarget], ids=lambda c: c.__name__)
def test_each_target_has_every_method_of_the_protocol(cls):
    missing = {name for name in PROTOCOL if not callable(getattr(cls, name, None))}
    assert not missing, missing


def test_the_target_type_makes_each_engines_target(tmp_path: Path):
    new = NewBuild(tmp_path / "b", "20260101T000000Z-abcdef", tmp_path)
    assert isinstance(target_type("duckdb")(new), DuckDBTarget)
    postgres = target_type("postgres", postgres_dsn="postgresql://u:p@h:5432/d")(new)
    assert isinstance(postgres, PostgresTarget) and postgres.postgres_dsn == "postgresql://u:p@h:5432/d"
    spark = target_type("spark")(new)
    assert isinstance(spark, SparkTarget) and spark.master == DEFAULT_SPARK_MASTER
    assert target_type("spark", spark_master="local[1]")(new).master == "local[1]"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"warehouse_type": "oracle"}, "unknown warehouse type 'oracle'"),
        ({"warehouse_type": "postgres"}, "needs NORTHSTAR_POSTGRES_DSN"),
    ],
)
def test_bad_settings_are_refused_before_a_build_directory_exists(kwargs, words, tmp_path: Path):
    with pytest.raises(BuildFailed) as info:
        build(SAMPLE, tmp_path / "warehouse", REPO / "dbt_project", **kwargs)
    assert words in info.value.message
    assert not (tmp_path / "builds").exists()
