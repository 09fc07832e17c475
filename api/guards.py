"""Request guards that sit in front of every route (plain ASGI middleware, so they also cover
the probes, the docs pages and anything a router does not see)."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable


def _error(status: int, code: str, message: str, **extra) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = json.dumps({"error": {"code": code, "message": message, **extra}}).encode()
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


async def _send_error(send, status: int, code: str, message: str, scope=None, **extra) -> None:
    request_id = ((scope or {}).get("state") or {}).get("request_id")
    if request_id:
        extra["request_id"] = request_id
    headers, body = _error(status, code, message, **extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies over `max_bytes` with 413, before any route reads them: by the
    declared Content-Length, and, for a body sent without one (chunked), by reading it here
    up to the cap and handing the route what was read. Counting inside the route's own read
    would not do: FastAPI turns an exception raised while it reads the body into a 400."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                await self._refuse(send, scope)
                return
            await self.app(scope, receive, send)
            return
        # No declared length: buffer the body (at most max_bytes, a small cap) and replay it.
        messages = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client went away: let the app see the disconnect
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                await self._refuse(send, scope)
                return
            if not message.get("more_body", False):
                break

        async def replay():
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send, scope) -> None:
        await _send_error(
            send,
            413,
            "request_too_large",
            f"the request body is over {self.max_bytes:,} bytes, the most this service accepts.",
            scope,
            max_bytes=self.max_bytes,
        )


# Sent with every response. The API and the docs pages are never meant to be framed by another
# site (clickjacking), never sniffed into another type, and leak no URL to other sites.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response (a route's own value wins) and drops any
    `server` header, so responses do not advertise the server software and version."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                present = {k.lower() for k, _ in headers}
                headers.extend((k, v) for k, v in SECURITY_HEADERS if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def host_name(header: str) -> str:
    """The name part of a Host header: `127.0.0.1:8000` -> `127.0.0.1`, `[::1]:80` -> `::1`.

    >>> host_name("[::1]:8000"), host_name("Example.COM."), host_name("localhost:80")
    ('::1', 'example.com', 'localhost')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0].rstrip(".") if header.count(":") == 1 else header.rstrip(".")


def is_loopback(name: str) -> bool:
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HostAllowList:
    """Answers only requests whose Host names this service.

    An open service (no token needed) is reachable by any web page the user's browser opens,
    through DNS rebinding: a hostile name that resolves to 127.0.0.1 makes the browser treat
    the service as that site's own. Such requests carry the hostile name in Host, so an open
    service answers only loopback names and the names given in `allowed_hosts`. With tokens,
    a browser holds none for a rebinding page to use, and only `allowed_hosts` (when set) is
    enforced. Refusals are 421 Misdirected Request, and nothing of the Host is echoed.
    """

    def __init__(self, app, allowed_hosts: Iterable[str], is_open: Callable[[], bool]) -> None:
        self.app = app
        self.allowed = frozenset(host_name(h) for h in allowed_hosts if h.strip())
        self.is_open = is_open

    def admits(self, header: str | None) -> bool:
        name = host_name(header) if header is not None else None  # HTTP/1.0 may send none
        if name is not None and ("*" in self.allowed or name in self.allowed):
            return True
        if self.is_open():
            return name is not None and is_loopback(name)
        return not self.allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = dict(scope.get("headers") or []).get(b"host")
        if not self.admits(host.decode("latin-1") if host is not None else None):
            await _send_error(
                send,
                421,
                "host_not_allowed",
                "this service does not answer for the host name in the request; open it at "
                "127.0.0.1 or localhost, or add the name to NORTHSTAR_ALLOWED_HOSTS.",
                scope,
            )
            return
        await self.app(scope, receive, send)
