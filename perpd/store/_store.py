"""The store: one SQLite file in WAL mode, one writer thread, one transaction per change.

Every state change is a function of the connection run by `Store.write` inside
``BEGIN IMMEDIATE`` … ``COMMIT`` together with the events it appends, so the event log
and the state can never disagree; an exception rolls the whole unit back. Units queued
together share one transaction (each in its own SAVEPOINT) and one commit. Listeners
(the WebSocket hub) learn of a new last ``seq`` only after the commit.

Reads run on their own threads over read-only connections (``mode=ro``,
``query_only``), each read one snapshot: in WAL they never wait for the writer, nor
for another process holding the write lock. A write waits at most ``busy_timeout_ms``
for the lock, counting its time in the queue, so handlers cannot pile up behind a
locked file; a busy, full or failing disk is `Unavailable` (503), never a 500.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import trio
from outcome import Error, Outcome, Value

from perpd.records import Event
from perpd.store import _schema
from perpd.store._errors import transient
from perpd.store._thread import NORMAL, URGENT, DbThread

T = TypeVar("T")
log = logging.getLogger(__name__)


BUSY_TIMEOUT_MS = 2_000  # the longest a write waits for the lock (queue time included)
WAL_LIMIT_BYTES = 16 * 1024 * 1024  # journal_size_limit: the WAL is cut back to this
# The writer's page cache: SQLite's default 2 MiB for order flow, whose units touch a few
# pages each (a miss is a read from the OS's cache); 32 MiB while a funding tick's units
# rewrite the liquidation-bound and audience indexes at random, which would otherwise
# re-read them per batch. A cache only gives memory back when it is sized down, so a
# daemon that kept 32 MiB grew by all of it as its file grew (bench/soak.py: +39 MB in
# 240 s of order flow, +11 MB with 2 MiB).
WRITER_CACHE_KIB = 2 * 1024
TICK_CACHE_KIB = 32 * 1024


def size_cache(conn: sqlite3.Connection, kib: int) -> None:
    """Resize the page cache of ``conn`` (not transactional: in effect at once; sized
    down, it frees the pages past the new size as soon as they are clean)."""
    conn.execute(f"PRAGMA cache_size = -{int(kib)}")


class Connection(sqlite3.Connection):
    """The writer's connection; ``pending`` collects the events a unit appends."""

    pending: list[Event] | None = None
    busy_ms: int = -1  # the busy_timeout last set on it
    # undo steps for what a unit did outside SQLite (the local chain's SVM): run, in
    # reverse order, when the unit does not commit (its own error or a failed COMMIT)
    on_rollback: list[Callable[[], None]] | None = None


def on_rollback(conn: sqlite3.Connection, undo: Callable[[], None]) -> None:
    """Run ``undo`` if the current unit does not commit (see `Connection.on_rollback`)."""
    assert isinstance(conn, Connection) and conn.on_rollback is not None, "inside a unit"
    conn.on_rollback.append(undo)


def set_busy_timeout(conn: Connection, ms: int) -> None:
    if conn.busy_ms != ms:
        conn.execute(f"PRAGMA busy_timeout = {int(ms)}")
        conn.busy_ms = ms


def connect(
    path: str | Path,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    wal_limit_bytes: int = WAL_LIMIT_BYTES,
) -> Connection:
    """Open ``path`` for the writer thread: WAL, foreign keys, autocommit mode."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, factory=Connection)
    set_busy_timeout(conn, busy_timeout_ms)
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL: a committed transaction survives a crash of the process (kill -9);
    # only a power loss may drop the last transactions, never corrupt the file.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # After a checkpoint lets the WAL restart, cut the file back to this size: a WAL
    # grown behind a long reader does not stay large forever.
    conn.execute(f"PRAGMA journal_size_limit = {int(wal_limit_bytes)}")
    size_cache(conn, WRITER_CACHE_KIB)  # a funding tick sizes it up while it runs
    # Checkpoint (and fsync) in a COMMIT when the WAL reaches the size it is cut back
    # to, not every 1,000 pages (4 MB): a funding tick's units each dirty a few MB of
    # the same index pages, which one checkpoint then copies once instead of per unit
    # (the checkpointer service still bounds the WAL behind long readers).
    conn.execute(f"PRAGMA wal_autocheckpoint = {max(1000, int(wal_limit_bytes) // 4096)}")
    _schema.migrate(conn)
    return conn


def connect_checkpointer(path: str | Path, *, wal_limit_bytes: int = WAL_LIMIT_BYTES) -> Connection:
    """The checkpoints' own connection: a checkpoint copies megabytes and syncs the file,
    which on the writer's connection stalls every unit behind it; on this one a PASSIVE
    checkpoint runs beside the writer (WAL lets it), and only the TRUNCATE that follows a
    complete one takes the write lock, briefly and without waiting for it."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=True, factory=Connection)
    set_busy_timeout(conn, 0)
    conn.execute(f"PRAGMA journal_size_limit = {int(wal_limit_bytes)}")
    return conn


def connect_reader(
    path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite3.Connection:
    """A read-only connection (``mode=ro`` and ``query_only``): it can never write."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=True)
    conn.execute("PRAGMA query_only = 1")
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


def _rollback(conn: sqlite3.Connection, cause: BaseException) -> None:
    """Roll back if a transaction is still open, never hiding ``cause`` behind its error.

    SQLite may already have rolled back (a failed COMMIT on a full disk does): a ROLLBACK
    then fails with "no transaction is active", which must not replace the real error.
    """
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.error("ROLLBACK after %r failed too: %s", cause, exc)


def _checkpoint(conn: sqlite3.Connection, truncate: bool) -> tuple[int, int, bool]:
    """PASSIVE checkpoint, then (``truncate``) TRUNCATE if every frame got back into the
    database.

    Neither waits: with the busy wait off, a reader still using old frames makes the
    checkpoint stop where it is (PASSIVE) or give up (TRUNCATE), and the next one tries
    again. Only a WAL grown past ``journal_size_limit`` (behind a long reader) is
    truncated here: TRUNCATE takes the write lock, which a unit that does not wait for
    it (the funding scheduler's) would meet as busy; a smaller WAL restarts from its
    start at the writer's next commit and is cut back to the limit by SQLite itself.
    Returns (frames in the WAL, frames checkpointed, truncated).
    """
    assert isinstance(conn, Connection)
    before = conn.busy_ms
    set_busy_timeout(conn, 0)
    try:
        _, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        truncated = False
        if truncate and frames > 0 and done == frames:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            truncated = busy == 0
        return frames, done, truncated
    finally:
        set_busy_timeout(conn, before)


def _undo_savepoint(conn: sqlite3.Connection) -> bool:
    """Roll a failed unit back to its savepoint; False if the transaction is gone."""
    if not conn.in_transaction:
        return False
    try:
        conn.execute("ROLLBACK TO unit")
        conn.execute("RELEASE unit")
    except sqlite3.Error as exc:
        log.error("ROLLBACK TO a unit's savepoint failed: %s", exc)
        return False
    return True


def _undo_all(done: list[tuple[int, Any, list[Event], list[Callable[[], None]]]]) -> None:
    """The undo steps of units that will not commit, newest unit and step first."""
    for *_, undo in reversed(done):
        for step in reversed(undo):
            step()


@dataclass(frozen=True)
class _Unit(Generic[T]):
    """A write waiting for the writer: its function, lock-wait budget and queue time."""

    fn: Callable[[sqlite3.Connection], T]
    budget_ms: int
    queued: float


def _last_seq(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT max(seq) FROM events").fetchone()
    return int(row[0] or 0)


Listener = Callable[[list[Event]], None]


class Store:
    """The daemon's only door to the database. Create, then ``await open()``."""

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        readers: int = 2,
        wal_limit_bytes: int = WAL_LIMIT_BYTES,
        group_max: int = 32,
    ) -> None:
        self.path = str(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.wal_limit_bytes = wal_limit_bytes
        self._db = DbThread(
            lambda: connect(
                self.path, busy_timeout_ms=busy_timeout_ms, wal_limit_bytes=wal_limit_bytes
            ),
            group=self._run_group,
            group_max=group_max,
        )
        self._readers = DbThread(
            lambda: connect_reader(self.path, busy_timeout_ms=busy_timeout_ms),
            name="perpd-sqlite-read",
            threads=readers,
        )
        self._checkpoints = DbThread(
            lambda: connect_checkpointer(self.path, wal_limit_bytes=wal_limit_bytes),
            name="perpd-sqlite-checkpoint",
        )
        self._last_seq = 0
        self._committed = trio.Event()
        self._listeners: list[Listener] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self.writes = 0
        self.unavailable = 0  # units refused as busy, full or I/O error
        self.checkpoints = 0
        self.truncations = 0

    async def open(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        await trio.to_thread.run_sync(self._db.start)  # creates and migrates the file
        try:
            await trio.to_thread.run_sync(self._readers.start)
            await trio.to_thread.run_sync(self._checkpoints.start)
        except BaseException:
            await trio.to_thread.run_sync(self._readers.stop)
            await trio.to_thread.run_sync(self._db.stop)
            raise
        self._last_seq = await self._db.run(_last_seq)

    async def close(self) -> None:
        await trio.to_thread.run_sync(self._checkpoints.stop)
        await trio.to_thread.run_sync(self._readers.stop)
        await trio.to_thread.run_sync(self._db.stop)

    def wal_bytes(self) -> int:
        """The WAL file's size now (0 if there is none)."""
        try:
            return os.path.getsize(self.path + "-wal")
        except FileNotFoundError:
            return 0

    def writes_waiting(self) -> bool:
        """Whether units wait for the writer now (callable from the writer thread: a long
        unit polls it to commit early and let them run)."""
        return self._db.queued() > 0

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

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        urgent: bool = False,
        wait: bool = True,
        alone: bool = False,
    ) -> T:
        """Run ``fn(conn)`` as one unit; all or nothing. Not cancellable once sent.

        If another process holds the write lock, the unit waits for it at most
        ``busy_timeout_ms`` from the moment it was queued (so units queued behind a
        waiting one do not add up their waits), then raises `Unavailable`. ``wait=False``
        (background services, which retry with backoff) does not wait at all: their
        retries never hold the writer thread while calls from agents are queued.

        ``urgent`` units (settlement) run before queued normal ones (order flow, reads).
        Units queued together commit together (group commit, at most ``group_max``):
        each runs in a SAVEPOINT of one ``BEGIN IMMEDIATE`` … ``COMMIT``, so a unit that
        raises rolls back alone, and no unit's result or events are seen before the
        COMMIT that made them durable. ``alone``: a long unit (a large batch) commits by
        itself, so it never delays the answers of the small units grouped with it.
        The events are published to the listeners from the database thread right after
        COMMIT, through the trio token's FIFO queue: listeners see every commit in
        ``seq`` order, and before the writers' own tasks resume.
        """
        assert self._token is not None, "Store.open() first"
        budget_ms = self.busy_timeout_ms if wait else 0
        unit = _Unit(fn, budget_ms, time.monotonic())
        priority = URGENT if urgent else NORMAL
        result: T
        if alone:
            result = await self._db.run(lambda c: self._run_group(c, [unit])[0].unwrap(), priority)
        else:  # a grouped job's function goes to `_run_group`, which takes `_Unit`s
            result = await self._db.run(unit, priority, grouped=True)  # type: ignore[arg-type]
        self.writes += 1
        return result

    def _run_group(self, conn: sqlite3.Connection, units: list[_Unit[Any]]) -> list[Outcome[Any]]:
        """Run ``units`` in as few transactions as they allow (one, unless SQLite itself
        rolled a transaction back under a failing unit: the others then run again)."""
        assert isinstance(conn, Connection)
        results: list[Outcome[Any] | None] = [None] * len(units)
        todo = list(range(len(units)))
        while todo:
            todo = self._transaction(conn, units, todo, results)
        return results  # type: ignore[return-value]

    def _transaction(
        self,
        conn: Connection,
        units: list[_Unit[Any]],
        todo: list[int],
        results: list[Outcome[Any] | None],
    ) -> list[int]:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT`` over ``todo``; returns what must run again."""
        token = self._token
        assert token is not None
        now = time.monotonic()
        # the lock wait left after the time in the queue, for the most patient unit
        # (in 100 ms steps: the PRAGMA is re-run only when the step changes)
        left = max(units[i].budget_ms - int((now - units[i].queued) * 1000) for i in todo)
        set_busy_timeout(conn, max(0, left) // 100 * 100)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:
            refusal = self._refusal(exc, "write")
            for i in todo:
                results[i] = Error(refusal)
            return []
        done: list[tuple[int, Any, list[Event], list[Callable[[], None]]]] = []
        for pos, i in enumerate(todo):
            conn.pending, conn.on_rollback = [], []
            try:
                conn.execute("SAVEPOINT unit")
                value = units[i].fn(conn)
                conn.execute("RELEASE unit")
            except BaseException as exc:
                undo = conn.on_rollback
                conn.pending = conn.on_rollback = None
                lost = not _undo_savepoint(conn)
                for step in reversed(undo):
                    step()
                results[i] = Error(self._refusal(exc, "write"))
                if lost:  # SQLite rolled everything back: the units before run again
                    _rollback(conn, exc)
                    _undo_all(done)
                    return [j for j, *_ in done] + todo[pos + 1 :]
                continue
            done.append((i, value, conn.pending, conn.on_rollback))
        conn.pending = conn.on_rollback = None
        try:
            conn.execute("COMMIT")
        except BaseException as exc:
            _rollback(conn, exc)
            _undo_all(done)
            refusal = self._refusal(exc, "write")
            for j, *_ in done:
                results[j] = Error(refusal)
            return []
        events = [event for _, _, unit_events, _ in done for event in unit_events]
        if events:
            token.run_sync_soon(self._publish, events)
        for j, value, _, _ in done:
            results[j] = Value(value)
        return []

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a read-only connection, in one snapshot of committed state."""

        def unit(conn: sqlite3.Connection) -> T:
            try:
                conn.execute("BEGIN")
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                _rollback(conn, exc)
                self._raise_transient(exc, "read")
                raise
            return result

        return await self._readers.run(unit)

    async def ping(self) -> None:
        """A round trip through the writer thread (no lock taken): is it alive?"""
        await self._db.run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def checkpoint(self) -> tuple[int, int, bool]:
        """Copy the WAL back into the database and, if no reader needs it, truncate it."""
        try:
            truncate = self.wal_bytes() > self.wal_limit_bytes
            frames, done, truncated = await self._checkpoints.run(
                partial(_checkpoint, truncate=truncate)
            )
        except sqlite3.Error as exc:
            self._raise_transient(exc, "checkpoint")
            raise
        self.checkpoints += 1
        self.truncations += truncated
        return frames, done, truncated

    def _raise_transient(self, exc: BaseException, what: str) -> None:
        """Raise `Unavailable` from a busy/full/I-O error (logging the real cause)."""
        refusal = self._refusal(exc, what)
        if refusal is not exc:
            raise refusal from exc

    def _refusal(self, exc: BaseException, what: str) -> BaseException:
        """`Unavailable` for a busy/full/I-O error (logging the real cause), else ``exc``."""
        refusal = transient(exc)
        if refusal is None:
            return exc
        self.unavailable += 1
        name = getattr(exc, "sqlite_errorname", type(exc).__name__)
        log.warning("database %s refused: %s (%s)", what, exc, name)
        refusal.__cause__ = exc
        return refusal

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
        return {
            "writes": self.writes,
            "groups": self._db.groups,
            "last_seq": self._last_seq,
            "unavailable": self.unavailable,
            "checkpoints": self.checkpoints,
            "truncations": self.truncations,
            "wal_bytes": self.wal_bytes(),
        }
