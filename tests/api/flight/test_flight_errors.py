"""What a Flight client sees of each kind of failure, over a real pyarrow Flight server and
client in this process: the status clients map, the user-facing message, and never a
traceback or a file path (pyarrow sends the formatted traceback of any other exception)."""

from __future__ import annotations

import logging
import re

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from api.auth import Forbidden, TooManyRequests, Unauthorized
from api.flight.errors import for_client, install_clean_details
from metrics.errors import InternalError, QueryCancelled, QueryTimeout, ResultTooLarge, UnknownMetric
from metrics.policy import PolicyDenied

CASES = {
    # raised by the engine or the service -> (what the pyarrow client raises, the message it shows)
    "unknown_metric": (
        UnknownMetric("unknown metric 'activ_users'. Did you mean 'active_users'?"),
        pa.ArrowInvalid,
        "unknown metric 'activ_users'. Did you mean 'active_users'?",
    ),
    "result_cap": (ResultTooLarge("the answer has more than 500 rows"), pa.ArrowInvalid, "more than 500 rows"),
    "no_token": (Unauthorized("no API token"), flight.FlightUnauthenticatedError, "no API token"),
    "scope": (Forbidden("token lacks metrics:read"), flight.FlightUnauthorizedError, "lacks metrics:read"),
    "policy": (PolicyDenied("the policy forbids user"), flight.FlightUnauthorizedError, "forbids user"),
    "concurrency": (
        TooManyRequests("2 queries running; the limit is 2"),
        flight.FlightUnavailableError,
        "the limit is 2",
    ),
    "timeout": (QueryTimeout("the query ran longer than 2 s"), flight.FlightTimedOutError, "longer than 2 s"),
    "cancelled": (
        QueryCancelled("canceling statement due to user request"),
        flight.FlightCancelledError,
        "user request",
    ),
    "engine_bug": (
        InternalError("the warehouse could not run the query.", internal="Binder Error at /srv/x.py"),
        flight.FlightInternalError,
        "an internal error",
    ),
    "python_bug": (KeyError("/srv/northstar/secret.py"), flight.FlightInternalError, "an internal error"),
}


class Failing(flight.FlightServerBase):
    def do_action(self, context, action):
        try:
            raise CASES[action.type][0]
        except Exception as exc:  # noqa: BLE001 (re-raised as the client should see it)
            raise for_client(exc) from None


@pytest.fixture(scope="module")
def client():
    install_clean_details()
    server = Failing("grpc+tcp://127.0.0.1:0")
    try:
        yield flight.FlightClient(f"grpc+tcp://127.0.0.1:{server.port}")
    finally:
        server.shutdown()


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_failure_is_its_status_and_message_only(client, case, caplog):
    _, expected_type, words = CASES[case]
    with caplog.at_level(logging.INFO, logger="northstar.flight"), pytest.raises(expected_type) as caught:
        list(client.do_action(flight.Action(case, b"")))
    text = str(caught.value)
    assert words in text
    assert "Traceback" not in text and ".py" not in text and "/srv" not in text
    if expected_type is flight.FlightInternalError:
        request_id = re.search(r"request id ([0-9a-f]{32})", text).group(1)
        # The words the client does not get are in the server log, under the same id.
        logged = "\n".join(r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records)
        assert request_id in logged and "/srv/" in logged


def test_other_exceptions_keep_their_formatting():
    import traceback

    install_clean_details()
    try:
        raise ValueError("plain")
    except ValueError as exc:
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    assert "Traceback" in formatted and "ValueError: plain" in formatted
