"""The SDK's history (issue 13): `Client.fills` / `funding` / `liquidations` pages,
`iter_fills` across pages, `Market.funding_curve`, the ``funding_curve`` event, and the
trader's `HistoryTally` counting each fill and payment once across updates."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from agents import Client, FundingCurveEvent, HistoryTally, Position, Trader
from tests.agents.conftest import clients, eventually, usdc
from tests.conftest import DEFAULT_PUBLIC_RATE, Clock, Server, base_config, start_server

PERIOD = 2  # seconds: funding is paid while the test runs


@pytest.fixture
async def srv(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    config = base_config(
        tmp_path, funding_period_s=PERIOD, funding_curve_events=True, **DEFAULT_PUBLIC_RATE
    )
    s = await start_server(nursery, config, Clock(real=True, start=time.time()))
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def _open(trader: Trader, maker: Client) -> Position:
    r = trader.client
    req = await r.request_trade(
        "BTC-PERP", "long", usdc(1000), leverage=10, max_funding_rate=800, expires_in=20
    )
    await maker.quote(req.request_id, funding_rate=500, collateral=usdc(100), valid_for=20)
    position = await trader.fill(req, quote_window=0)
    assert position is not None
    return position


async def test_pages_iteration_curve_and_tally(srv: Server) -> None:
    async with clients(srv.url, 2, fund=usdc(100_000)) as (r, m):
        await r.set_price("BTC-PERP", 50_000 * 10**8)
        trader = Trader(r)
        opened = [await _open(trader, m) for _ in range(3)]

        first = await r.fills(limit=2)
        assert len(first.items) == 2 and first.next_cursor is not None
        rest = await r.fills(cursor=first.next_cursor)
        assert len(rest.items) == 1 and rest.next_cursor is None
        every = [f async for f in r.iter_fills(page_size=1)]
        assert every == [*first.items, *rest.items]
        assert [f.position_id for f in every] == [p.position_id for p in opened]
        assert {(f.role, f.side, f.fee) for f in every} == {("requester", "long", 500_000)}
        theirs = [f async for f in m.iter_fills()]
        assert {(f.role, f.side, f.fee) for f in theirs} == {("maker", "short", 0)}
        assert (await r.liquidations()).items == ()
        assert [f async for f in r.iter_fills(market="ETH-PERP")] == []

        tally = HistoryTally(r, page_size=2)
        h = await tally.update()
        assert (h.fills, h.notional, h.fees) == (3, usdc(3000), 1_500_000)
        await _open(trader, m)
        h = await tally.update()
        assert (h.fills, h.notional) == (4, usdc(4000))  # the new one, not the old again

        # funding: 1000 USDC at 500 ppm per 2 s period, requester -> maker
        async def paid() -> bool:
            return len((await r.funding()).items) >= 4

        await eventually(paid)
        h = await tally.update()
        payments = [p async for p in r.iter_funding()]
        assert h.funding_paid == sum(p.amount for p in payments) > 0
        assert h.funding_received == 0
        assert {p.direction for p in payments} == {"paid"}
        received = [p async for p in m.iter_funding()]
        assert {p.direction for p in received} == {"received"}
        assert sum(p.signed_amount for p in received) > 0

        curve = (await r.market("BTC-PERP")).funding_curve
        assert [(c.duration, c.last_filled_rate, c.live_quotes) for c in curve] == [
            ("perpetual", 500, 0)
        ]

        async def announced() -> bool:  # announcements are throttled: an older one may
            events = await r.events()  # be the last for a while (loaded machines)
            curves = [e for e in events if isinstance(e, FundingCurveEvent)]
            return bool(curves) and curves[-1].funding_curve == curve

        await eventually(announced)
        last = [e for e in await r.events() if isinstance(e, FundingCurveEvent)][-1]
        assert last.market == "BTC-PERP" and last.funding_curve == curve
