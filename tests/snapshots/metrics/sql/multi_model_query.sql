WITH q0 AS (
  SELECT
    g0,
    g1,
    SUM(v0) AS m0,
    SUM(v1) AS m1
  FROM (
    SELECT
      CAST(DATE_TRUNC('MONTH', t0.ordered_at) AS DATE) AS g0,
      t1.country AS g1,
      t0.amount AS v0,
      1 AS v1
    FROM "marts"."fct_orders" AS t0
    LEFT JOIN "marts"."dim_customers" AS t1
      ON t0.customer_id = t1.customer_id
    LEFT JOIN "marts"."dim_regions" AS t2
      ON t1.region_id = t2.region_id
    WHERE
      t0.ordered_at >= CAST('2026-01-01 00:00:00' AS TIMESTAMP)
      AND t0.ordered_at < CAST('2026-02-01 00:00:00' AS TIMESTAMP)
      AND t2.name = 'North'
  ) AS r
  GROUP BY
    g0,
    g1
), q1 AS (
  SELECT
    g0,
    g1,
    SUM(v0) AS m0
  FROM (
    SELECT
      CAST(DATE_TRUNC('MONTH', t0.signed_up_at) AS DATE) AS g0,
      t0.country AS g1,
      1 AS v0
    FROM "marts"."dim_customers" AS t0
    LEFT JOIN "marts"."dim_regions" AS t1
      ON t0.region_id = t1.region_id
    WHERE
      t0.signed_up_at >= CAST('2026-01-01 00:00:00' AS TIMESTAMP)
      AND t0.signed_up_at < CAST('2026-02-01 00:00:00' AS TIMESTAMP)
      AND t1.name = 'North'
  ) AS r
  GROUP BY
    g0,
    g1
), keys AS (
  SELECT
    g0,
    g1
  FROM q0
  UNION
  SELECT
    g0,
    g1
  FROM q1
)
SELECT
  keys.g0 AS "metric_time__month",
  keys.g1 AS "country",
  CAST(q0.m0 AS DOUBLE) / NULLIF(COALESCE(q0.m1, 0), 0) AS "aov",
  q1.m0 AS "new_customers"
FROM keys
LEFT JOIN q0
  ON keys.g0 IS NOT DISTINCT FROM q0.g0 AND keys.g1 IS NOT DISTINCT FROM q0.g1
LEFT JOIN q1
  ON keys.g0 IS NOT DISTINCT FROM q1.g0 AND keys.g1 IS NOT DISTINCT FROM q1.g1
ORDER BY
  1 ASC,
  2 ASC
