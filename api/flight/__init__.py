"""Arrow Flight SQL endpoint: the dbt Semantic Layer's `{{ semantic_layer.query(...) }}` statements
(and JDBC-style outer SQL over them) answered by northstar's engine over gRPC."""
