"""What a GraphQL client is told of a failed field: the engine's user-facing message or
GraphQL's own, and for a fault of the service only a request id (the details go to the log)."""

from __future__ import annotations

import logging

import graphql

from api.graphql.router import client_error
from metrics.errors import UnknownMetric


def test_user_errors_keep_their_message_and_faults_give_a_request_id(caplog):
    unknown = UnknownMetric("unknown metric 'activ_users'. Did you mean 'active_users'?")
    assert client_error(graphql.GraphQLError(unknown.message, original_error=unknown))["message"] == unknown.message
    assert client_error(graphql.GraphQLError("Cannot query field 'x'"))["message"] == "Cannot query field 'x'"
    fault = RuntimeError("KeyError in /srv/northstar/api/dbt_sl/catalog.py")
    with caplog.at_level(logging.ERROR, logger="northstar.graphql"):
        message = client_error(graphql.GraphQLError(str(fault), original_error=fault))["message"]
    assert "/srv" not in message and "request id" in message
    request_id = message.rsplit(" ", 1)[-1].rstrip(".")
    assert any(request_id in r.getMessage() and r.exc_info and r.exc_info[1] is fault for r in caplog.records)
