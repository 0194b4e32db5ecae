"""How services ride out a database that is briefly unavailable, and isolate one bad record.

A busy, full or failing database (`Unavailable`) is a state of the file, not a bug: the
funding scheduler, the expiry timer and the keeper log it and retry with a growing
delay, so a `sqlite3` shell holding the write lock pauses them instead of stopping the
daemon. Only an error that is not `Unavailable` (a bug) propagates and stops it, except
where one record failing must not stop the venue (the keeper, term closes): those
`Quarantine` the record, log it with its traceback, count it and try it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from perpd.errors import Unavailable

T = TypeVar("T")
log = logging.getLogger(__name__)


class Backoff:
    """Run an async call until it is not refused as `Unavailable`; delays double to a cap."""

    def __init__(self, what: str, *, first_s: float = 0.1, max_s: float = 5.0) -> None:
        self.what = what
        self.first_s = first_s
        self.max_s = max_s
        self.retries = 0

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        delay = self.first_s
        while True:
            try:
                return await fn()
            except Unavailable as exc:
                self.retries += 1
                log.warning("%s: %s; retrying in %.2f s", self.what, exc.message, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, self.max_s)


class Quarantine:
    """Records (positions) whose processing raised a bug: skipped for a while, then retried.

    The pause doubles on each failure of the same record (1 s up to 5 min), so a record
    that always fails costs one log line every few minutes and nothing else.
    """

    def __init__(self, what: str, *, first_s: float = 1.0, max_s: float = 300.0) -> None:
        self.what = what
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0
        self._until: dict[str, tuple[float, float]] = {}  # id -> (retry at, last pause)

    def blocked(self, key: str) -> bool:
        held = self._until.get(key)
        return held is not None and trio.current_time() < held[0]

    def fail(self, key: str, exc: BaseException) -> None:
        """Count and log ``exc`` for ``key`` and hold ``key`` back for the next pause."""
        self.failures += 1
        pause = self.first_s
        if key in self._until:
            pause = min(self._until[key][1] * 2, self.max_s)
        self._until[key] = (trio.current_time() + pause, pause)
        log.error("%s of %s failed; skipped for %.0f s", self.what, key, pause, exc_info=exc)

    def succeeded(self, key: str) -> None:
        self._until.pop(key, None)

    def keep_only(self, keys: set[str]) -> None:
        """Forget records no longer in ``keys`` (closed or settled meanwhile)."""
        self._until = {k: v for k, v in self._until.items() if k in keys}

    def __len__(self) -> int:
        return len(self._until)
