"""What every interface of northstar shares: its settings (`core.settings`), the API token
store (`core.tokens`) and the record of sent notifications (`core.notification_state`).

It sits below the interfaces (`api/`: HTTP, SQL endpoint, GraphQL, Flight, MCP) and the command
line and build (`northstar/`), which all import it; it imports only the engine (`metrics/`).
docs/architecture.md states the layering and tests/test_layers.py checks it.
"""
