"""Encoded answers of /v1/query, kept so a repeated request is served as stored bytes.

The engine's result cache already spares the warehouse; a hit then still cost turning the
request into a query again, copying rows and encoding them to JSON. Here the finished body
(in the form a hit answers: `meta.cached` true) is kept beside its headers, keyed by the
build, the encoding and the request as validated, so a hit is one dictionary look-up. Only
unrestricted answers are kept (a row policy's answer is its caller's), and only small ones.

A request sent again byte for byte (same body, query string, Accept and Content-Type) is
answered before routing (`StoredAnswers`): the same bytes validate to the same request, so
only the caller is checked again (its token, scope and concurrency slot; a row policy goes
the long way) and the build must still be the one served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from api.auth import admit
from metrics.errors import MetricsError
from metrics.lru import Lru

#: The route StoredAnswers serves, and the scope its router requires (api/main.py).
QUERY_PATH = "/v1/query"
QUERY_SCOPE = "metrics:read"


@dataclass(frozen=True)
class EncodedAnswer:
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]

    def response(self) -> Response:
        return Response(self.body, media_type=self.media_type, headers=dict(self.headers))

    def asgi_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", self.media_type.encode("latin-1")),
            (b"content-length", str(len(self.body)).encode("latin-1")),
            *((name.encode("latin-1"), value.encode("latin-1")) for name, value in self.headers),
        ]


#: What identifies a request as sent: build, method, query string, body, Accept, Content-Type.
RawRequest = tuple[str, str, bytes, bytes, bytes, bytes]


class AnswerCache:
    """A bounded LRU of encoded answers; thread-safe (sync routes run on worker threads)."""

    def __init__(self, entries: int = 512, max_body_bytes: int = 1 << 20) -> None:
        self._entries: Lru[tuple, EncodedAnswer] = Lru(entries)
        # A request as sent -> the key of its answer and what the audit log says of it.
        self._requests: Lru[RawRequest, tuple[tuple, dict[str, Any]]] = Lru(entries)
        self._max_body_bytes = max_body_bytes

    def get(self, key: tuple) -> EncodedAnswer | None:
        return self._entries.get(key)

    def put(self, key: tuple, answer: EncodedAnswer) -> None:
        if len(answer.body) <= self._max_body_bytes:
            self._entries.put(key, answer)

    def remember(self, request: RawRequest, key: tuple, audit_query: dict[str, Any]) -> None:
        """Note that `request`, as sent, is answered by the entry `key`."""
        if self._entries.get(key) is not None:
            self._requests.put(request, (key, audit_query))

    def for_request(self, request: RawRequest) -> tuple[EncodedAnswer, dict[str, Any]] | None:
        """The stored answer to `request` as sent, and its audit entry; None when not kept."""
        found = self._requests.get(request)
        if found is None:
            return None
        answer = self._entries.get(found[0])
        return (answer, found[1]) if answer is not None else None


def raw_request(build_id: str, scope: dict[str, Any], body: bytes) -> RawRequest:
    headers = dict(scope.get("headers") or [])
    return (
        build_id,
        scope["method"],
        scope.get("query_string", b""),
        body,
        headers.get(b"accept", b""),
        headers.get(b"content-type", b""),
    )


class StoredAnswers:
    """Plain ASGI middleware answering a repeated /v1/query from the answer cache before the
    router (validation, dependencies, worker threads) runs: on the sample most of a cache
    hit's time was spent there, not in the look-up. Anything it cannot answer, including every
    refusal, goes on to the route unchanged, which answers it as always."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != QUERY_PATH or scope["method"] not in ("GET", "POST"):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        answers: AnswerCache | None = getattr(state, "answers", None)
        build_id = state.engines.served_build_id
        if answers is None or build_id is None or not state.engines.is_current():
            await self.app(scope, receive, send)
            return
        body, receive = await _buffered(receive)
        found = None if body is None else answers.for_request(raw_request(build_id, scope, body))
        if found is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            caller, slot = admit(request, QUERY_SCOPE)
        except MetricsError:
            await self.app(scope, receive, send)  # the route answers the refusal
            return
        if caller.policy:
            # A row policy's answer is computed for it by the route, which takes the caller's
            # concurrency slot itself.
            state.limiter.release(slot)
            await self.app(scope, receive, send)
            return
        try:
            answer, audit_query = found
            request.state.audit_query = audit_query
            await send({"type": "http.response.start", "status": 200, "headers": answer.asgi_headers()})
            await send({"type": "http.response.body", "body": answer.body})
        finally:
            state.limiter.release(slot)


async def _buffered(receive) -> tuple[bytes | None, Any]:
    """The request body, read whole, and a `receive` that hands it to the app again. None for
    the body when the client went away while sending it."""
    messages = []
    chunks = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return None, _replay(messages, receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), _replay(messages, receive)


def _replay(messages: list, receive):
    pending = list(messages)

    async def replayed():
        return pending.pop(0) if pending else await receive()

    return replayed
