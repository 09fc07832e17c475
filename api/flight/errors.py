"""What a Flight SQL client is told when a call fails: the user-facing message `/v1/query`
gives, under the gRPC status clients map to their errors; never a traceback or a file path.

pyarrow turns an exception raised by a Flight handler into the call's status. Its `FlightError`
subclasses become clean statuses (INTERNAL, DEADLINE_EXCEEDED, CANCELLED, UNAUTHENTICATED,
PERMISSION_DENIED, UNAVAILABLE). Any other exception, `pyarrow.ArrowInvalid` included (the only
way to INVALID_ARGUMENT, which the dbt SDK maps to `QueryFailedError`), carries a "detail" that
pyarrow renders with `traceback.format_exception` and sends to the client in the status
message and the `x-arrow-status-detail` trailer. `InvalidArgument` is that `ArrowInvalid` with
a detail of one word (its error code) in place of the traceback: `install_clean_details`
wraps `traceback.format_exception` for instances of it, and only for them.

Arrow's gRPC transport has no RESOURCE_EXHAUSTED (its `TransportStatusCode` stops at the codes
above plus NOT_FOUND, ALREADY_EXISTS, UNIMPLEMENTED), so guardrails map as the clients can see
them: a result over the cap is INVALID_ARGUMENT (the caller narrows the query, as the 422 of
`/v1/query` says), the per-token concurrency limit is UNAVAILABLE (retry, as its 429 says).
"""

from __future__ import annotations

import logging
import traceback
import uuid

import pyarrow as pa
import pyarrow.flight as flight

from api.auth import Forbidden, TooManyRequests, Unauthorized
from core.tokens import TokenStoreUnavailable
from metrics.errors import (
    MetricsError,
    QueryCancelled,
    QueryTimeout,
    UserError,
    WarehouseUnavailable,
)
from metrics.policy import PolicyDenied

log = logging.getLogger("northstar.flight")

INTERNAL_MESSAGE = "the service could not answer this call (an internal error); quote request id {rid}."


class _Clean:
    """An Arrow status for the client: `message`, and `code` where pyarrow would put a traceback."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)  # type: ignore[call-arg]
        self.code = code


class InvalidArgument(_Clean, pa.ArrowInvalid):
    """INVALID_ARGUMENT: a query, statement or command the caller can fix."""

    def __init__(self, message: str, code: str = "invalid_argument") -> None:
        super().__init__(message, code)


class Unimplemented(_Clean, pa.ArrowNotImplementedError):
    """UNIMPLEMENTED: a Flight SQL command or action northstar does not offer."""

    def __init__(self, message: str, code: str = "not_implemented") -> None:
        super().__init__(message, code)


def _format_exception(original):
    def format_exception(exc, /, *args, **kwargs):
        value = args[0] if args else kwargs.get("value", exc)
        if isinstance(value, _Clean):
            return [value.code]
        return original(exc, *args, **kwargs)

    format_exception.northstar_clean_details = True  # type: ignore[attr-defined]
    return format_exception


def install_clean_details() -> None:
    """Make pyarrow's status detail of an `InvalidArgument` or `Unimplemented` its code (idempotent)."""
    if not getattr(traceback.format_exception, "northstar_clean_details", False):
        traceback.format_exception = _format_exception(traceback.format_exception)


def for_client(exc: BaseException) -> BaseException:
    """The exception to raise from a Flight handler for `exc`: a clean status and message; an
    unexpected error is logged with its traceback under a request id the client is given."""
    if isinstance(exc, (flight.FlightError, _Clean)):
        return exc
    if isinstance(exc, Unauthorized):
        return flight.FlightUnauthenticatedError(exc.message)
    if isinstance(exc, (Forbidden, PolicyDenied)):
        return flight.FlightUnauthorizedError(exc.message)
    if isinstance(exc, (TooManyRequests, WarehouseUnavailable, TokenStoreUnavailable)):
        return flight.FlightUnavailableError(exc.message)
    if isinstance(exc, QueryTimeout):
        return flight.FlightTimedOutError(exc.message)
    if isinstance(exc, QueryCancelled):
        return flight.FlightCancelledError(exc.message)
    if isinstance(exc, UserError):
        if exc.internal:
            log.info("flight %s: %s", exc.code, exc.internal)
        return InvalidArgument(exc.message, exc.code)
    rid = uuid.uuid4().hex
    if isinstance(exc, MetricsError):
        log.error("flight call %s: %s: %s (%s)", rid, exc.code, exc.message, exc.internal or "")
    else:
        log.error("flight call %s failed", rid, exc_info=exc)
    return flight.FlightInternalError(INTERNAL_MESSAGE.format(rid=rid))
