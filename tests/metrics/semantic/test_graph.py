from __future__ import annotations

import pytest

from metrics.errors import AmbiguousDimension, UnknownDimension
from metrics.semantic.graph import ItemKind, SemanticGraph
from metrics.semantic.model import Grain
from tests.metrics.manifest_fixture import shop_manifest


@pytest.fixture(scope="module")
def graph() -> SemanticGraph:
    return SemanticGraph(shop_manifest())


def orders_source(graph: SemanticGraph):
    return graph.source_of(graph.measures["order_total"])


def test_local_dimension_by_full_and_short_name(graph):
    source = orders_source(graph)
    full = graph.resolve(source, "order__status", metric="revenue")
    short = graph.resolve(source, "status", metric="revenue")
    assert full == short
    assert full.path == () and full.expr == "status"


def test_one_hop_join_through_foreign_entity(graph):
    item = graph.resolve(graph_source := orders_source(graph), "country", metric="revenue")
    assert item.name == "customer__country"
    assert [step.model for step in item.path] == ["customers"]
    assert graph.resolve(graph_source, "customer__country", metric="revenue") == item


def test_two_hop_join(graph):
    item = graph.resolve(orders_source(graph), "region_name", metric="revenue")
    assert item.name == "customer__region__region_name"
    assert [step.model for step in item.path] == ["customers", "regions"]
    assert graph.resolve(orders_source(graph), "region__region_name", metric="revenue") == item


def test_nearest_candidate_wins_over_a_joined_one(graph):
    # orders.channel (local) and customers.channel (one hop) share a short name.
    item = graph.resolve(orders_source(graph), "channel", metric="revenue")
    assert item.name == "order__channel"
    assert graph.resolve(orders_source(graph), "customer__channel", metric="revenue").expr == "acquisition_channel"


def test_metric_time_grains(graph):
    source = orders_source(graph)
    week = graph.resolve(source, "metric_time__week", metric="revenue")
    assert week.kind is ItemKind.METRIC_TIME and week.grain is Grain.WEEK and week.expr == "ordered_at"
    assert graph.resolve(source, "metric_time", metric="revenue").grain is Grain.DAY
    assert graph.resolve(source, "signed_up_at__month", metric="revenue").name == "customer__signed_up_at__month"


def test_unknown_names_suggest_the_nearest(graph):
    with pytest.raises(UnknownDimension) as info:
        graph.resolve(orders_source(graph), "countri", metric="revenue")
    assert "country" in info.value.message


def test_equally_near_candidates_are_ambiguous():
    from metrics.semantic.manifest import parse_semantic_manifest
    from tests.metrics.manifest_fixture import RAW

    raw = {**RAW, "semantic_models": [dict(m) for m in RAW["semantic_models"]]}
    # Give regions a `country` too: still one hop further than customers.country, so fine...
    raw["semantic_models"][2] = {
        **raw["semantic_models"][2],
        "dimensions": [{"name": "country", "type": "categorical"}],
    }
    # ...but a second entity on orders reaching regions directly makes two one-hop candidates.
    raw["semantic_models"][0] = {
        **raw["semantic_models"][0],
        "entities": [
            *raw["semantic_models"][0]["entities"],
            {"name": "region", "type": "foreign", "expr": "region_id"},
        ],
    }
    graph = SemanticGraph(parse_semantic_manifest(raw))
    with pytest.raises(AmbiguousDimension) as info:
        graph.resolve(graph.source_of(graph.measures["order_total"]), "country", metric="revenue")
    assert info.value.details["candidates"] == ["customer__country", "region__country"]


def test_joins_only_reach_models_where_the_entity_is_unique(graph):
    # From customers, orders are many rows per customer: its dimensions must not be reachable.
    source = graph.source_of(graph.measures["new_customers"])
    with pytest.raises(UnknownDimension) as info:
        graph.resolve(source, "status", metric="new_customers")
    assert "fan out" in info.value.message and "'orders'" in info.value.message
