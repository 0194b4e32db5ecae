"""The hub's bookkeeping without sockets: sessions that leave mid-replay, dead queues."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from perpd.hub import Hub, Session
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
