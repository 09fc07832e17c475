"""A tiny shop warehouse in a real DuckDB file, for engine tests that need to run SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from metrics.engine import BuildInfo, MetricsEngine
from metrics.execution.client import DuckDBClient
from tests.metrics.manifest_fixture import shop_manifest

SHOP_SQL = """
create schema marts;
create table marts.time_spine as
    select cast(range as date) as date_day from range(date '2025-12-01', date '2026-04-01', interval 1 day);
create table marts.fct_balances as select * from (values
    ('c1', date '2026-01-05', 100.0), ('c1', date '2026-01-20', 150.0), ('c1', date '2026-02-03', 90.0),
    ('c2', date '2026-01-06', 10.0),  ('c2', date '2026-01-31', 30.0),
    ('c3', date '2026-02-01', 70.0),  ('c3', date '2026-02-10', 75.0)
) t(customer_id, snapshot_date, balance);
create table marts.dim_customer_tiers as select * from (values
    ('c1', 'bronze', timestamp '2025-01-01', timestamp '2026-01-06'),
    ('c1', 'gold',   timestamp '2026-01-06', NULL),
    ('c2', 'silver', timestamp '2025-06-01', NULL)
) t(customer_id, tier, valid_from, valid_to);
create table marts.dim_regions as select * from (values ('r1', 'North'), ('r2', 'South')) t(region_id, name);
create table marts.dim_customers as select * from (values
    ('c1', 'US', 'ads',    timestamp '2026-01-05 10:00', 'r1'),
    ('c2', 'DE', 'search', timestamp '2026-01-06 11:00', 'r2'),
    ('c3', 'US', 'ads',    timestamp '2026-01-20 09:00', 'r2'),
    ('c4', NULL, 'ads',    timestamp '2026-01-21 09:00', 'r1'),
    ('c5', 'O''Brien', 'ads', timestamp '2026-01-22 09:00', 'r1')
) t(customer_id, country, acquisition_channel, signed_up_at, region_id);
create table marts.fct_orders as select * from (values
    ('o1', 'c1', timestamp '2026-01-05 12:00', 'completed', 'web', 10.0),
    ('o2', 'c1', timestamp '2026-01-06 12:00', 'returned',  'web', 20.0),
    ('o3', 'c2', timestamp '2026-01-11 23:59', 'completed', 'app', 30.0),
    ('o4', 'c2', timestamp '2026-01-12 00:00', 'completed', 'app', 40.0),
    ('o5', 'c3', timestamp '2026-01-20 10:00', 'completed', 'web', 50.0),
    ('o6', 'c4', timestamp '2026-01-27 10:00', 'pending',   'web', 60.0),
    ('o7', 'c5', timestamp '2026-01-28 10:00', 'completed', 'web', 70.0)
) t(order_id, customer_id, ordered_at, status, channel, amount);
"""


@pytest.fixture(scope="session")
def shop_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("shop") / "shop.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SHOP_SQL)
    con.close()
    return path


@pytest.fixture(scope="session")
def shop_engine(shop_warehouse: Path):
    engine = MetricsEngine(
        shop_manifest(), DuckDBClient(shop_warehouse), BuildInfo("test", None, True, shop_warehouse.parent)
    )
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def shop_db(shop_warehouse: Path):
    """An independent read-only connection for hand-written expected values."""
    con = duckdb.connect(str(shop_warehouse), read_only=True)
    yield con
    con.close()
