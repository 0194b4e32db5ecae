"""Issue 11, latency: units of work queued together commit together (one transaction,
one COMMIT), each in its own savepoint, so a failing unit still rolls back alone."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.errors import InvalidRequest
from perpd.records import Event
from perpd.store import Store
from perpd.store import queries as q
from perpd.store._store import on_rollback


async def _traced(store: Store) -> list[str]:
    """Every statement the writer's connection runs from now on."""
    statements: list[str] = []
    await store.write(lambda conn: conn.set_trace_callback(statements.append))
    statements.clear()
    return statements


def _gate(opened: threading.Event) -> Any:
    def hold(conn: sqlite3.Connection) -> None:
        assert opened.wait(5)

    return hold


def _insert(market: str, price: int) -> Any:
    def unit(conn: sqlite3.Connection) -> int:
        q.pin_price(conn, market, price, 1)
        return q.append_event(conn, 1, "test", {"market": market}, market=market, public=True)

    return unit


def _refuse(market: str) -> Any:
    def unit(conn: sqlite3.Connection) -> None:
        q.pin_price(conn, market, 1, 1)
        q.append_event(conn, 1, "test", {"market": market}, market=market, public=True)
        raise InvalidRequest(f"{market} refused")

    return unit


async def _queued_behind_a_gate(
    store: Store, units: list[Any], *, alone: bool = False
) -> list[Any]:
    """Run ``units`` all queued behind one held unit; their outcomes, in order."""
    opened = threading.Event()
    results: list[Any] = [None] * len(units)

    async def one(i: int) -> None:
        try:
            results[i] = await store.write(units[i], alone=alone)
        except InvalidRequest as exc:
            results[i] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.write, _gate(opened))
        await trio.sleep(0.05)  # the gate holds the writer; the units queue up
        for i in range(len(units)):
            nursery.start_soon(one, i)
            await trio.sleep(0.005)  # queued in this order
        opened.set()
    return results


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "g.db")
    await s.open()
    yield s
    await s.close()


async def test_units_queued_together_share_one_commit(store: Store) -> None:
    statements = await _traced(store)
    seqs = await _queued_behind_a_gate(store, [_insert(f"M{i}", i) for i in range(6)])
    commits = [s for s in statements if s == "COMMIT"]
    # the gate's own commit, then one for all six queued units (not six)
    assert len(commits) == 2, statements
    assert seqs == list(range(seqs[0], seqs[0] + 6))
    assert await store.read(q.pinned_prices) == {f"M{i}": i for i in range(6)}
    assert store.statistics()["groups"] >= 1


async def test_a_failing_unit_rolls_back_alone_and_the_log_has_no_gap(store: Store) -> None:
    published: list[Event] = []
    store.add_listener(published.extend)
    undone: list[str] = []

    def undoable(conn: sqlite3.Connection) -> None:
        on_rollback(conn, lambda: undone.append("B"))
        _refuse("B")(conn)

    results = await _queued_behind_a_gate(store, [_insert("A", 1), undoable, _insert("C", 3)])
    assert isinstance(results[1], InvalidRequest) and undone == ["B"]
    assert await store.read(q.pinned_prices) == {"A": 1, "C": 3}
    assert results[2] == results[0] + 1  # the refused unit's event left no hole
    assert [e.market for e in published] == ["A", "C"]
    assert [e.seq for e in published] == [results[0], results[2]]


async def test_a_failed_commit_refuses_every_unit_of_the_group_and_undoes_them(
    store: Store,
) -> None:
    undone: list[str] = []

    def undoable(name: str) -> Any:
        def unit(conn: sqlite3.Connection) -> None:
            on_rollback(conn, lambda: undone.append(name))
            _insert(name, 1)(conn)

        return unit

    def breaks_the_commit(conn: sqlite3.Connection) -> None:
        # a deferred foreign key fails at COMMIT, after every unit of the group ran
        conn.execute("PRAGMA defer_foreign_keys = ON")
        conn.execute(
            "INSERT INTO quotes (quote_id, request_id, agent_id, rate, collateral, created_at,"
            " expires_at, status) VALUES ('q1', 'no such request', 'a', 0, 1, 0, 0, 'live')"
        )

    opened = threading.Event()
    outcomes: dict[str, BaseException | None] = {}

    async def one(name: str, unit: Any) -> None:
        try:
            await store.write(unit)
            outcomes[name] = None
        except sqlite3.IntegrityError as exc:
            outcomes[name] = exc

    async with trio.open_nursery() as nursery:
        nursery.start_soon(store.write, _gate(opened))
        await trio.sleep(0.05)
        for name, unit in (("A", undoable("A")), ("X", breaks_the_commit), ("C", undoable("C"))):
            nursery.start_soon(one, name, unit)
            await trio.sleep(0.005)
        opened.set()
    assert all(isinstance(outcomes[n], sqlite3.IntegrityError) for n in "AXC"), outcomes
    assert undone == ["C", "A"]  # newest unit first
    assert await store.read(q.pinned_prices) == {}
    assert await store.write(_insert("D", 4)) > 0  # the writer goes on


async def test_a_unit_marked_alone_commits_by_itself(store: Store) -> None:
    statements = await _traced(store)
    await _queued_behind_a_gate(store, [_insert(f"M{i}", i) for i in range(3)], alone=True)
    assert statements.count("COMMIT") == 4, statements
