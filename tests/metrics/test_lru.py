"""The one cache type: least recently used dropped first, one computation per missing key."""

from __future__ import annotations

import threading
import time

from metrics.lru import Lru


def test_the_least_recently_used_goes_first():
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_a_caller_waits_for_the_value_another_is_computing():
    """A server warming a build's catalog at start: a client asking meanwhile gets that value,
    never computes its own (a restricted caller could not)."""
    cache: Lru[str, str] = Lru(4)
    started, calls, answers = threading.Event(), [], []

    def slow() -> str:
        calls.append("slow")
        started.set()
        time.sleep(0.3)
        return "warm"

    def refused() -> str:
        calls.append("refused")
        raise AssertionError("computed a second time")

    warming = threading.Thread(target=lambda: answers.append(cache.get_or_compute("k", slow)))
    warming.start()
    started.wait(5)
    answers.append(cache.get_or_compute("k", refused))
    warming.join()
    assert calls == ["slow"] and answers == ["warm", "warm"]
