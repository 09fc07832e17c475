"""A small hand-written semantic manifest (shops: orders -> customers -> regions) for unit
tests of the engine stages, independent of the product's dbt project."""

from __future__ import annotations

from metrics.semantic.manifest import SemanticManifest, parse_semantic_manifest


def _where(*templates: str) -> dict:
    return {"where_filters": [{"where_sql_template": t} for t in templates]}


RAW = {
    "semantic_models": [
        {
            "name": "orders",
            "node_relation": {"alias": "fct_orders", "schema_name": "marts"},
            "defaults": {"agg_time_dimension": "ordered_at"},
            "entities": [
                {"name": "order", "type": "primary", "expr": "order_id"},
                {"name": "customer", "type": "foreign", "expr": "customer_id"},
            ],
            "dimensions": [
                {"name": "ordered_at", "type": "time", "type_params": {"time_granularity": "day"}},
                {"name": "status", "type": "categorical"},
                {"name": "channel", "type": "categorical"},
            ],
            "measures": [
                {"name": "order_total", "agg": "sum", "expr": "amount"},
                {"name": "order_count", "agg": "sum", "expr": "1"},
                {"name": "ordering_customers", "agg": "count_distinct", "expr": "customer_id"},
                {"name": "median_order", "agg": "median", "expr": "amount"},
            ],
        },
        {
            "name": "customers",
            "node_relation": {"alias": "dim_customers", "schema_name": "marts"},
            "defaults": {"agg_time_dimension": "signed_up_at"},
            "entities": [
                {"name": "customer", "type": "primary", "expr": "customer_id"},
                {"name": "region", "type": "foreign", "expr": "region_id"},
            ],
            "dimensions": [
                {"name": "signed_up_at", "type": "time", "type_params": {"time_granularity": "day"}},
                {"name": "country", "type": "categorical"},
                {"name": "channel", "type": "categorical", "expr": "acquisition_channel"},
            ],
            "measures": [{"name": "new_customers", "agg": "sum", "expr": "1"}],
        },
        {
            "name": "regions",
            "node_relation": {"alias": "dim_regions", "schema_name": "marts"},
            "defaults": {},
            "entities": [{"name": "region", "type": "primary", "expr": "region_id"}],
            "dimensions": [{"name": "region_name", "type": "categorical", "expr": "name"}],
            "measures": [],
        },
        {
            "name": "customer_tiers",
            "node_relation": {"alias": "dim_customer_tiers", "schema_name": "marts"},
            "defaults": {},
            "entities": [{"name": "customer", "type": "natural", "expr": "customer_id"}],
            "dimensions": [
                {"name": "tier", "type": "categorical"},
                {
                    "name": "valid_from",
                    "type": "time",
                    "type_params": {"time_granularity": "day", "validity_params": {"is_start": True}},
                },
                {
                    "name": "valid_to",
                    "type": "time",
                    "type_params": {"time_granularity": "day", "validity_params": {"is_end": True}},
                },
            ],
            "measures": [],
        },
        {
            "name": "balances",
            "node_relation": {"alias": "fct_balances", "schema_name": "marts"},
            "defaults": {"agg_time_dimension": "snapshot_date"},
            "entities": [{"name": "customer", "type": "foreign", "expr": "customer_id"}],
            "dimensions": [{"name": "snapshot_date", "type": "time", "type_params": {"time_granularity": "day"}}],
            "measures": [
                {
                    "name": "total_balance",
                    "agg": "sum",
                    "expr": "balance",
                    "non_additive_dimension": {
                        "name": "snapshot_date",
                        "window_choice": "max",
                        "window_groupings": ["customer"],
                    },
                }
            ],
        },
    ],
    "metrics": [
        {
            "name": "revenue",
            "type": "simple",
            "label": "Revenue",
            "description": "sum of amount",
            "type_params": {"measure": {"name": "order_total"}},
        },
        {
            "name": "orders",
            "type": "simple",
            "label": "Orders",
            "description": "count",
            "type_params": {"measure": {"name": "order_count", "fill_nulls_with": 0}},
        },
        {
            "name": "buyers",
            "type": "simple",
            "label": "Buyers",
            "description": "distinct customers",
            "type_params": {"measure": {"name": "ordering_customers"}},
        },
        {
            "name": "new_customers",
            "type": "simple",
            "label": "New customers",
            "description": "signups",
            "type_params": {"measure": {"name": "new_customers"}},
        },
        {
            "name": "aov",
            "type": "ratio",
            "label": "AOV",
            "description": "revenue per order",
            "type_params": {"numerator": {"name": "revenue"}, "denominator": {"name": "orders"}},
        },
        {
            "name": "completed_orders",
            "type": "simple",
            "label": "Completed",
            "description": "",
            "filter": _where("{{ Dimension('order__status') }} = 'completed'"),
            "type_params": {"measure": {"name": "order_count"}},
        },
        {
            "name": "completion_rate",
            "type": "derived",
            "label": "Completion",
            "description": "",
            "type_params": {
                "expr": "completed_orders / orders",
                "metrics": [{"name": "completed_orders"}, {"name": "orders"}],
            },
        },
        {
            "name": "orders_per_new_customer",
            "type": "derived",
            "label": "",
            "description": "",
            "type_params": {
                "expr": "orders / new_customers",
                "metrics": [{"name": "orders"}, {"name": "new_customers"}],
            },
        },
        {
            "name": "revenue_7d",
            "type": "cumulative",
            "label": "Revenue, trailing 7 days",
            "description": "",
            "type_params": {
                "measure": {"name": "order_total"},
                "cumulative_type_params": {"window": {"count": 7, "granularity": "day"}},
            },
        },
        {
            "name": "buyers_7d",
            "type": "cumulative",
            "label": "Buyers, trailing 7 days",
            "description": "",
            "type_params": {
                "measure": {"name": "ordering_customers"},
                "cumulative_type_params": {"window": {"count": 7, "granularity": "days"}},
            },
        },
        {
            "name": "revenue_mtd",
            "type": "cumulative",
            "label": "Revenue, month to date",
            "description": "",
            "type_params": {
                "measure": {"name": "order_total"},
                "cumulative_type_params": {"grain_to_date": "month", "period_agg": "last"},
            },
        },
        {
            "name": "revenue_all_time",
            "type": "cumulative",
            "label": "Revenue, all time",
            "description": "",
            "type_params": {"measure": {"name": "order_total"}},
        },
        {
            "name": "revenue_wow",
            "type": "derived",
            "label": "Revenue change vs a week before",
            "description": "",
            "type_params": {
                "expr": "revenue - revenue_week_ago",
                "metrics": [
                    {"name": "revenue"},
                    {
                        "name": "revenue",
                        "alias": "revenue_week_ago",
                        "offset_window": {"count": 1, "granularity": "week"},
                    },
                ],
            },
        },
        {
            "name": "orders_every_day",
            "type": "simple",
            "label": "Orders (every day)",
            "description": "",
            "type_params": {"measure": {"name": "order_count", "fill_nulls_with": 0, "join_to_timespine": True}},
        },
        {
            "name": "signup_to_order_3d",
            "type": "conversion",
            "label": "Signups ordering within 3 days",
            "description": "",
            "type_params": {
                "conversion_type_params": {
                    "base_measure": {"name": "new_customers"},
                    "conversion_measure": {"name": "ordering_customers"},
                    "entity": "customer",
                    "window": {"count": 3, "granularity": "day"},
                }
            },
        },
        {
            "name": "signup_orders_3d",
            "type": "conversion",
            "label": "Orders within 3 days of signup",
            "description": "",
            "type_params": {
                "conversion_type_params": {
                    "base_measure": {"name": "new_customers"},
                    "conversion_measure": {"name": "order_count"},
                    "entity": "customer",
                    "calculation": "conversions",
                    "window": {"count": 3, "granularity": "day"},
                }
            },
        },
        {
            "name": "balance",
            "type": "simple",
            "label": "Balance",
            "description": "end-of-period balance",
            "type_params": {"measure": {"name": "total_balance"}},
        },
    ],
    "project_configuration": {
        "time_spines": [
            {
                "node_relation": {"alias": "time_spine", "schema_name": "marts"},
                "primary_column": {"name": "date_day", "time_granularity": "day"},
            }
        ]
    },
    "saved_queries": [
        {
            "name": "weekly_revenue",
            "description": "Revenue by week",
            "query_params": {
                "metrics": ["revenue"],
                "group_by": ["TimeDimension('metric_time', 'week')"],
                "where": _where("{{ Dimension('customer__country') }} = 'US'"),
            },
        },
    ],
}


def shop_manifest() -> SemanticManifest:
    return parse_semantic_manifest(RAW)
