"""Issue 8 finding 7: the WAL grown behind a long reader shrinks back once the reader is
gone, and a position update rewrites only what changed (no ``INSERT OR REPLACE``)."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import trio

from tests.conftest import Agent, Server
from tests.daemon_proc import SqliteShell, daemon, open_position, verify

LIMIT = 1024 * 1024  # --db-wal-limit for the test: 1 MiB


def wal_size(db: Path) -> int:
    try:
        return os.path.getsize(f"{db}-wal")
    except FileNotFoundError:
        return 0


async def until(condition: Callable[[], bool], timeout_s: float) -> None:
    with trio.fail_after(timeout_s):
        while True:
            if condition():
                return
            await trio.sleep(0.1)


async def test_wal_shrinks_after_a_long_reader_under_write_load(tmp_path: Path) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db, "--db-wal-limit", str(LIMIT)) as d:
        stop = trio.Event()

        async def load(agent: Agent) -> None:
            while not stop.is_set():
                await agent.fund("1")

        async with trio.open_nursery() as n:
            for _ in range(6):
                n.start_soon(load, d.agent())
            reader = SqliteShell(db)
            try:
                # a read transaction pins the snapshot: no checkpoint can pass it
                await reader.ask("BEGIN; SELECT count(*) FROM accounts;", "reading")
                await until(lambda: wal_size(db) >= 4 * LIMIT, 60)
                grown = wal_size(db)
            finally:
                reader.send("COMMIT;")
                reader.close()
            # still under load: the checkpointer and journal_size_limit bring it back
            await until(lambda: wal_size(db) <= LIMIT, 20)
            stop.set()
        # (under load it then grows again up to SQLite's own 1,000-page checkpoints, and
        # is cut back each time; at rest it stays under the limit)
        await until(lambda: wal_size(db) <= LIMIT, 15)
        assert grown > 4 * LIMIT
        metrics = (await d.http.get("/metrics")).text
        assert "perpd_store_checkpoints" in metrics
    code, out = await verify(db)
    assert code == 0 and "books balance" in out, out


async def test_position_updates_keep_the_row(server: Server) -> None:
    """Funding, partial closes and the final close UPDATE the row in place: the rowid
    (and with it every index entry on unchanged columns) stays."""
    requester, maker = server.agent(), server.agent()
    await requester.fund("10000")
    await maker.fund("10000")
    await server.pin("SOL-PERP", "150")
    pos = await open_position(requester, maker, "SOL-PERP", expires_in=60)
    pid = pos["position_id"]

    def rowid(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT rowid FROM positions WHERE position_id = ?", (pid,))
        return int(row.fetchone()[0])

    first = await server.venue.read(rowid)
    await requester.ok("/trade/close", {"position_id": pid, "size_percent": 30})
    assert await server.venue.read(rowid) == first
    await requester.ok("/trade/close", {"position_id": pid})
    assert await server.venue.read(rowid) == first
    await server.pin("SOL-PERP", "151")
    await server.pin("SOL-PERP", "152")  # the pin is upserted, not replaced

    def pins(conn: sqlite3.Connection) -> list[tuple[int, str, int]]:
        return conn.execute("SELECT rowid, market, price FROM pinned_prices").fetchall()

    assert await server.venue.read(pins) == [(1, "SOL-PERP", 15_200_000_000)]
    await server.assert_balanced()
