"""Read-only views of the state file for operators (`perpd inspect`, `perpd db status`)
and its online backup (`perpd backup`).

Everything here runs on a read-only connection (``mode=ro``, ``query_only``) beside a
running daemon: one read transaction per view, so each view is one consistent snapshot,
and nothing here can write the daemon's file.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from perpd.records import Account
from perpd.store import _schema
from perpd.store import queries as q
from perpd.store._store import connect_reader
from perpd.store.outbox import OutboxStatus

T = TypeVar("T")


@contextmanager
def snapshot(db: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection inside one read transaction (one snapshot)."""
    if not Path(db).exists():
        raise FileNotFoundError(f"no database at {db}")
    conn = connect_reader(db)
    try:
        conn.execute("BEGIN")
        yield conn
        conn.execute("COMMIT")
    finally:
        conn.close()


def read(db: str | Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    with snapshot(db) as conn:
        return fn(conn)


def page_accounts(conn: sqlite3.Connection, after: str, limit: int) -> list[tuple[Account, int]]:
    """Accounts with agent_id > ``after`` in id order, each with its open positions."""
    rows = conn.execute(
        "SELECT a.agent_id, a.free, a.locked, a.withdrawals, "
        "(SELECT count(*) FROM positions p WHERE p.requester = a.agent_id "
        "AND p.status IN ('open', 'pending')) + "
        "(SELECT count(*) FROM positions p WHERE p.maker = a.agent_id "
        "AND p.status IN ('open', 'pending')) "
        "FROM accounts a WHERE a.agent_id > ? ORDER BY a.agent_id LIMIT ?",
        (after, limit),
    )
    return [(Account(a, free, locked, w), n) for a, free, locked, w, n in rows]


def last_seq(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


def outbox_depth(conn: sqlite3.Connection) -> dict[OutboxStatus, int]:
    """Outbox rows by status; every status present (0 when none)."""
    counts = dict.fromkeys(OutboxStatus, 0)
    for status, n in conn.execute("SELECT status, count(*) FROM outbox GROUP BY status"):
        counts[OutboxStatus(status)] = int(n)
    return counts


def chain_meta(conn: sqlite3.Connection) -> dict[str, str]:
    """The local chain's metadata, without its secret (the keys derive from it)."""
    rows = conn.execute("SELECT key, value FROM chain_meta WHERE key != 'secret' ORDER BY key")
    return {k: v for k, v in rows}


def has_local_chain(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM chain_meta WHERE key = 'secret'").fetchone() is not None


def db_status(db: str | Path) -> dict[str, Any]:
    """Applied and pending migrations, journal mode and file sizes; reads only."""
    path = Path(db)
    with snapshot(path) as conn:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        journal = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        migrations = _schema.status(conn)
    wal = Path(f"{path}-wal")
    return {
        "path": str(path),
        "user_version": version,
        "known_migrations": len(migrations),
        "newer_than_this_perpd": version > len(migrations),
        "applied": [name for _, name, done in migrations if done],
        "pending": [name for _, name, done in migrations if not done],
        "journal_mode": journal,
        "page_size": page_size,
        "pages": pages,
        "file_bytes": path.stat().st_size,
        "wal_bytes": wal.stat().st_size if wal.exists() else 0,
    }


def backup(db: str | Path, dest: str | Path) -> dict[str, Any]:
    """Copy ``db`` to ``dest`` with SQLite's online backup API, then check the copy.

    The copy is one step (``pages=-1``): one read transaction, so it is the snapshot of
    one instant, and in WAL mode the daemon's writer never waits for it. It is written
    to ``dest.partial`` and renamed into place only once its integrity check and books
    pass, so ``dest`` is either a whole verified backup or absent.
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} exists: a backup never overwrites a file")
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    src = connect_reader(db)
    out = sqlite3.connect(partial, isolation_level=None)
    try:
        src.backup(out, pages=-1)
        out.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        problems = q.verify(out)  # the integrity check, conservation, no event hole
        report: dict[str, Any] = {
            "backup": str(dest),
            "bytes": 0,
            "last_seq": last_seq(out),
            "user_version": int(out.execute("PRAGMA user_version").fetchone()[0]),
            "books": q.ledger(out),
        }
    finally:
        out.close()
        src.close()
    if problems:
        partial.unlink(missing_ok=True)
        raise RuntimeError("the copy did not verify: " + "; ".join(problems))
    os.replace(partial, dest)
    report["bytes"] = dest.stat().st_size
    return report


def event_counts_after(
    conn: sqlite3.Connection, since: int
) -> tuple[int, dict[tuple[str, str], int]]:
    """(the last seq, events after ``since`` counted by (type, market or "")): what a
    scrape adds to the event counters since the one before."""
    counts: dict[tuple[str, str], int] = {}
    last = since
    rows = conn.execute(
        "SELECT type, coalesce(market, ''), count(*), max(seq) FROM events WHERE seq > ? "
        "GROUP BY type, market",
        (since,),
    )
    for type_, market, n, top in rows:
        counts[(type_, market)] = int(n)
        last = max(last, int(top))
    return last, counts


def open_by_market(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """{market: (open positions, open notional in micro-USDC)}."""
    rows = conn.execute(
        "SELECT market, count(*), coalesce(sum(notional), 0) FROM positions "
        "WHERE status = 'open' GROUP BY market"
    )
    return {m: (int(n), int(notional)) for m, n, notional in rows}
