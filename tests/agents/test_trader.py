"""`Trader`: takes the lowest rate (then the most collateral), honours a custom choice,
falls back to the next quote when the best one cannot be taken, and lets a lapse be."""

from __future__ import annotations

from collections.abc import Sequence

from agents import Client, Quote, Trader, TradeRequest
from tests.agents.conftest import clients, usdc
from tests.conftest import Server


async def _request(r: Client) -> TradeRequest:
    return await r.request_trade(
        "ETH-PERP", "short", usdc(1000), leverage=5, max_funding_rate=800, expires_in=10
    )


async def test_lowest_rate_wins_then_most_collateral(live: Server) -> None:
    async with clients(live.url, 4, fund=usdc(10_000)) as (r, a, b, c):
        req = await _request(r)
        await a.quote(req.request_id, funding_rate=300, collateral=usdc(50), valid_for=10)
        qb = await b.quote(req.request_id, funding_rate=200, collateral=usdc(30), valid_for=10)
        qc = await c.quote(req.request_id, funding_rate=200, collateral=usdc(60), valid_for=10)
        trader = Trader(r)
        assert trader.choose(req, [qb, qc]) == qc
        position = await trader.fill(req, quote_window=0)
        assert position is not None and position.maker == c.agent_id
        assert position.maker_collateral == usdc(60) and position.funding_rate == 200
        stats = trader.statistics()
        assert stats.fills == 1 and stats.quotes_seen == 3 and stats.accept_retries == 0
        closed = await trader.close(position.position_id)
        assert closed.position.status == "closed"


async def test_a_custom_choice_and_declining_everything(live: Server) -> None:
    def most_collateral(_: TradeRequest, quotes: Sequence[Quote]) -> Quote | None:
        return max(quotes, key=lambda q: q.collateral, default=None)

    async with clients(live.url, 3, fund=usdc(10_000)) as (r, a, b):
        req = await _request(r)
        await a.quote(req.request_id, funding_rate=100, collateral=usdc(40))
        await b.quote(req.request_id, funding_rate=700, collateral=usdc(900))
        position = await Trader(r, choose=most_collateral).fill(req, quote_window=0)
        assert position is not None and position.maker == b.agent_id

        req2 = await _request(r)
        await a.quote(req2.request_id, funding_rate=100, collateral=usdc(40))
        picky = Trader(r, choose=lambda _r, _q: None)
        assert await picky.fill(req2, quote_window=0) is None
        assert picky.statistics().unfilled == 1
        assert (await r.trade_request(req2.request_id)).status == "open"  # left to lapse


async def test_the_next_best_is_taken_when_the_best_cannot_be(live: Server) -> None:
    async with clients(live.url, 3, fund=usdc(10_000)) as (r, broke, solid):
        req = await _request(r)
        await broke.quote(req.request_id, funding_rate=100, collateral=usdc(500))
        await solid.quote(req.request_id, funding_rate=400, collateral=usdc(500))
        await broke.withdraw(usdc(9_900))  # its quote can no longer be funded
        trader = Trader(r)
        position = await trader.fill(req, quote_window=0)
        assert position is not None and position.maker == solid.agent_id
        stats = trader.statistics()
        assert stats.accept_retries == 1 and stats.refused["insufficient_collateral"] == 1


async def test_no_quotes_means_no_position(live: Server) -> None:
    async with clients(live.url, 1, fund=usdc(10_000)) as (r,):
        trader = Trader(r, quote_window=0.1)
        got = await trader.open(
            "BTC-PERP", "long", usdc(100), leverage=2, max_funding_rate=0, expires_in=5
        )
        assert got is None
        assert trader.statistics().requests == 1 and trader.statistics().unfilled == 1
