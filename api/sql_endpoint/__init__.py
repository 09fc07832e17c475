"""The PostgreSQL-wire SQL endpoint: `protocol` (message codec, SCRAM), `server` (asyncio
server started by `northstar serve`), `catalog` (session statements and introspection) and
`semantic_sql` (SELECTs over the semantic layer as engine queries)."""
