"""Settings for every northstar command, from flags, `NORTHSTAR_*` environment variables or
defaults that work from a fresh clone (the committed sample, a local `data/` folder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NORTHSTAR_", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    warehouse: Path | None = None  # defaults to <data_dir>/northstar.duckdb
    landing: Path = REPO_ROOT / "seeds" / "sample"
    dbt_project: Path = REPO_ROOT / "dbt_project"
    host: str = "127.0.0.1"
    port: int = 8000
    keep_builds: int = 3
    query_cache_size: int = 1024

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse or self.data_dir / "northstar.duckdb"


@lru_cache
def get_settings() -> Settings:
    return Settings()
