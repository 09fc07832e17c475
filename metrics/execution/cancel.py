"""Stopping warehouse work a caller no longer wants (a cancel request, a closed connection).

A caller that may cancel runs its engine calls inside `cancellable(token)`; every `SqlClient`
registers, for the statement it is running, how to interrupt it (DuckDB `cursor.interrupt()`,
PostgreSQL `conn.cancel()`, Spark `cancelJobGroup`). `token.cancel()` from any thread then
stops the statement in the warehouse, so the worker thread running it is freed at once
rather than when the query would have ended. The token travels in a context variable, so no
engine signature changes and calls made without one cannot be cancelled (nothing to do).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from metrics.errors import QueryCancelled

Interrupt = Callable[[], object]

_current: contextvars.ContextVar[Cancellation | None] = contextvars.ContextVar("northstar_cancellation", default=None)
# An interrupt can land just before the warehouse starts the statement (DuckDB ignores it
# then); it is repeated at these delays while the statement is still registered.
_REPEATS = (0.05, 0.2, 0.5, 1.0)


class Cancellation:
    """A handle one caller holds on the warehouse statements it starts; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._interrupts: dict[int, Interrupt] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        """Stop the statement running now and refuse every later one."""
        with self._lock:
            self._cancelled = True
        self._interrupt_all()
        for delay in _REPEATS:
            timer = threading.Timer(delay, self._interrupt_all)
            timer.daemon = True
            timer.start()

    def _interrupt_all(self) -> None:
        with self._lock:
            interrupts = list(self._interrupts.values())
        for interrupt in interrupts:
            try:
                interrupt()
            except Exception:  # the statement may have just ended; nothing left to stop
                pass

    def check(self) -> None:
        if self._cancelled:
            raise QueryCancelled("canceling statement due to user request")

    @contextmanager
    def interruptible(self, interrupt: Interrupt) -> Iterator[None]:
        """Registers how to interrupt the statement run inside the block."""
        self.check()
        with self._lock:
            key = self._next = self._next + 1
            self._interrupts[key] = interrupt
        try:
            yield
        finally:
            with self._lock:
                self._interrupts.pop(key, None)


@contextmanager
def cancellable(token: Cancellation) -> Iterator[Cancellation]:
    """Engine calls inside the block (in this thread or context) can be stopped by `token`."""
    reset = _current.set(token)
    try:
        yield token
    finally:
        _current.reset(reset)


@contextmanager
def interruptible(interrupt: Interrupt) -> Iterator[Cancellation | None]:
    """For `SqlClient`s: run one statement, interruptible by the caller's token if it has one.

    Raises QueryCancelled at once if the caller has already cancelled."""
    token = _current.get()
    if token is None:
        yield None
        return
    with token.interruptible(interrupt):
        yield token


def current() -> Cancellation | None:
    return _current.get()
