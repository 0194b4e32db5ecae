"""The store and the engine without HTTP: atomic units, migrations, deadlines checked at accept."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import trio

from perpd import engine
from perpd.errors import Conflict
from perpd.store import MIGRATIONS, Store, connect, status
from perpd.store import queries as q
from perpd.store._thread import NORMAL, URGENT, DbThread
from tests.engine_units import FUNDS, funded_request

PRICE = 50_000 * 10**8


def ctx(now: float) -> engine.Ctx:
    return engine.Ctx(now, 28_800, lambda market: PRICE)


async def test_a_failing_unit_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    await store.open()
    try:
        await store.write(lambda conn: engine.deposit(conn, ctx(0), "alice", 100))
        before = await store.read(q.state_digest)

        def half_done(conn: sqlite3.Connection) -> None:
            engine.deposit(conn, ctx(0), "alice", 50)
            q.append_event(conn, 0, "test", {}, market=None, public=True)
            raise RuntimeError("crash in the middle")

        with pytest.raises(RuntimeError):
            await store.write(half_done)
        assert await store.read(q.state_digest) == before
        assert (await store.read(q.ledger))["deposits"] == 100
    finally:
        await store.close()


async def test_accept_checks_deadlines_itself(tmp_path: Path) -> None:
    """No timer runs here: the accepting transaction alone refuses what is past due."""
    store = Store(tmp_path / "s.db")
    await store.open()
    try:
        t = 1_000_000.0

        def setup(conn: sqlite3.Connection) -> tuple[str, str, str]:
            r = funded_request(conn, ctx(t))
            short = engine.create_quote(
                conn,
                ctx(t),
                request_id=r.request_id,
                agent_id="mm",
                rate=500,
                collateral=100 * 10**6,
                valid_for=5,
            )
            engine.deposit(conn, ctx(t), "mm2", FUNDS)  # one live quote per maker
            long = engine.create_quote(
                conn,
                ctx(t),
                request_id=r.request_id,
                agent_id="mm2",
                rate=500,
                collateral=100 * 10**6,
                valid_for=60,
            )
            return r.request_id, short.quote_id, long.quote_id

        rid, q_short, q_long = await store.write(setup)

        def accept_at(now: float, quote_id: str) -> object:
            return lambda conn: engine.accept(
                conn, ctx(now), agent_id="req", request_id=rid, quote_id=quote_id
            )

        with pytest.raises(Conflict) as exc:
            await store.write(accept_at(t + 5, q_short))  # the quote's deadline, to the second
        assert exc.value.code == "quote_expired"
        with pytest.raises(Conflict) as exc:
            await store.write(accept_at(t + 30, q_long))  # the request's deadline
        assert exc.value.code == "request_expired"
        # both are still "open"/"live" in the table: it was the deadline, not a timer
        assert (await store.read(lambda c: q.get_request(c, rid))).status == "open"  # type: ignore[union-attr]
        position = await store.write(accept_at(t + 29.9, q_long))
        assert position.state.entry_price == PRICE
    finally:
        await store.close()


def test_migrations_are_recorded_and_status_reads_only(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    sqlite3.connect(path).close()
    raw = sqlite3.connect(path)
    assert [applied for _, _, applied in status(raw)] == [False] * len(MIGRATIONS)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 0
    raw.close()
    conn = connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert all(applied for _, _, applied in status(conn))
    conn.close()
    connect(path).close()  # idempotent on an up-to-date file


def test_verify_names_what_is_wrong(tmp_path: Path) -> None:
    conn = connect(tmp_path / "v.db")
    assert q.verify(conn) == []
    conn.execute("INSERT INTO accounts (agent_id, free, locked) VALUES ('a', 5, 0)")
    assert [p.split(":")[0] for p in q.verify(conn)] == ["conservation"]
    conn.execute("UPDATE ledger SET deposits = 12")
    conn.execute("UPDATE accounts SET locked = 7")
    assert [p.split(":")[0] for p in q.verify(conn)] == ["locked"]
    conn.execute("INSERT INTO events (seq, ts, type, public, data) VALUES (3, 0, 'x', 1, '{}')")
    assert [p.split(":")[0] for p in q.verify(conn)] == ["locked", "events"]
    conn.close()


async def test_urgent_units_run_before_queued_order_flow(tmp_path: Path) -> None:
    db = DbThread(lambda: sqlite3.connect(tmp_path / "p.db", check_same_thread=True))
    await trio.to_thread.run_sync(db.start)
    gate, order = threading.Event(), []

    def job(name: str) -> object:
        def run(conn: sqlite3.Connection) -> None:
            if name == "blocker":
                gate.wait(5)
            order.append(name)

        return run

    async with trio.open_nursery() as nursery:
        nursery.start_soon(db.run, job("blocker"))
        await trio.sleep(0.05)  # the blocker holds the thread; the rest queue up
        for i in range(3):
            nursery.start_soon(db.run, job(f"quote{i}"), NORMAL)
        await trio.sleep(0.05)
        nursery.start_soon(db.run, job("accept"), URGENT)
        await trio.sleep(0.05)
        gate.set()
    await trio.to_thread.run_sync(db.stop)
    assert order[0] == "blocker" and order[1] == "accept"
    assert sorted(order[2:]) == ["quote0", "quote1", "quote2"]


async def test_a_quote_expiring_alone_is_told_to_its_maker_and_requester(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.db")
    await store.open()
    try:
        t = 2_000_000.0

        def setup(conn: sqlite3.Connection) -> str:
            r = funded_request(
                conn,
                ctx(t),
                market="ETH-PERP",
                side=-1,
                size=100 * 10**6,
                leverage=5,
                expires_in=60,
            )
            return engine.create_quote(
                conn,
                ctx(t),
                request_id=r.request_id,
                agent_id="mm",
                rate=10,
                collateral=10 * 10**6,
                valid_for=5,
            ).quote_id

        qid = await store.write(setup)
        seen = await store.read(lambda c: q.count_events(c))
        assert await store.write(lambda c: engine.expire_due(c, ctx(t + 5))) == 1
        (event,) = await store.read(lambda c: q.events_after(c, seen, 10))
        assert event.type == "quote_expired" and event.data["quote_id"] == qid
        assert event.market == "ETH-PERP" and sorted(event.audience) == ["mm", "req"]
    finally:
        await store.close()
