"""What the dbt Semantic Layer APIs (GraphQL in `api/graphql`, Arrow Flight SQL in
`api/flight`) share: their query parameters as engine queries, their catalog objects, and one
service that authenticates, limits, audits and answers them exactly as `POST /v1/query` does."""
