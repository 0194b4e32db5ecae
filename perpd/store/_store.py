"""The store: one SQLite file in WAL mode, one writer thread, one transaction per change.

Every state change is a function of the connection run by `Store.write` inside
``BEGIN IMMEDIATE`` … ``COMMIT`` together with the events it appends, so the event log
and the state can never disagree; an exception rolls the whole unit back. Listeners
(the WebSocket hub) learn of a new last ``seq`` only after the commit.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import trio

from perpd.store import _schema
from perpd.store._thread import DbThread

T = TypeVar("T")
log = logging.getLogger(__name__)


def connect(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` for the writer thread: WAL, foreign keys, autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL: a committed transaction survives a crash of the process (kill -9);
    # only a power loss may drop the last transactions, never corrupt the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 5000")
    _schema.migrate(conn)
    return conn


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


class Store:
    """The daemon's only door to the database. Create with `open_store`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = DbThread(lambda: connect(self.path))
        self._last_seq = 0
        self._committed = trio.Event()
        self.writes = 0

    async def open(self) -> None:
        await trio.to_thread.run_sync(self._db.start)
        self._last_seq = await self._db.run(_last_seq)

    async def close(self) -> None:
        await trio.to_thread.run_sync(self._db.stop)

    @property
    def last_seq(self) -> int:
        """The newest committed event's ``seq``."""
        return self._last_seq

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` as one transaction; all or nothing. Not cancellable once sent."""

        def unit(conn: sqlite3.Connection) -> tuple[T, int]:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                seq = _last_seq(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return result, seq

        result, seq = await self._db.run(unit)
        self.writes += 1
        self._publish(seq)
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the database thread; it sees only committed state."""
        return await self._db.run(fn)

    def _publish(self, seq: int) -> None:
        if seq > self._last_seq:
            self._last_seq = seq
            self._committed.set()
            self._committed = trio.Event()

    async def wait_seq_after(self, seen: int) -> int:
        """Block until an event newer than ``seen`` is committed; cancel-safe."""
        while self._last_seq <= seen:
            await self._committed.wait()
        return self._last_seq

    def statistics(self) -> dict[str, int]:
        return {"writes": self.writes, "last_seq": self._last_seq}
