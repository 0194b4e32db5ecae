"""Issue 13 through the SDK, on the in-process chain (so every replace signs its own
quote consent): cancel, replace, request cancel, client ids, maker protection, the
socket's cancel/replace and cancel-on-disconnect, and a `MarketMaker` that re-prices
with one replace."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import trio

import agents
from agents import Client, Market, MarketMaker, QuoteTerms, TradeRequest, parse_price
from tests.agents.conftest import clients, eventually, usdc
from tests.conftest import DEFAULT_PUBLIC_RATE, Clock, Server, base_config, start_server


@pytest.fixture
async def live(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A daemon with the local chain, on the wall clock (the SDK signs with its own)."""
    clock = Clock(real=True, start=time.time())
    s = await start_server(
        nursery, base_config(tmp_path, chain="local", **DEFAULT_PUBLIC_RATE), clock
    )
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def _request(c: Client, **kw: object) -> TradeRequest:
    return await c.request_trade(
        "BTC-PERP", "long", usdc(1000), leverage=10, max_funding_rate=1000, expires_in=60, **kw
    )


async def test_client_calls(live: Server) -> None:
    async with clients(live.url, 2, fund=usdc(10_000)) as (requester, maker):
        await requester.set_price("BTC-PERP", parse_price("50000"))
        req = await _request(requester, client_id="sdk-1")
        assert req.client_id == "sdk-1"
        q = await maker.quote(req, funding_rate=800, collateral=usdc(100), client_id="mq-1")
        again = await maker.quote(req, funding_rate=800, collateral=usdc(100), client_id="mq-1")
        assert again.quote_id == q.quote_id and again.client_id == "mq-1"
        new = await maker.replace_quote(q.quote_id, 600, usdc(100), request=req)
        assert new.replaced_quote_id == q.quote_id and new.funding_rate == 600
        newer = await maker.replace_quote(new.quote_id, 500, usdc(100))  # reads the quote
        with pytest.raises(agents.Conflict) as gone:
            await maker.cancel_quote(new.quote_id)
        assert gone.value.code == "quote_cancelled"
        assert [x.quote_id for x in await requester.quotes(req.request_id)] == [newer.quote_id]
        position = await requester.accept(req.request_id, newer.quote_id)
        assert position.funding_rate == 500
        events = [e for e in await maker.events() if isinstance(e, agents.QuoteCancelledEvent)]
        assert [(e.quote_id, e.reason, e.replaced_by) for e in events] == [
            (q.quote_id, "replaced", new.quote_id),
            (new.quote_id, "replaced", newer.quote_id),
        ]
        req2 = await _request(requester)
        q2 = await maker.quote(req2, funding_rate=800, collateral=usdc(100))
        assert (await maker.cancel_quote(q2.quote_id)).status == "cancelled"
        assert (await requester.cancel_request(req2.request_id)).status == "cancelled"
        off = await maker.protection()
        assert off.window_s is None and off.frozen_until is None
        mmp = await maker.set_protection(window_s=60, cooldown_s=30, max_notional=usdc(500))
        assert mmp.max_notional == usdc(500) and mmp.max_fills is None
        req3 = await _request(requester)
        q3 = await maker.quote(req3, funding_rate=800, collateral=usdc(100))
        await requester.accept(req3.request_id, q3.quote_id)
        frozen = await maker.protection()
        assert frozen.frozen_until is not None
        with pytest.raises(agents.Conflict) as refused:
            await maker.quote(await _request(requester), funding_rate=800, collateral=usdc(100))
        assert refused.value.code == "maker_frozen"


async def test_session_cancel_replace_and_cancel_on_disconnect(live: Server) -> None:
    async with clients(live.url, 2, fund=usdc(10_000)) as (requester, maker):
        await requester.set_price("BTC-PERP", parse_price("50000"))
        req = await _request(requester)
        async with maker.subscribe(["BTC-PERP"], cancel_on_disconnect=True, heartbeat_s=0.2) as s:
            first = await s.quote(req, funding_rate=800, collateral=usdc(100))
            second = await s.replace(first, funding_rate=700, collateral=usdc(100), request=req)
            await s.cancel(second)
            kept = await s.quote(req, funding_rate=600, collateral=usdc(100), client_id="k")
            assert await s.quote(req, funding_rate=600, collateral=usdc(100), client_id="k") == kept
            await trio.sleep(1.0)  # several heartbeats: the guarded socket stays open
            assert [q.quote_id for q in await requester.quotes(req.request_id)] == [kept]
            assert s.statistics().connects == 1
        with trio.fail_after(2):
            while await requester.quotes(req.request_id):  # noqa: ASYNC110
                await trio.sleep(0.02)


class MovingMM(MarketMaker):
    """Quotes at ``self.rate``, which a test moves."""

    rate = 800

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        return QuoteTerms(self.rate, usdc(100), valid_for=30)


async def test_market_maker_reprices_with_one_replace(live: Server) -> None:
    async with clients(live.url, 2, fund=usdc(10_000)) as (requester, mc):
        await requester.set_price("BTC-PERP", parse_price("50000"))
        maker = MovingMM(mc, refresh_s=0.1)
        async with anyio.create_task_group() as tg:
            await tg.start(maker.run)
            req = await _request(requester)

            async def quoted(rate: int) -> bool:
                return [q.funding_rate for q in await requester.quotes(req.request_id)] == [rate]

            await eventually(lambda: quoted(800))
            first = (await requester.quotes(req.request_id))[0]
            assert first.client_id is not None and first.client_id.endswith(req.request_id)
            maker.rate = 500
            await eventually(lambda: quoted(500))
            # the daemon shows the new quote before the maker has read the replace's answer
            await eventually(lambda: maker.statistics().replaced == 1)
            assert maker.statistics().live_quotes == 1
            live_quote = (await requester.quotes(req.request_id))[0]
            await requester.accept(req.request_id, live_quote.quote_id)
            await eventually(lambda: maker.statistics().fills == 1)
            assert maker.statistics().live_quotes == 0
            req2 = await _request(requester)
            await eventually(lambda: quoted_on(requester, req2.request_id))
            tg.cancel_scope.cancel()  # the maker stops: its socket goes, its quotes too
        with trio.fail_after(2):
            while await requester.quotes(req2.request_id):  # noqa: ASYNC110
                await trio.sleep(0.02)


async def quoted_on(c: Client, request_id: str) -> bool:
    return bool(await c.quotes(request_id))
