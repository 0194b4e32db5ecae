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

from perpd.records import Event
from perpd.store import _schema
from perpd.store._thread import NORMAL, URGENT, DbThread

T = TypeVar("T")
log = logging.getLogger(__name__)


class Connection(sqlite3.Connection):
    """The writer's connection; ``pending`` collects the events a unit appends."""

    pending: list[Event] | None = None


def connect(path: str | Path) -> Connection:
    """Open ``path`` for the writer thread: WAL, foreign keys, autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, factory=Connection)
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


Listener = Callable[[list[Event]], None]


class Store:
    """The daemon's only door to the database. Create, then ``await open()``."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db = DbThread(lambda: connect(self.path))
        self._last_seq = 0
        self._committed = trio.Event()
        self._listeners: list[Listener] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self.writes = 0

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self._db.start)
        self._last_seq = await self._db.run(_last_seq)

    async def close(self) -> None:
        await trio.to_thread.run_sync(self._db.stop)

    @property
    def last_seq(self) -> int:
        """The newest committed event's ``seq``."""
        return self._last_seq

    def add_listener(self, listener: Listener) -> int:
        """Call ``listener(events)`` after each commit that appended events, in ``seq``
        order, on the trio thread; returns the last ``seq`` committed before it was added.

        A listener must be quick and must not raise (it runs as a trio callback).
        """
        self._listeners.append(listener)
        return self._last_seq

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, urgent: bool = False) -> T:
        """Run ``fn(conn)`` as one transaction; all or nothing. Not cancellable once sent.

        ``urgent`` units (settlement) run before queued normal ones (order flow, reads).
        The events the unit appended are published to the listeners from the database
        thread right after COMMIT, through the trio token's FIFO queue: listeners see
        every commit in ``seq`` order, and before the writer's own task resumes.
        """
        token = self._token
        assert token is not None, "Store.open() first"

        def unit(conn: sqlite3.Connection) -> T:
            assert isinstance(conn, Connection)
            conn.pending = []
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.pending = None
                conn.execute("ROLLBACK")
                raise
            events, conn.pending = conn.pending, None
            if events:
                token.run_sync_soon(self._publish, events)
            return result

        result = await self._db.run(unit, URGENT if urgent else NORMAL)
        self.writes += 1
        return result

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the database thread; it sees only committed state."""
        return await self._db.run(fn)

    def _publish(self, events: list[Event]) -> None:
        self._last_seq = events[-1].seq
        self._committed.set()
        self._committed = trio.Event()
        for listener in self._listeners:
            try:
                listener(events)
            except Exception:  # never let a listener take the trio run down
                log.exception("store listener %r failed", listener)

    async def wait_seq_after(self, seen: int) -> int:
        """Block until an event newer than ``seen`` is committed; cancel-safe."""
        while self._last_seq <= seen:
            await self._committed.wait()
        return self._last_seq

    def statistics(self) -> dict[str, int]:
        return {"writes": self.writes, "last_seq": self._last_seq}
