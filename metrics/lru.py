"""A bounded, thread-safe least-recently-used map: the one cache type of the engine and its
interfaces (query results, experiment statistics and readouts, encoded HTTP answers, the SQL
endpoint's per-build catalogs).

Sync routes and the SQL endpoint's workers read and fill these caches from several threads, so
every operation holds a lock. `get_or_compute` computes one missing value at a time: a caller
asking while another computes waits for that value (a server warming a build's catalog at
start answers its first clients from it, whoever they are).

>>> cache = Lru(2)
>>> cache.put("a", 1); cache.put("b", 2); cache.get("a")
1
>>> cache.put("c", 3)  # "b" is the least recently used
>>> cache.get("b") is None, len(cache)
(True, 2)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._computing = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value kept for `key` (now the most recently used), or None."""
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
            return hit

    def put(self, key: K, value: V) -> None:
        """Keep `value` for `key`, dropping the least recently used beyond the size."""
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def get_or_compute(self, key: K, compute: Callable[[], V]) -> V:
        """The value kept for `key`, or `compute()` kept and returned."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._computing:
            hit = self.get(key)  # computed by the caller this one waited for
            if hit is None:
                hit = compute()
                self.put(key, hit)
            return hit

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
