"""API tokens: created and revoked with `northstar tokens`, stored hashed, checked on every
interface (HTTP bearer tokens, the SQL endpoint's password).

A token reads `nst_<id>_<secret>`: the id finds the record, the whole token is compared with
its stored SHA-256 in constant time. The secret is 256 random bits, so a fast hash is as safe
as a slow one (there is nothing to guess) and costs nothing per request; the plain token is
shown once, at creation, and never stored or logged.

The store is one JSON file beside the warehouse (`<data_dir>/tokens.json`, mode 0600). Every
change is a read-modify-write under an exclusive `flock` on `tokens.json.lock`, written to a
temporary file in the same directory, fsynced and renamed over the store, so concurrent
`tokens create` / `tokens revoke` runs never lose each other's writes and a reader never sees
half a file. Every load validates each record; a running server rereads the file when it
changes (inode, mtime or size), so a revoked token stops working on the next request.

Fail closed: the first token created also writes `tokens.required`, a marker that this data
directory is served only with tokens. From then on (and for any directory holding a
tokens.json) a missing, unreadable, empty or invalid store is an error
(`TokenStoreUnavailable`, 503 over HTTP, a refused login over SQL), never an open door, and
revoking the last token leaves a service nobody can use rather than an open one. Only
`northstar serve --open` serves such a directory without tokens.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from metrics.errors import MetricsError, UserError
from metrics.query.request import Filter, FilterOp

SCOPES = ("metrics:read", "experiments:read", "admin")
SCRAM_ITERATIONS = 4096
MARKER_TEXT = (
    "API tokens have been created for this data directory: northstar serves it only with a\n"
    "valid tokens.json (or with `northstar serve --open`). Delete this file and tokens.json\n"
    "together to return to the token-less, loopback-only mode.\n"
)


class TokenError(UserError):
    code = "invalid_token"


class TokenStoreUnavailable(MetricsError):
    """The store of a data directory that needs tokens cannot be used: nobody is admitted."""

    code = "token_store_unavailable"


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
            raise TokenError(
                f"cannot read the row filter {text!r}: write field=value[,value...] "
                "or field!=value[,value...], e.g. region=emea."
            )
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
    # SQL client can prove it holds the token without sending it.
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


# -- the file's schema --------------------------------------------------------------------


class _PolicyRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(min_length=1)
    op: Literal["in", "not_in"]
    values: list[str] = Field(min_length=1)


class _TokenRecord(BaseModel):
    # Unknown keys are refused: a hand edit that writes `"revoked": true` must not pass for a
    # revocation while leaving the token valid.
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{4,64}$")
    name: str = Field(min_length=1)
    scopes: list[Literal["metrics:read", "experiments:read", "admin"]] = Field(min_length=1)
    policy: list[_PolicyRecord] = []
    created_at: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    revoked_at: str | None = None
    max_concurrent: int | None = Field(default=None, ge=1)
    scram: str | None = Field(
        default=None, pattern=r"^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$"
    )

    @field_validator("created_at", "revoked_at")
    @classmethod
    def _timestamp(cls, value: str | None) -> str | None:
        if value is not None:
            dt.datetime.fromisoformat(value)  # ValueError names the problem
        return value

    def to_token(self) -> Token:
        return Token(
            self.id,
            self.name,
            tuple(self.scopes),
            tuple(PolicyFilter(p.field, p.op, tuple(p.values)) for p in self.policy),
            self.created_at,
            self.sha256,
            self.revoked_at,
            self.max_concurrent,
            self.scram,
        )


@dataclass(frozen=True)
class Snapshot:
    """The store's content at one moment: tokens by id and the SCRAM salt every new token
    shares (so that the SQL endpoint offers one challenge, whatever user name is tried)."""

    tokens: dict[str, Token]
    scram_salt: bytes | None = None


def parse_store(text: str, name: str = "tokens.json") -> Snapshot:
    """The validated content of a store file; `TokenStoreUnavailable` naming the problem (and
    the record) otherwise."""
    if not text.strip():
        raise TokenStoreUnavailable(f"{name} is empty")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TokenStoreUnavailable(
            f"{name} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("tokens"), list):
        raise TokenStoreUnavailable(f'{name} is not an object with a "tokens" list')
    unknown = sorted(set(raw) - {"version", "scram_salt", "tokens"})
    if unknown:
        raise TokenStoreUnavailable(f"{name} has unknown keys {unknown}")
    salt = None
    if raw.get("scram_salt") is not None:
        try:
            salt = base64.b64decode(raw["scram_salt"], validate=True)
        except (TypeError, ValueError):
            raise TokenStoreUnavailable(f"{name}: scram_salt is not base64") from None
    tokens: dict[str, Token] = {}
    active_names: set[str] = set()
    for index, record in enumerate(raw["tokens"], start=1):
        label = f"record {index}"
        if isinstance(record, dict):
            label += "".join(f" ({k} {record[k]!r})" for k in ("id", "name") if isinstance(record.get(k), str))[:120]
        try:
            token = _TokenRecord.model_validate(record).to_token()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors())
            raise TokenStoreUnavailable(f"{name}, {label} is invalid: {problems}") from None
        if token.id in tokens:
            raise TokenStoreUnavailable(f"{name}, {label}: the id {token.id!r} is used twice")
        if token.active and token.name in active_names:
            raise TokenStoreUnavailable(f"{name}, {label}: two active tokens are named {token.name!r}")
        tokens[token.id] = token
        if token.active:
            active_names.add(token.name)
    return Snapshot(tokens, salt)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def scram_verifier(secret: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """PostgreSQL's stored SCRAM-SHA-256 form (RFC 7677):
    `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", secret.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(hashlib.sha256(client_key).digest())}:{b64(server_key)}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class TokenStore:
    path: Path
    _cache_key: tuple | None = None
    _cached: Snapshot | TokenStoreUnavailable | None = None
    _required: bool = False  # sticky: once tokens are required they stay required
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def in_dir(cls, data_dir: Path) -> TokenStore:
        return cls(Path(data_dir) / "tokens.json")

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    @property
    def marker_path(self) -> Path:
        return self.path.with_name("tokens.required")

    # -- reading ---------------------------------------------------------------------------

    def requires_tokens(self) -> bool:
        """Whether this data directory is served only with tokens: tokens have been created
        for it (the marker), a store file exists, or this process has seen either."""
        if not self._required and (self.marker_path.exists() or os.path.lexists(self.path)):
            self._required = True
        return self._required

    def snapshot(self) -> Snapshot:
        """The current content, reread when the file changed; `TokenStoreUnavailable` when a
        data directory that needs tokens has no usable store."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            self._cache_key = self._cached = None
            if self.requires_tokens():
                raise TokenStoreUnavailable(
                    f"{self.path.name} is missing, but tokens have been created for this data directory"
                ) from None
            return Snapshot({})
        except OSError as exc:
            raise TokenStoreUnavailable(f"{self.path.name} cannot be read ({exc.strerror})") from None
        try:
            stat = os.fstat(fd)
            key = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_size)
            with self._lock:
                if key != self._cache_key:
                    self._required = True
                    try:
                        with os.fdopen(os.dup(fd), "rb") as handle:
                            text = handle.read().decode("utf-8")
                        self._cached = parse_store(text, self.path.name)
                    except TokenStoreUnavailable as exc:
                        self._cached = exc
                    except (OSError, UnicodeDecodeError) as exc:
                        self._cached = TokenStoreUnavailable(f"{self.path.name} cannot be read ({exc})")
                    self._cache_key = key
                cached = self._cached
        finally:
            os.close(fd)
        if isinstance(cached, TokenStoreUnavailable):
            raise TokenStoreUnavailable(cached.message)
        assert cached is not None
        return cached

    def list(self) -> list[Token]:
        return sorted(self.snapshot().tokens.values(), key=lambda t: t.created_at)

    def has_active(self) -> bool:
        return any(t.active for t in self.snapshot().tokens.values())

    def by_name(self, name: str) -> Token | None:
        """The active token called `name` (SQL clients may log in as it)."""
        return next((t for t in self.snapshot().tokens.values() if t.active and name in (t.name, t.id)), None)

    def get(self, token_id: str) -> Token | None:
        """The active token with this id (a session's token, rechecked per statement)."""
        token = self.snapshot().tokens.get(token_id)
        return token if token is not None and token.active else None

    def verify(self, token: str | None) -> Token | None:
        """The active token `token` is, or None."""
        if not token or not token.startswith("nst_"):
            return None
        token_id = token[4:].partition("_")[0]
        record = self.snapshot().tokens.get(token_id)
        if record is None or not record.active:
            return None
        return record if hmac.compare_digest(record.sha256, _digest(token)) else None

    # -- changing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[Snapshot]:
        """The store as it is on disk, held under the exclusive lock for a read-modify-write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                text = self.path.read_text(encoding="utf-8")
            except FileNotFoundError:
                current = Snapshot({})
            else:
                try:
                    current = parse_store(text, self.path.name)
                except TokenStoreUnavailable as exc:
                    raise TokenStoreUnavailable(
                        f"cannot change the tokens: {exc.message}; repair {self.path} (or move it away and "
                        "create new tokens)"
                    ) from None
            yield current
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def create(
        self, name: str, scopes: list[str], policy: list[PolicyFilter] | None = None, max_concurrent: int | None = None
    ) -> tuple[Token, str]:
        """A new token and its plain text, which is shown once and never stored."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise TokenError(
                f"unknown scope(s) {unknown}; valid scopes are {', '.join(SCOPES)}."
                if unknown
                else f"a token needs at least one scope: {', '.join(SCOPES)}."
            )
        if not name.strip():
            raise TokenError("a token needs a name (who or what uses it).")
        if max_concurrent is not None and max_concurrent < 1:
            raise TokenError("--max-concurrent must be at least 1.")
        with self._exclusive() as current:
            tokens = dict(current.tokens)
            if any(t.name == name and t.active for t in tokens.values()):
                raise TokenError(f"an active token named {name!r} exists; revoke it first or pick another name.")
            salt = current.scram_salt or secrets.token_bytes(16)
            token_id = secrets.token_hex(6)
            while token_id in tokens:
                token_id = secrets.token_hex(6)
            plain = f"nst_{token_id}_{secrets.token_urlsafe(32)}"
            record = Token(
                token_id,
                name,
                tuple(scopes),
                tuple(policy or ()),
                _now(),
                _digest(plain),
                max_concurrent=max_concurrent,
                scram=scram_verifier(plain, salt),
            )
            tokens[token_id] = record
            self._write_marker()
            self._save(Snapshot(tokens, salt))
        return record, plain

    def revoke(self, id_or_name: str) -> Token:
        with self._exclusive() as current:
            tokens = dict(current.tokens)
            matches = [t for t in tokens.values() if t.active and id_or_name in (t.id, t.name)]
            if not matches:
                names = ", ".join(f"{t.name} ({t.id})" for t in tokens.values() if t.active) or "none"
                raise TokenError(f"no active token with id or name {id_or_name!r}; active tokens: {names}.")
            revoked = Token(**{**asdict(matches[0]), "policy": matches[0].policy, "revoked_at": _now()})
            tokens[revoked.id] = revoked
            self._save(Snapshot(tokens, current.scram_salt))
        return revoked

    def _write_marker(self) -> None:
        if not self.marker_path.exists():
            self._atomic_write(self.marker_path, MARKER_TEXT.encode())

    def _save(self, snapshot: Snapshot) -> None:
        records = []
        for t in snapshot.tokens.values():
            record = asdict(t)
            record["policy"] = [{"field": p.field, "op": p.op, "values": list(p.values)} for p in t.policy]
            records.append(record)
        content: dict[str, Any] = {"version": 1}
        if snapshot.scram_salt is not None:
            content["scram_salt"] = base64.b64encode(snapshot.scram_salt).decode()
        content["tokens"] = records
        self._atomic_write(self.path, (json.dumps(content, indent=1) + "\n").encode())
        self._cache_key = None  # reread on next use

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        """Temp file in the same directory (0600), fsync, rename over `path`, fsync the directory."""
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
