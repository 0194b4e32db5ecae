"""The hub's bookkeeping without sockets: sessions that leave mid-replay, dead queues."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.hub import Hub, Session
from perpd.nursery import event_hub
from perpd.records import Event
from perpd.store import Store
from perpd.store import queries as q


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "hub.db")
    await s.open()
    for i in range(3):
        await s.write(
            lambda conn, i=i: q.append_event(
                conn, i, "trade_request", {"n": i}, market="BTC-PERP", public=True
            )
        )
    yield s
    await s.close()


def eth_event(seq: int) -> Event:
    return Event(seq, 0, "trade_request", "ETH-PERP", True, (), {})


async def test_a_session_removed_during_its_replay_is_never_registered(store: Store) -> None:
    hub = Hub(store)
    session = Session("agent", frozenset({"ETH-PERP"}))  # the replay sends nothing
    read = store.read

    async def read_then_leave(fn: Any) -> Any:
        result = await read(fn)
        hub.remove(session)  # the socket closes while the replay's read is in flight
        return result

    store.read = read_then_leave  # type: ignore[method-assign]
    await hub.catch_up(session, 0, lambda text: None)  # type: ignore[arg-type,return-value]
    assert hub.sessions == 0
    hub.dispatch([eth_event(hub.dispatched + 1)])  # must not touch the closed queue


async def test_offer_to_a_closed_queue_is_harmless(store: Store) -> None:
    session = Session("agent", frozenset({"ETH-PERP"}))
    session.send.close()
    session.offer(eth_event(1), "{}")
    assert session.closed and session.cursor == 0


async def test_the_service_dispatches_each_commit_to_live_sessions_in_order(
    store: Store,
) -> None:
    """`perpd.nursery.event_hub.run` takes what committed (`Hub.wait_committed`) and
    offers it to a live session, in ``seq`` order; cancelling it loses nothing."""
    hub = Hub(store)
    session = Session("agent", frozenset({"BTC-PERP"}))
    await hub.catch_up(session, 0, _ignore)  # the three fixture events; now live
    async with trio.open_nursery() as nursery:
        await nursery.start(event_hub.run, hub)
        for i in range(3, 6):
            await store.write(
                lambda conn, i=i: q.append_event(
                    conn, i, "trade_request", {"n": i}, market="BTC-PERP", public=True
                )
            )
        with trio.fail_after(5):
            got = [json.loads(await session.receive.receive())["data"]["n"] for _ in range(3)]
        nursery.cancel_scope.cancel()
    assert got == [3, 4, 5]
    assert hub.dispatched == 6
    await store.write(
        lambda conn: q.append_event(conn, 9, "trade_request", {}, market="BTC-PERP", public=True)
    )
    assert [e.seq for e in await hub.wait_committed()] == [7]  # kept for the next run


async def _ignore(text: str) -> None:
    return None
