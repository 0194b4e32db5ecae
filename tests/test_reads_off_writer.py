"""Issue 11, reads off the writer: every read route answers while the writer thread is
busy with a long unit of work, and the read-only pool (``--db-readers``) serves that
many reads at once."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import trio

from perpd.config import Config
from perpd.store import Store
from tests.conftest import Server, base_config, funded, start_server

REQ = {
    "market": "ETH-PERP",
    "side": "long",
    "size_usdc": "500",
    "leverage": 5,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


async def test_the_read_pool_serves_as_many_reads_at_once_as_it_has_readers(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "r.db", readers=3)
    await store.open()
    try:
        # three reads that can only finish together: each waits for the other two
        together = threading.Barrier(3, timeout=5)

        def meet(conn: sqlite3.Connection) -> int:
            together.wait()
            return int(conn.execute("SELECT count(*) FROM accounts").fetchone()[0])

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(store.read, meet)
        assert together.broken is False
    finally:
        await store.close()


async def test_the_daemon_sizes_its_read_pool_from_config(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    with pytest.raises(ValueError, match="db readers"):
        Config(db_readers=0)
    s = await start_server(nursery, base_config(tmp_path, db_readers=4))
    try:
        together = threading.Barrier(4, timeout=5)
        async with trio.open_nursery() as inner:
            for _ in range(4):
                inner.start_soon(s.venue.read, lambda conn: together.wait())
        assert together.broken is False
    finally:
        await s.http.aclose()
        s.shutdown.set()


async def test_reads_answer_while_the_writer_is_held_by_a_long_unit(server: Server) -> None:
    maker, taker = await funded(server, 2)
    await server.pin("ETH-PERP", "3000")
    req = await taker.ok("/trade/request", REQ, 201)
    quote = {"request_id": req["request_id"], "funding_rate": "0.0005", "collateral_usdc": "50"}
    q = await maker.ok("/trade/quote", quote, 201)
    pos = (
        await taker.ok(
            "/trade/accept", {"request_id": req["request_id"], "quote_id": q["quote_id"]}
        )
    )["position"]
    release = threading.Event()

    def long_unit(conn: sqlite3.Connection) -> None:
        assert release.wait(10)

    reads = [
        "/markets",
        "/positions?status=open",
        f"/positions/{pos['position_id']}",
        "/requests",
        f"/requests/{req['request_id']}",
        f"/quotes?request_id={req['request_id']}",
        "/metrics",
    ]
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.venue.store.write, long_unit)  # holds the writer thread
        await trio.sleep(0.05)
        written = trio.Event()

        async def a_write() -> None:
            await taker.ok("/trade/request", REQ, 201)
            written.set()

        nursery.start_soon(a_write)  # queued behind the long unit
        started = time.monotonic()
        for path in reads:
            r = await server.http.get(path)
            assert r.status_code == 200, (path, r.text)
        signed = await taker.get(f"/accounts/{taker.id}")
        assert signed.status_code == 200, signed.text
        events = await taker.get("/events?since=0")
        assert events.status_code == 200 and events.json()["events"], events.text
        assert time.monotonic() - started < 3
        assert not written.is_set()  # the write is still waiting for the writer...
        positions = (await server.http.get("/positions?status=open")).json()["positions"]
        assert [p["position_id"] for p in positions] == [pos["position_id"]]
        release.set()  # ...and goes through once the long unit ends
        with trio.fail_after(5):
            await written.wait()
