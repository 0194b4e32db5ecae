"""A funding tick's audience and history rows in one sorted pass after the tick
(`perpd.store.funding_index`): the end state is the one writing them with each batch
gives, byte for byte, and before the pass ends (or after a crash cut it short) every
reader of those rows answers as if they were written."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd import engine, liq_bounds, money
from perpd.nursery import funding
from perpd.oracle import PriceBook
from perpd.records import Event
from perpd.store import TICK_CACHE_KIB, WRITER_CACHE_KIB, Store, connect, history
from perpd.store import funding_index as fi
from perpd.store import queries as q
from perpd.venue import Venue
from tests.test_funding_scale import PERIOD, PRICE, T, build, ctx, untimed_units

__all__ = ["untimed_units"]  # the autouse fixture: units end on size, not the machine

N = 700
STEP = 128


def _settle(conn: sqlite3.Connection, deferred: bool) -> list[list[Event]]:
    """The tick in units of STEP (the reference writes the rows with each unit);
    returns each unit's deferred events."""
    units: list[list[Event]] = []
    while True:
        made: list[Event] = []
        conn.execute("BEGIN IMMEDIATE")
        n = engine.settle_funding_due(conn, ctx(T), STEP, made if deferred else None)
        conn.execute("COMMIT")
        units.append(made)
        if n < STEP:
            return units


def _agents(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT agent_id FROM accounts ORDER BY 1")]


def _history(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM agent_history ORDER BY 1, 2, 3").fetchall()


def _reads(conn: sqlite3.Connection) -> dict[str, object]:
    """What every reader of the audience and history rows answers, for every agent:
    its events (with their audiences), its funding pages (whole, 7 at a time, by market
    and from a time), and the log's audiences."""
    out: dict[str, object] = {"log": q.events_after(conn, 0, 100_000)}
    for agent in _agents(conn):
        pages, after = [], 0
        while True:
            page = history.page_history(conn, agent, "funding", history.Window(after, 7))
            pages.append(page)
            if len(page) < 7:
                break
            after = page[-1].seq
        out[agent] = (
            q.events_visible_to(conn, agent, 0, 100_000),
            q.events_visible_to(conn, agent, 300, 50),
            pages,
            history.page_history(conn, agent, "funding", history.Window(0, 500, "BTC-PERP")),
            history.page_history(conn, agent, "funding", history.Window(0, 500, "ETH-PERP")),
            history.page_history(conn, agent, "funding", history.Window(0, 500, since=T)),
            history.page_history(conn, agent, "funding", history.Window(0, 500, until=T)),
            history.page_history(conn, agent, "fill", history.Window(0, 500)),
        )
    return out


@pytest.fixture
def pair(tmp_path: Path) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """(deferred, reference): the same positions; the reference settled with its rows."""
    build(tmp_path / "d.db", N)
    shutil.copy(tmp_path / "d.db", tmp_path / "r.db")
    ref = connect(tmp_path / "r.db")
    _settle(ref, deferred=False)
    return connect(tmp_path / "d.db"), ref


def test_before_during_and_after_the_pass_readers_see_every_row(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    deferred, ref = pair
    units = _settle(deferred, deferred=True)
    events = [e for made in units for e in made]
    assert len(events) == q.funding_settled_counts(ref, "pos_")[0] > N // 2
    assert fi.unindexed_range(deferred) == (events[0].seq, events[-1].seq)
    funding_rows = "SELECT count(*) FROM agent_history WHERE kind = 'funding'"
    assert deferred.execute(funding_rows).fetchone()[0] == 0
    expected = _reads(ref)
    assert _reads(deferred) == expected  # nothing indexed yet

    backlog = fi.Backlog()
    for made in units:
        backlog.add_events(made)
    assert len(backlog) == ref.execute(funding_rows).fetchone()[0]
    rows = backlog.peek(len(backlog))
    assert rows == sorted(rows)  # key order: each agent's rows together, by seq
    half = len(rows) // 2 + 3  # mid-agent: one agent's rows on both sides
    deferred.execute("BEGIN IMMEDIATE")
    assert fi.index_rows(deferred, backlog.peek(half), done_to=None)
    deferred.execute("COMMIT")
    backlog.drop(half)
    assert _reads(deferred) == expected  # half of the agents indexed, half from the log

    deferred.execute("BEGIN IMMEDIATE")
    assert not fi.index_rows(deferred, backlog.peek(len(backlog)), done_to=backlog.high)
    deferred.execute("COMMIT")
    backlog.drop(len(backlog))
    assert not backlog and fi.unindexed_range(deferred) is None
    assert _reads(deferred) == expected
    assert q.state_digest(deferred) == q.state_digest(ref)
    assert _history(deferred) == _history(ref)
    assert q.verify(deferred) == []


def test_a_range_the_backlog_does_not_cover_is_kept(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    """A pass that ends before seqs the backlog never heard of leaves them recorded."""
    deferred, _ref = pair
    units = _settle(deferred, deferred=True)
    backlog = fi.Backlog()
    backlog.add_events(units[0])
    deferred.execute("BEGIN IMMEDIATE")
    assert fi.index_rows(deferred, backlog.peek(len(backlog)), done_to=backlog.high)
    deferred.execute("COMMIT")
    events = [e for made in units for e in made]
    assert len(units[0]) < len(events)
    assert fi.unindexed_range(deferred) == (events[0].seq, events[-1].seq)


async def _tick(path: Path, backlog: fi.Backlog | None = None) -> int:
    store = Store(path)
    await store.open()
    venue = Venue(store, PriceBook(["BTC-PERP"]), funding_period_s=PERIOD, clock=lambda: float(T))
    try:
        return await funding.settle_due(venue, backlog)
    finally:
        await store.close()


async def test_a_tick_runs_on_the_large_cache_and_gives_it_back(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step of the tick and of its sorted pass runs with the writer's cache at
    TICK_CACHE_KIB; once the pass has written its last row the writer is back at order
    flow's WRITER_CACHE_KIB (issue 8's soak: a cache kept large grew the daemon's RSS)."""
    monkeypatch.setattr(funding, "FUNDING_CHUNK", 64)
    monkeypatch.setattr(funding, "UNIT_MAX", 192)
    path = Path(pair[0].execute("PRAGMA database_list").fetchone()[2])
    seen: list[int] = []

    def cache(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA cache_size").fetchone()[0])

    def watched(real: Any) -> Any:
        def step(conn: sqlite3.Connection, *args: Any, **kwargs: Any) -> Any:
            seen.append(cache(conn))
            return real(conn, *args, **kwargs)

        return step

    monkeypatch.setattr(engine, "settle_funding_due", watched(engine.settle_funding_due))
    monkeypatch.setattr(fi, "index_rows", watched(fi.index_rows))
    store = Store(path)
    await store.open()
    venue = Venue(store, PriceBook(["BTC-PERP"]), funding_period_s=PERIOD, clock=lambda: float(T))
    try:
        assert await store.write(cache) == -WRITER_CACHE_KIB
        assert await funding.settle_due(venue) > 0
        after = await store.write(cache)
    finally:
        await store.close()
    assert len(seen) > 2 and set(seen) == {-TICK_CACHE_KIB}
    assert after == -WRITER_CACHE_KIB


async def test_the_scheduler_writes_the_rows_after_its_tick(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the scheduler's units (of many steps, the sorted pass in several units)
    the end state equals the reference's, and nothing is left recorded."""
    monkeypatch.setattr(funding, "FUNDING_CHUNK", 64)
    monkeypatch.setattr(funding, "UNIT_MAX", 192)
    deferred, ref = pair
    path = Path(deferred.execute("PRAGMA database_list").fetchone()[2])
    passes: list[int] = []
    real = fi.index_rows

    def counted(conn: sqlite3.Connection, rows: list[fi.IndexRow], *, done_to: int | None) -> bool:
        passes.append(len(rows))
        return real(conn, rows, done_to=done_to)

    monkeypatch.setattr(fi, "index_rows", counted)
    due = q.count_funding_due(deferred, T)
    with trio.fail_after(60):
        assert await _tick(path) == due > 0
    assert len(passes) > 1 and sum(passes) == len(_history(ref))
    assert fi.unindexed_range(deferred) is None
    assert q.count_funding_due(deferred, T) == 0
    assert q.state_digest(deferred) == q.state_digest(ref)
    assert _history(deferred) == _history(ref)


async def test_a_pass_cut_short_is_finished_from_the_log(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    """A crash after the tick's units and part of the pass (the backlog, in memory, is
    lost): the next pass reads the range's rows back from the log, rewrites none twice."""
    deferred, ref = pair
    units = _settle(deferred, deferred=True)
    backlog = fi.Backlog()
    for made in units:
        backlog.add_events(made)
    deferred.execute("BEGIN IMMEDIATE")
    fi.index_rows(deferred, backlog.peek(len(backlog) // 3), done_to=None)
    deferred.execute("COMMIT")
    path = Path(deferred.execute("PRAGMA database_list").fetchone()[2])
    deferred.close()
    with trio.fail_after(60):
        assert await _tick(path) == 0  # nothing due: only the pass
    again = connect(path)
    assert fi.unindexed_range(again) is None
    assert q.state_digest(again) == q.state_digest(ref)
    assert _history(again) == _history(ref)
    assert q.verify(again) == []


async def test_a_unit_rolled_back_leaves_nothing_to_index(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A funding unit that fails is rolled back whole: its events are not in the backlog
    (their seqs are given back), and the retried tick ends equal to the reference."""
    deferred, ref = pair
    path = Path(deferred.execute("PRAGMA database_list").fetchone()[2])
    real = engine.settle_funding_due
    calls: list[int] = []

    def failing_once(
        conn: sqlite3.Connection,
        c: engine.Ctx,
        limit: int,
        unindexed: list[Event] | None = None,
        locked: dict[str, int] | None = None,
    ) -> int:
        n = real(conn, c, limit, unindexed, locked)
        calls.append(n)
        if len(calls) == 3:
            raise RuntimeError("a bug in mid-unit")
        return n

    monkeypatch.setattr(funding, "FUNDING_CHUNK", 64)
    monkeypatch.setattr(funding, "UNIT_MAX", 128)
    monkeypatch.setattr(engine, "settle_funding_due", failing_once)
    backlog = fi.Backlog()
    with trio.fail_after(60), pytest.raises(RuntimeError):
        await _tick(path, backlog)
    assert 0 < len(backlog) and backlog.high == fi.unindexed_range(deferred)[1]  # type: ignore[index]
    with trio.fail_after(60):
        await _tick(path, backlog)
    assert fi.unindexed_range(deferred) is None
    assert q.state_digest(deferred) == q.state_digest(ref)
    assert _history(deferred) == _history(ref)


def _wider(held: int | None, exact: int | None, low: bool) -> bool:
    """Whether a stored bound names every price the exact one does (None: never)."""
    if exact is None:
        return True
    if held is None:
        return False
    return held >= exact if low else held <= exact


def test_only_the_payers_bound_is_rewritten_and_the_watcher_misses_nothing(
    pair: tuple[sqlite3.Connection, sqlite3.Connection],
) -> None:
    """After a tick each payer's bound is the one that counts its funding ahead
    (`liq_bounds`), or the one it had if that already counted this payment; each
    receiver's the one it had (more collateral only moves it away). Every stored bound
    is wider than the exact one, and the watcher's candidates at any price still hold
    every position that price makes liquidatable."""
    deferred, _ref = pair
    before = {
        r[0]: (r[1], r[2], r[3])
        for r in deferred.execute(
            "SELECT position_id, liq_low, liq_high, bound_until FROM positions"
        )
    }
    events = [e for made in _settle(deferred, deferred=True) for e in made]
    payers = {e.data["position_id"]: e.data["payer"] for e in events}
    rewritten = {0: 0, 1: 0}
    kept = 0
    boundary = T // PERIOD * PERIOD
    positions = q.positions_funding_due(deferred, 1 << 40, 1 << 20)
    for p in positions:
        held = q.liquidation_bounds(deferred, p.position_id)
        exact = money.liquidation_price_bounds(p.state)
        assert _wider(held[0], exact[0], low=True) and _wider(held[1], exact[1], low=False)
        was = before[p.position_id]
        if p.position_id not in payers or liq_bounds.covered(was[2], boundary):
            assert held == was
            kept += p.position_id in payers
            continue
        s = p.state
        which = liq_bounds.payer_bound(s.side, 1 if payers[p.position_id] == p.requester else -1)
        until = liq_bounds.until_of(p.position_id, T, PERIOD)
        ahead = liq_bounds.payer_ahead(
            which, s.side, s.notional, s.entry_price, s.imr, s.cr, s.imm, s.cm, s.rate_ppm,
            s.t_base, s.funding_paid, until, PERIOD,
        )  # fmt: skip
        assert held[which] == ahead and held[2] == until > boundary
        assert held[1 - which] == was[1 - which]  # the receiver's, kept
        rewritten[which] += 1
    assert rewritten[0] and rewritten[1] and kept
    lows = sorted({b for p in positions for b in money.liquidation_price_bounds(p.state) if b})
    met = 0
    for price in [*lows[:: max(1, len(lows) // 40)], PRICE // 3, PRICE, 3 * PRICE]:
        candidates = {p.position_id for p in q.liquidation_candidates(deferred, "BTC-PERP", price)}
        under = {p.position_id for p in positions if money.liquidatable_side(p.state, price)}
        assert under <= candidates
        met += len(under)
    assert met > 0
