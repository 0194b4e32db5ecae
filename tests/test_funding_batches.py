"""The funding tick's batch path at its edges: the money rule exact where N × f × t
passes 2^63 (SQLite's integers cannot hold it), chunk and unit boundaries, a position
closed or liquidated between units, and a restart (or a failed unit) in mid-tick; each
against `perpd.money` or the one-position-at-a-time settlement, row for row."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest
import trio
import trio.testing

from perpd import engine, money
from perpd.errors import Unavailable
from perpd.hub import Hub, Session
from perpd.nursery import funding
from perpd.oracle import PriceBook
from perpd.records import Position
from perpd.store import Store, connect
from perpd.store import queries as q
from perpd.venue import Venue
from tests.test_funding_scale import PERIOD, PRICE, T, _index_columns, build, ctx


@pytest.fixture(autouse=True)
def untimed_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Funding units end on a waiter or their size here, never on the machine's speed."""
    monkeypatch.setattr(funding, "UNIT_S", float("inf"))
    monkeypatch.setattr(funding, "MIN_UNIT_S", 0.0)


VECTORS = Path(__file__).parent / "vectors" / "money.json"
BOUNDARY = T // PERIOD * PERIOD
I64 = 2**63


def store_states(path: Path, states: list[money.PositionState]) -> None:
    """One open position per state, due at T, with accounts that lock its collaterals."""
    conn = connect(path)
    locked: dict[str, int] = {}
    rows = []
    for i, state in enumerate(states):
        requester, maker = f"r{i:04d}", f"m{i:04d}"
        locked[requester], locked[maker] = state.cr, state.cm
        p = Position(
            f"pos_{i:06d}", f"req_{i}", f"quo_{i}", "BTC-PERP", requester, maker, 10, state,
            0, 0, "open", state.t_base, None, T,
        )  # fmt: skip
        rows.append((p, _index_columns(p, i)))
    conn.execute("BEGIN")
    for agent, amount in locked.items():
        q.record_deposit(conn, agent, amount)
        q.adjust_account(conn, agent, -amount, amount)
    q.insert_positions(conn, rows)
    conn.execute("COMMIT")
    conn.close()


def settle_all(conn: sqlite3.Connection, limit: int) -> list[int]:
    sizes = []
    while True:
        conn.execute("BEGIN IMMEDIATE")
        sizes.append(engine.settle_funding_due(conn, ctx(T), limit))
        conn.execute("COMMIT")
        if sizes[-1] < limit:
            return sizes


def settle_one_by_one(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    for p in q.positions_funding_due(conn, T, 1 << 20):
        assert engine.settle_funding_of(conn, ctx(T), p.position_id)
    conn.execute("COMMIT")


def near_i64_states() -> list[money.PositionState]:
    """Products N × |f| × elapsed just below, at and past 2^63, of both signs, with
    payers that can pay and payers whose collateral caps the transfer."""
    states = []
    rnd = random.Random(63)
    for target in (I64 - 1, I64, I64 + 1, 3 * I64 + 7, 2**70, 2**90):
        for rate in (1_000_000, -1_000_000, 999_983, -7):
            elapsed = PERIOD * 3 + 11
            notional = max(1, target // (abs(rate) * elapsed))
            if notional > 10**17:  # every amount must fit SQLite's INTEGER
                continue
            for n in (notional - 1, notional, notional + 1):
                cr = rnd.choice((n // 10, n * 3))  # caps the transfer, or pays it all
                states.append(
                    money.PositionState(
                        side=rnd.choice((1, -1)),
                        notional=n,
                        entry_price=PRICE,
                        cr=cr,
                        cm=rnd.choice((n // 10, n * 3)),
                        imr=cr,
                        imm=n // 10 + 1,
                        rate_ppm=rate,
                        t_base=BOUNDARY - elapsed,
                        funding_paid=rnd.choice((0, rate // abs(rate))),
                    )  # fmt: skip
                )
    return states


def vector_states() -> list[tuple[money.PositionState, money.PositionState, int]]:
    """`money.json`'s settle_funding cases moved in time so that their ``now`` is the
    boundary T settles to (funding depends only on elapsed time): (state, expected
    state, transfer)."""
    cases = []
    for case in json.loads(VECTORS.read_text())["settle_funding"]:
        inputs, expected = case["inputs"], case["expected"]
        assert inputs["period_s"] == PERIOD
        shift = BOUNDARY - inputs["now"]
        before = {**inputs["state"], "t_base": inputs["state"]["t_base"] + shift}
        after = {**expected["state"], "t_base": expected["state"]["t_base"] + shift}
        cases.append(
            (money.PositionState(**before), money.PositionState(**after), expected["transfer"])
        )
    return cases


def test_products_past_2_63_settle_exactly_as_perpd_money(tmp_path: Path) -> None:
    states = near_i64_states()
    assert any(s.notional * abs(s.rate_ppm) * (BOUNDARY - s.t_base) >= I64 for s in states)
    assert any(s.notional * abs(s.rate_ppm) * (BOUNDARY - s.t_base) < I64 for s in states)
    store_states(tmp_path / "b.db", states)
    shutil.copy(tmp_path / "b.db", tmp_path / "s.db")
    batch, single = connect(tmp_path / "b.db"), connect(tmp_path / "s.db")
    settle_all(batch, 50)
    settle_one_by_one(single)
    for i, state in enumerate(states):
        p = q.get_position(batch, f"pos_{i:06d}")
        assert p is not None
        want = money.settle_funding(state, BOUNDARY, PERIOD)
        assert p.state == want.state, (i, state)
        assert p.funding_total == want.transfer
    assert q.state_digest(batch) == q.state_digest(single)
    assert q.verify(batch) == []


def test_the_money_vectors_settle_in_a_batch_as_the_vectors_say(tmp_path: Path) -> None:
    cases = vector_states()
    assert any(moved for _, _, moved in cases)
    store_states(tmp_path / "v.db", [before for before, _, _ in cases])
    conn = connect(tmp_path / "v.db")
    settle_all(conn, 7)  # odd-sized batches: boundaries fall between cases
    for i, (_, after, moved) in enumerate(cases):
        p = q.get_position(conn, f"pos_{i:06d}")
        assert p is not None and p.state == after and p.funding_total == moved
    assert q.verify(conn) == []


@pytest.mark.parametrize(
    "n", [funding.FUNDING_CHUNK - 1, funding.FUNDING_CHUNK, 2 * funding.FUNDING_CHUNK + 1]
)
def test_chunk_boundaries_settle_each_position_once(tmp_path: Path, n: int) -> None:
    """Around a step's size: an exact multiple ends on an empty step, nothing twice."""
    build(tmp_path / "c.db", n)
    shutil.copy(tmp_path / "c.db", tmp_path / "s.db")
    conn, single = connect(tmp_path / "c.db"), connect(tmp_path / "s.db")
    conn.execute("BEGIN IMMEDIATE")
    assert funding._funding_unit(conn, ctx(T), lambda: False) == (n, False)
    conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    assert funding._funding_unit(conn, ctx(T), lambda: False) == (0, False)
    conn.execute("COMMIT")
    settle_one_by_one(single)
    assert q.state_digest(conn) == q.state_digest(single)
    events, named = q.funding_settled_counts(conn, "pos_")
    assert events == named == q.count_events(conn)


def test_a_unit_writes_the_locked_balances_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three steps, one write of the agents' locked balances (each step touches most
    agents), and the books of settling one at a time."""
    n = 2 * funding.FUNDING_CHUNK + 1
    build(tmp_path / "c.db", n)
    shutil.copy(tmp_path / "c.db", tmp_path / "s.db")
    conn, single = connect(tmp_path / "c.db"), connect(tmp_path / "s.db")
    writes: list[int] = []
    real = q.adjust_locked

    def counted(c: sqlite3.Connection, deltas: dict[str, int]) -> None:
        writes.append(len(deltas))
        real(c, deltas)

    monkeypatch.setattr(q, "adjust_locked", counted)
    conn.execute("BEGIN IMMEDIATE")
    assert funding._funding_unit(conn, ctx(T), lambda: False) == (n, False)
    conn.execute("COMMIT")
    assert len(writes) == 1 and writes[0] > 0
    settle_one_by_one(single)
    assert q.state_digest(conn) == q.state_digest(single)
    assert q.verify(conn) == []


def test_positions_closed_and_liquidated_between_units(tmp_path: Path) -> None:
    """After the first unit, one due position is closed, one half-closed and one
    liquidated (each settles its own funding first); the next units skip the closed
    ones and settle the half-closed one from its new base: the same books, events and
    seqs as settling one at a time around the same three actions."""
    build(tmp_path / "b.db", 3 * funding.FUNDING_CHUNK)
    shutil.copy(tmp_path / "b.db", tmp_path / "s.db")
    batch, single = connect(tmp_path / "b.db"), connect(tmp_path / "s.db")
    crash = PRICE * 8 // 10
    crashed = engine.Ctx(T, PERIOD, lambda market: crash)

    def between(conn: sqlite3.Connection) -> None:
        due = q.positions_funding_due(conn, T, 1 << 20)
        victim = next(p for p in due if money.liquidatable_side(p.state, crash) is not None)
        others = [p for p in due if p.position_id != victim.position_id]
        engine.close(
            conn, ctx(T), agent_id=others[0].requester, position_id=others[0].position_id, pct=100
        )
        engine.close(
            conn, ctx(T), agent_id=others[1].requester, position_id=others[1].position_id, pct=50
        )
        engine.liquidate(conn, crashed, liquidator=engine.KEEPER, position_id=victim.position_id)

    batch.execute("BEGIN IMMEDIATE")
    assert funding._funding_unit(batch, ctx(T), lambda: True) == (funding.FUNDING_CHUNK, True)
    between(batch)
    batch.execute("COMMIT")
    batch.execute("BEGIN IMMEDIATE")
    n, more = funding._funding_unit(batch, ctx(T), lambda: False)
    batch.execute("COMMIT")
    assert (n, more) == (2 * funding.FUNDING_CHUNK - 2, False)

    single.execute("BEGIN IMMEDIATE")
    for p in q.positions_funding_due(single, T, funding.FUNDING_CHUNK):
        assert engine.settle_funding_of(single, ctx(T), p.position_id)
    between(single)
    single.execute("COMMIT")
    settle_one_by_one(single)

    assert q.count_funding_due(batch, T) == 0
    assert q.state_digest(batch) == q.state_digest(single)
    assert q.verify(batch) == []
    statuses = {row[0] for row in batch.execute("SELECT status FROM positions")}
    assert {"closed", "liquidated", "open"} <= statuses


async def test_a_restart_or_a_failed_unit_mid_tick_settles_each_position_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick stopped after its first unit (the daemon restarted), then a unit that
    fails after settling positions (rolled back whole): the next tick settles every
    position exactly once, as one-at-a-time settlement does."""
    monkeypatch.setattr(funding, "FUNDING_CHUNK", 64)
    monkeypatch.setattr(funding, "UNIT_MAX", 128)
    path = tmp_path / "r.db"
    build(path, 600)
    shutil.copy(path, tmp_path / "s.db")

    def venue_of(store: Store) -> Venue:
        return Venue(
            store, PriceBook(["BTC-PERP"]), funding_period_s=PERIOD, clock=lambda: float(T)
        )

    store = Store(path)
    await store.open()
    try:
        first = await venue_of(store).mutate(
            lambda conn, c: funding._funding_unit(conn, c, lambda: False), urgent=True
        )
        assert first == (128, True)
    finally:
        await store.close()  # the daemon stops between two units

    store = Store(path)
    await store.open()
    try:
        venue = venue_of(store)

        def fails(conn: sqlite3.Connection, c: engine.Ctx) -> None:
            funding._funding_unit(conn, c, lambda: False)
            raise Unavailable("the disk filled up under this unit")

        with pytest.raises(Unavailable):
            await venue.mutate(fails, urgent=True)
        assert await store.read(lambda conn: q.count_funding_due(conn, T)) == 600 - 128
        assert await funding.settle_due(venue) == 600 - 128
        assert await funding.settle_due(venue) == 0
        assert await store.read(q.verify) == []
        digest = await store.read(q.state_digest)
    finally:
        await store.close()
    single = connect(tmp_path / "s.db")
    settle_one_by_one(single)
    assert q.state_digest(single) == digest


async def test_the_hub_builds_frames_only_for_events_a_session_can_see(tmp_path: Path) -> None:
    """A tick's events reach the hub; one agent is connected: its events get their wire
    text (once) and reach its session, the others' are never encoded."""
    build(tmp_path / "h.db", 300)
    store = Store(tmp_path / "h.db")
    await store.open()
    try:
        hub = Hub(store)
        watching = Session("agent007", frozenset())
        hub._add(watching)
        venue = Venue(
            store, PriceBook(["BTC-PERP"]), funding_period_s=PERIOD, clock=lambda: float(T)
        )
        assert await funding.settle_due(venue) == 300
        await trio.testing.wait_all_tasks_blocked()
        events = list(hub._inbox)
        hub.dispatch(events)
        seen = [e for e in events if "agent007" in e.audience]
        assert 0 < len(seen) < len(events)
        assert all("wire" in e.__dict__ for e in seen)
        assert not any("wire" in e.__dict__ for e in events if e not in seen)
        got = [watching.receive.receive_nowait() for _ in seen]
        assert got == [e.wire for e in seen]
        assert hub.dispatched == events[-1].seq
    finally:
        await store.close()
