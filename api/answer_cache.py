"""Encoded answers of /v1/query, kept so a repeated request is served as stored bytes.

The engine's result cache already spares the warehouse; a hit then still cost turning the
request into a query again, copying rows and encoding them to JSON. Here the finished body
(in the form a hit answers: `meta.cached` true) is kept beside its headers, keyed by the
build, the encoding and the request as validated, so a hit is one dictionary look-up. Only
unrestricted answers are kept (a row policy's answer is its caller's), and only small ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi.responses import Response

from metrics.lru import Lru


@dataclass(frozen=True)
class EncodedAnswer:
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...]

    def response(self) -> Response:
        return Response(self.body, media_type=self.media_type, headers=dict(self.headers))


class AnswerCache:
    """A bounded LRU of encoded answers; thread-safe (sync routes run on worker threads)."""

    def __init__(self, entries: int = 512, max_body_bytes: int = 1 << 20) -> None:
        self._entries: Lru[tuple, EncodedAnswer] = Lru(entries)
        self._max_body_bytes = max_body_bytes

    def get(self, key: tuple) -> EncodedAnswer | None:
        return self._entries.get(key)

    def put(self, key: tuple, answer: EncodedAnswer) -> None:
        if len(answer.body) <= self._max_body_bytes:
            self._entries.put(key, answer)
