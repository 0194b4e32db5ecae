"""`perpd.deadlines`: the earliest deadline from the commits, and who is woken for it."""

from __future__ import annotations

import trio
import trio.testing

from perpd.deadlines import Deadlines
from perpd.records import Event


def _event(type_: str, expires_at: int) -> Event:
    return Event(1, 0, type_, "BTC-PERP", True, (), {"expires_at": expires_at})


def test_only_an_earlier_deadline_of_a_request_or_quote_is_kept() -> None:
    d = Deadlines()
    assert not d.due(10**9) and d.seconds_left(0, 1.0) == 1.0
    d.committed([_event("trade_request", 100), _event("quote", 90), _event("quote", 95)])
    d.committed([_event("position_opened", 10)])  # carries no deadline of the timer's
    assert d.earliest == 90
    assert not d.due(89.9) and d.due(90)
    assert d.seconds_left(89.5, 1.0) == 0.5 and d.seconds_left(91, 1.0) == 0.0
    d.forget()
    d.note(None)  # the database holds none
    assert d.earliest is None


async def test_the_waiter_wakes_for_an_earlier_deadline_only() -> None:
    d = Deadlines()
    d.note(100)
    woken: list[int | None] = []

    async def waiter() -> None:
        await d.wait_earlier()
        woken.append(d.earliest)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        d.committed([_event("quote", 120)])  # later: nothing to wake for
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        d.committed([_event("trade_request", 80)])
    assert woken == [80]
