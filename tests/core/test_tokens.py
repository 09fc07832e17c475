"""The token store (`core/tokens.py`): locked read-modify-write, validated loads, the marker
that keeps a data directory closed once tokens existed, and the `northstar tokens` command."""

from __future__ import annotations

import json
import multiprocessing
import stat
from pathlib import Path

import pytest

from core.tokens import TokenStore, TokenStoreUnavailable
from tests.conftest import northstar

WORKERS = 4
OPERATIONS_PER_WORKER = 50  # 30 creates and 20 revokes each: 200 operations in all


def _churn(data_dir: str, worker: int, start, results) -> None:
    """One process's share of the stress test: creates, and revokes of tokens it created just
    before, each a read-modify-write of the same file as the other processes'."""
    store = TokenStore.in_dir(Path(data_dir))
    created, revoked, plain = [], [], {}
    start.wait(timeout=60)
    for i in range(30):
        token, text = store.create(f"w{worker}-{i}", ["metrics:read"])
        created.append(token.id)
        plain[token.id] = text
        if i % 3:
            previous = created[-2]
            store.revoke(previous)  # reported success: it must be revoked for good
            revoked.append(previous)
    results.put((created, revoked, plain))


def test_concurrent_creates_and_revokes_lose_no_write(tmp_path):
    context = multiprocessing.get_context("fork")
    start, results = context.Barrier(WORKERS), context.Queue()
    workers = [context.Process(target=_churn, args=(str(tmp_path), n, start, results)) for n in range(WORKERS)]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=30)
        assert process.exitcode == 0
    created = [token_id for c, _, _ in outcomes for token_id in c]
    revoked = {token_id for _, r, _ in outcomes for token_id in r}
    plain = {k: v for _, _, p in outcomes for k, v in p.items()}
    assert len(created) + len(revoked) == WORKERS * OPERATIONS_PER_WORKER

    on_disk = {record["id"]: record for record in json.loads((tmp_path / "tokens.json").read_text())["tokens"]}
    assert set(on_disk) == set(created)  # no create lost
    assert {i for i, r in on_disk.items() if r["revoked_at"]} == revoked  # no revoke lost, none invented
    store = TokenStore.in_dir(tmp_path)
    for token_id in created:
        assert (store.verify(plain[token_id]) is None) == (token_id in revoked)
    assert stat.S_IMODE((tmp_path / "tokens.json").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_the_command_creates_lists_and_revokes(tmp_path):
    out = northstar("tokens", "create", "--name", "bi", "--scope", "metrics:read", "--data-dir", str(tmp_path))
    plain = out.stdout.strip().splitlines()[-1]
    assert plain.startswith("nst_") and plain not in (tmp_path / "tokens.json").read_text()
    assert (tmp_path / "tokens.required").exists()
    northstar("tokens", "revoke", "bi", "--data-dir", str(tmp_path))
    listing = northstar("tokens", "list", "--data-dir", str(tmp_path)).stdout
    assert "bi" in listing and TokenStore.in_dir(tmp_path).verify(plain) is None
    again = northstar("tokens", "revoke", "bi", "--data-dir", str(tmp_path), check=False)
    assert again.returncode == 1 and "no active token" in again.stderr


def _write(tmp_path: Path, content) -> TokenStore:
    (tmp_path / "tokens.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return TokenStore.in_dir(tmp_path)


GOOD = {
    "id": "a1b2c3d4e5f6",
    "name": "bi",
    "scopes": ["metrics:read"],
    "policy": [],
    "created_at": "2026-01-01T00:00:00+00:00",
    "sha256": "0" * 64,
}


@pytest.mark.parametrize(
    "content, problem",
    [
        ("", "tokens.json is empty"),
        ('{"tokens": [', "not valid JSON"),
        ("[]", 'an object with a "tokens" list'),
        (
            {"tokens": [GOOD, {**GOOD, "id": "ffff0000aaaa", "name": "x", "scopes": ["root"]}]},
            "record 2 (id 'ffff0000aaaa') (name 'x') is invalid: scopes.0",
        ),
        ({"tokens": [{**GOOD, "revoked": True}]}, "record 1 (id 'a1b2c3d4e5f6') (name 'bi') is invalid: revoked"),
        ({"tokens": [{**GOOD, "sha256": "abc"}]}, "sha256"),
        ({"tokens": [GOOD, GOOD]}, "the id 'a1b2c3d4e5f6' is used twice"),
        ({"tokens": [{**GOOD, "created_at": "yesterday"}]}, "created_at"),
    ],
)
def test_an_invalid_store_is_an_error_naming_the_problem(tmp_path, content, problem):
    store = _write(tmp_path, content)
    with pytest.raises(TokenStoreUnavailable) as caught:
        store.snapshot()
    assert problem in caught.value.message
    # Nothing is written over a store that does not validate.
    before = (tmp_path / "tokens.json").read_bytes()
    with pytest.raises(TokenStoreUnavailable, match="cannot change the tokens"):
        store.create("new", ["metrics:read"])
    assert (tmp_path / "tokens.json").read_bytes() == before
    cli = northstar("tokens", "list", "--data-dir", str(tmp_path), check=False)
    assert cli.returncode == 1 and problem.split(" (")[0] in cli.stderr and "Traceback" not in cli.stderr


def test_a_valid_store_loads(tmp_path):
    store = _write(tmp_path, {"tokens": [GOOD]})
    assert [t.name for t in store.list()] == ["bi"]


def test_once_tokens_existed_a_missing_store_fails_closed(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    assert not store.requires_tokens() and store.snapshot().tokens == {}  # never had a token: open
    store.create("bi", ["metrics:read"])
    store.revoke("bi")
    assert store.requires_tokens() and not store.has_active()  # revoking the last one stays closed
    (tmp_path / "tokens.json").unlink()
    fresh = TokenStore.in_dir(tmp_path)  # a starting server: the marker says tokens existed
    with pytest.raises(TokenStoreUnavailable, match="missing, but tokens have been created"):
        fresh.snapshot()
    (tmp_path / "tokens.required").unlink()
    with pytest.raises(TokenStoreUnavailable):
        store.snapshot()  # a running server remembers, even with the marker gone too
    assert not TokenStore.in_dir(tmp_path).requires_tokens()


def test_a_store_emptied_in_place_is_reread_and_fails_closed(tmp_path):
    store = TokenStore.in_dir(tmp_path)
    _, plain = store.create("bi", ["metrics:read"])
    assert store.verify(plain) is not None
    inode = (tmp_path / "tokens.json").stat().st_ino
    (tmp_path / "tokens.json").write_text("")  # `> tokens.json`: same file, no content
    assert (tmp_path / "tokens.json").stat().st_ino == inode
    with pytest.raises(TokenStoreUnavailable, match="empty"):
        store.verify(plain)
