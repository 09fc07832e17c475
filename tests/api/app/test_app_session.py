"""The session cookie's rules, on the real token store: a session names its token and is
signed with the service's key; altered, expired, foreign-key or revoked sessions are nobody."""

from __future__ import annotations

import stat

from api.app import session
from core.tokens import TokenStore


def test_sessions_are_signed_expire_and_die_with_their_token(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    token, plain = store.create("analyst", ["metrics:read"])
    other, _ = store.create("other", ["metrics:read"])
    key = session.session_key(tmp_path)
    assert stat.S_IMODE((tmp_path / "session.key").stat().st_mode) == 0o600
    assert session.session_key(tmp_path) == key  # made once, then reused

    cookie = session.issue(key, token, now=1_000_000)
    assert plain not in cookie and plain.split("_", 2)[2] not in cookie
    assert session.resolve(key, store, cookie, now=1_000_060) == token
    # Expired, from the future, altered, pointed at another token, or signed with another key.
    assert session.resolve(key, store, cookie, now=1_000_000 + session.SESSION_SECONDS + 1) is None
    assert session.resolve(key, store, cookie, now=999_000) is None
    assert session.resolve(key, store, cookie[:-1] + ("A" if cookie[-1] != "A" else "B"), now=1_000_060) is None
    assert session.resolve(key, store, cookie.replace(token.id, other.id), now=1_000_060) is None
    assert session.resolve(b"k" * 32, store, cookie, now=1_000_060) is None
    for junk in ("", "v1", "v2." + cookie[3:], "v1.x.y.z", "v1...."):
        assert session.resolve(key, store, junk, now=1_000_060) is None
    # Revoked: the same cookie is nobody from then on.
    store.revoke("analyst")
    assert session.resolve(key, store, cookie, now=1_000_060) is None
