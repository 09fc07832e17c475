"""The MCP server: the semantic layer as tools an AI assistant can call.

`northstar mcp` serves it over stdio (the token from NORTHSTAR_TOKEN); `northstar serve` mounts
its streamable-HTTP transport at `/mcp` (a bearer token per request). Both go through the same
token store, scopes, row policies, concurrency limits, guardrails and audit log as the HTTP API
(`api/mcp/gate.py`). Tool names and argument shapes follow dbt's MCP server's semantic-layer
tools, so an assistant configured for one works with the other.
"""
