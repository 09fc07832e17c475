"""Settings for every northstar command, from flags, `NORTHSTAR_*` environment variables or
defaults that work from a fresh clone (the committed sample, a local `data/` folder)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NORTHSTAR_", extra="ignore")

    data_dir: Path = REPO_ROOT / "data"
    warehouse: Path | None = None  # defaults to <data_dir>/northstar.duckdb (.postgres, .spark)
    # Where dbt builds and queries run (README "Scaling out"). NORTHSTAR_WAREHOUSE stays the
    # published path; NORTHSTAR_WAREHOUSE=postgres (or duckdb, spark) is read as the type, not a path.
    warehouse_type: Literal["duckdb", "postgres", "spark"] = "duckdb"
    postgres_dsn: SecretStr | None = None  # postgresql://user:pass@host:port/db
    spark_master: str = "local[2]"  # a Spark build's (and server's) master: local[N], spark://host:7077, ...
    landing: Path = REPO_ROOT / "seeds" / "sample"
    dbt_project: Path = REPO_ROOT / "dbt_project"
    host: str = "127.0.0.1"
    port: int = 8000
    keep_builds: int = 3
    query_cache_size: int = 1024
    # PostgreSQL-wire SQL endpoint (api/sql_endpoint); 0 turns it off.
    sql_port: int = 5433
    # auto: API tokens as passwords once any exists (SCRAM as the token's name, else the token
    # in cleartext), open (trust) before; with sql_password, SCRAM against it.
    sql_auth: Literal["auto", "trust", "cleartext", "scram"] = "auto"
    # One password for every SQL user, overriding the tokens (plain text or, better, a
    # PostgreSQL SCRAM verifier `SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>`).
    sql_password: SecretStr | None = None
    # The SQL endpoint's own bounds (README "Security"): a bigger statement is refused (54000),
    # a client not logged in within the timeout is disconnected, at most sql_workers
    # statements run at once (others wait), a catalog query may use catalog_memory_limit.
    max_statement_bytes: int = 1_048_576
    sql_login_timeout_s: float = 10.0
    sql_workers: int = 8
    catalog_memory_limit: str = "256MB"
    # Arrow Flight SQL endpoint of the dbt Semantic Layer APIs (api/flight); 0 turns it off.
    # Plaintext on loopback; TLS (a PEM certificate and key) is required on other interfaces.
    flight_port: int = 8815
    flight_tls_cert: Path | None = None
    flight_tls_key: Path | None = None

    # Security (see README "Security"). A data directory that never had an API token is served
    # openly, on loopback only unless allow_open; once tokens exist, only `open` (serve --open)
    # serves it without them (and off loopback it needs allow_open as well).
    open: bool = False
    allow_open: bool = False
    max_concurrent_per_token: int = 8
    query_timeout_s: float = 30.0
    max_result_rows: int = 1_000_000  # a larger answer is refused: narrow the query
    # What the DuckDB warehouse's queries may hold in memory together (a DuckDB size) and the
    # threads they share (0: one per core); a query past the memory limit fails, others go on.
    query_memory_limit: str = "4GB"
    query_threads: int = 0
    max_rows_per_response: int = 100_000  # larger answers come in pages (`offset`)
    max_body_bytes: int = 1_048_576
    mcp_max_rows: int = 200  # rows one MCP tool answer carries (a model's context is small)
    # Host names the HTTP service answers for, comma-separated (`*`: any). An open service
    # (no token) answers loopback names and these only: a DNS-rebinding guard (api/guards.py).
    allowed_hosts: str = ""
    audit_log: Path | None = None  # defaults to <data_dir>/audit.jsonl
    audit_log_max_bytes: int = 10 * 1024 * 1024  # rotated beyond: audit.jsonl.1 ... .N
    audit_log_files: int = 5  # rotated files kept besides the current one

    # Notifications (northstar/notify): subscriptions in <dbt_project>/northstar.yml unless set.
    notify_config: Path | None = None
    notify_max_attempts: int = 4  # per delivery and run; a failed one is retried by the next run
    notify_backoff_s: float = 0.5  # doubled after each failed attempt
    notify_interval_s: float = 300.0  # `serve --notify`: how often it evaluates
    public_url: str | None = None  # links in messages; default http://<host>:<port>

    @property
    def notify_config_path(self) -> Path:
        return self.notify_config or self.dbt_project / "northstar.yml"

    @property
    def public_base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    @property
    def allowed_host_names(self) -> list[str]:
        return [h.strip() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.data_dir / "audit.jsonl"

    @model_validator(mode="after")
    def _warehouse_type_given_as_warehouse(self) -> Settings:
        if self.warehouse is not None and str(self.warehouse) in ("duckdb", "postgres", "spark"):
            self.warehouse_type, self.warehouse = str(self.warehouse), None  # type: ignore[assignment]
        return self

    @property
    def warehouse_path(self) -> Path:
        return self.warehouse or self.data_dir / f"northstar.{self.warehouse_type}"

    @property
    def postgres_dsn_text(self) -> str | None:
        return self.postgres_dsn.get_secret_value() if self.postgres_dsn else None


@lru_cache
def get_settings() -> Settings:
    return Settings()
