"""The web app's sign-in session: a signed cookie that refers to an API token.

The browser never holds the token itself after signing in. The cookie reads
`v1.<token id>.<issued at>.<signature>`, where the signature is an HMAC-SHA256, under a key
kept beside the token store (`<data_dir>/session.key`, mode 0600), of the token id, the issue
time and the token's stored hash. So a session:

- is worth nothing without the key (it cannot be forged or pointed at another token);
- dies with its token: a revoked token is no longer active in the store, and the session that
  refers to it is refused on the next request;
- expires after `SESSION_SECONDS`.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)
and scoped to `/`. As a second guard against cross-site requests, a request that changes
something (any method but GET/HEAD/OPTIONS) is authenticated by the cookie only when it
carries the `X-Requested-With: northstar` header, which a cross-site form cannot set and a
cross-site script cannot send without a CORS preflight this service never grants.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from pathlib import Path

from fastapi import Request

from core.tokens import Token, TokenStore

COOKIE = "northstar_session"
SESSION_SECONDS = 12 * 3600
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "northstar"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_keys: dict[Path, bytes] = {}
_keys_lock = threading.Lock()


def session_key(data_dir: Path) -> bytes:
    """This service's signing key: made once (32 random bytes) and kept with the tokens, so
    sessions outlive a restart and every worker of one data directory agrees."""
    path = Path(data_dir) / "session.key"
    with _keys_lock:
        if path in _keys:
            return _keys[path]
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            key = secrets.token_bytes(32)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(key)
            try:
                os.link(tmp, path)  # first writer wins; a concurrent one reads the winner's key
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
            key = path.read_bytes()
        _keys[path] = key
        return key


def _signature(key: bytes, token: Token, issued: int) -> str:
    message = f"{token.id}.{issued}.{token.sha256}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode().rstrip("=")


def issue(key: bytes, token: Token, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    return f"v1.{token.id}.{issued}.{_signature(key, token, issued)}"


def resolve(key: bytes, store: TokenStore, cookie: str | None, now: float | None = None) -> Token | None:
    """The active token a session cookie refers to, or None (absent, forged, expired, revoked)."""
    if not cookie:
        return None
    version, _, rest = cookie.partition(".")
    token_id, _, rest = rest.partition(".")
    issued_text, _, signature = rest.partition(".")
    if version != "v1" or not issued_text.isdigit() or not signature:
        return None
    issued = int(issued_text)
    if not 0 <= (now if now is not None else time.time()) - issued <= SESSION_SECONDS:
        return None
    token = next((t for t in store.list() if t.id == token_id and t.active), None)
    if token is None or not hmac.compare_digest(signature, _signature(key, token, issued)):
        return None
    return token


def session_token(request: Request) -> Token | None:
    """The token behind the request's session cookie, if it has a valid one and (for a request
    that changes something) the app's anti-forgery header."""
    cookie = request.cookies.get(COOKIE)
    if not cookie:
        return None
    if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        return None
    return resolve(session_key(request.app.state.settings.data_dir), request.app.state.tokens, cookie)
