"""The experiment tables a Spark build writes equal the readouts its API serves, row for row.

Marked slow (a dbt-spark build of the sample takes minutes); skipped without pyspark,
dbt-spark or Java, like the other Spark suites.
"""

from __future__ import annotations

import os

import pytest

from tests.api.test_experiment_design import assert_tables_equal_api

pytestmark = pytest.mark.slow


def test_written_tables_equal_the_api_readouts_on_spark(spark_api):
    from metrics.execution.spark import SparkClient

    client = SparkClient(os.path.realpath(spark_api.warehouse))
    marts = client.schemas["marts"]

    def fetch(sql):
        result = client.query(sql.replace("marts.", f"`{marts}`."))
        names = [c.name for c in result.columns]
        return [dict(zip(names, row)) for row in result.rows]

    try:
        assert_tables_equal_api(spark_api, fetch)
    finally:
        client.close()
