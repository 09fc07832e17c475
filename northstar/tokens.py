"""API tokens: created and revoked with `northstar tokens`, stored hashed, checked on every
interface (HTTP bearer tokens, the SQL endpoint's password).

A token reads `nst_<id>_<secret>`: the id finds the record, the whole token is compared with
its stored SHA-256 in constant time. The secret is 256 random bits, so a fast hash is as safe
as a slow one (there is nothing to guess) and costs nothing per request; the plain token is
shown once, at creation, and never stored or logged.

The store is one JSON file beside the warehouse (`<data_dir>/tokens.json`, mode 0600), replaced
atomically on every change; a running server rereads it when it changes, so a revoked token
stops working on the next request.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from metrics.errors import UserError
from metrics.query.request import Filter, FilterOp

SCOPES = ("metrics:read", "experiments:read", "admin")


class TokenError(UserError):
    code = "invalid_token"


@dataclass(frozen=True)
class PolicyFilter:
    """A row-level restriction: `field op values`, added to every query the token makes."""

    field: str
    op: str  # "in" or "not_in"
    values: tuple[str, ...]

    def to_filter(self) -> Filter:
        return Filter(self.field, FilterOp(self.op), values=self.values)

    def describe(self) -> str:
        return f"{self.field} {'in' if self.op == 'in' else 'not in'} ({', '.join(self.values)})"

    @classmethod
    def parse(cls, text: str) -> PolicyFilter:
        """`region=emea`, `account_id=a1,a2` (in) or `plan!=free` (not in)."""
        negate = "!=" in text
        name, sep, values = text.partition("!=" if negate else "=")
        values_tuple = tuple(v.strip() for v in values.split(",") if v.strip())
        if not sep or not name.strip() or not values_tuple:
            raise TokenError(f"cannot read the row filter {text!r}: write field=value[,value...] "
                             "or field!=value[,value...], e.g. region=emea.")
        return cls(name.strip(), "not_in" if negate else "in", values_tuple)


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    scopes: tuple[str, ...]
    policy: tuple[PolicyFilter, ...]
    created_at: str
    sha256: str
    revoked_at: str | None = None
    max_concurrent: int | None = None
    # PostgreSQL's SCRAM-SHA-256 verifier of the token (salted, 4096 PBKDF2 rounds), so that a
    # SQL client connecting as the token's name can prove it holds the token without sending it.
    scram: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes

    def public(self) -> dict[str, Any]:
        """Everything but the hash."""
        record = asdict(self)
        record.pop("sha256")
        record["policy"] = [p.describe() for p in self.policy]
        return record


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scram_verifier(secret: str, iterations: int = 4096) -> str:
    """PostgreSQL's stored SCRAM-SHA-256 form (RFC 7677):
    `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


@dataclass
class TokenStore:
    path: Path
    _tokens: dict[str, Token] = field(default_factory=dict)
    _mtime: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def in_dir(cls, data_dir: Path) -> TokenStore:
        return cls(Path(data_dir) / "tokens.json")

    # -- reading ---------------------------------------------------------------------------

    def _load(self) -> dict[str, Token]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._tokens, self._mtime = {}, None
            return self._tokens
        if mtime != self._mtime:
            with self._lock:
                raw = json.loads(self.path.read_text() or "{}")
                tokens = {}
                for record in raw.get("tokens", []):
                    policy = tuple(PolicyFilter(p["field"], p["op"], tuple(p["values"])) for p in record.get("policy", []))
                    tokens[record["id"]] = Token(record["id"], record["name"], tuple(record["scopes"]), policy,
                                                 record["created_at"], record["sha256"], record.get("revoked_at"),
                                                 record.get("max_concurrent"), record.get("scram"))
                self._tokens, self._mtime = tokens, mtime
        return self._tokens

    def list(self) -> list[Token]:
        return sorted(self._load().values(), key=lambda t: t.created_at)

    def has_active(self) -> bool:
        return any(t.active for t in self._load().values())

    def by_name(self, name: str) -> Token | None:
        """The active token called `name` (SQL clients may log in as it)."""
        return next((t for t in self._load().values() if t.active and name in (t.name, t.id)), None)

    def verify(self, token: str | None) -> Token | None:
        """The active token `token` is, or None."""
        if not token or not token.startswith("nst_"):
            return None
        token_id = token[4:].partition("_")[0]
        record = self._load().get(token_id)
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(record.sha256, _digest(token)) else None

    # -- changing --------------------------------------------------------------------------

    def create(self, name: str, scopes: list[str], policy: list[PolicyFilter] | None = None,
               max_concurrent: int | None = None) -> tuple[Token, str]:
        """A new token and its plain text, which is shown once and never stored."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise TokenError(f"unknown scope(s) {unknown}; valid scopes are {', '.join(SCOPES)}."
                             if unknown else f"a token needs at least one scope: {', '.join(SCOPES)}.")
        if not name.strip():
            raise TokenError("a token needs a name (who or what uses it).")
        tokens = dict(self._load())
        if any(t.name == name and t.active for t in tokens.values()):
            raise TokenError(f"an active token named {name!r} exists; revoke it first or pick another name.")
        token_id = secrets.token_hex(6)
        plain = f"nst_{token_id}_{secrets.token_urlsafe(32)}"
        record = Token(token_id, name, tuple(scopes), tuple(policy or ()),
                       dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), _digest(plain),
                       max_concurrent=max_concurrent, scram=scram_verifier(plain))
        tokens[token_id] = record
        self._save(tokens)
        return record, plain

    def revoke(self, id_or_name: str) -> Token:
        tokens = dict(self._load())
        matches = [t for t in tokens.values() if t.active and id_or_name in (t.id, t.name)]
        if not matches:
            names = ", ".join(f"{t.name} ({t.id})" for t in tokens.values() if t.active) or "none"
            raise TokenError(f"no active token with id or name {id_or_name!r}; active tokens: {names}.")
        revoked = Token(**{**asdict(matches[0]), "policy": matches[0].policy,
                           "revoked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
        tokens[revoked.id] = revoked
        self._save(tokens)
        return revoked

    def _save(self, tokens: dict[str, Token]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        records = []
        for t in tokens.values():
            record = asdict(t)
            record["policy"] = [{"field": p.field, "op": p.op, "values": list(p.values)} for p in t.policy]
            records.append(record)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"tokens": records}, out, indent=1)
        os.replace(tmp, self.path)
        self._mtime = None  # reread on next use
