"""`MarketMaker` against the real daemon: its limits hold with racing quotes, its fills
and releases are tracked from events, and it liquidates a requester under maintenance."""

from __future__ import annotations

import anyio
import pytest
import trio

from agents import (
    Client,
    Market,
    MarketMaker,
    Position,
    QuoteTerms,
    RiskLimits,
    TradeRequest,
    parse_price,
)
from tests.agents.conftest import clients, eventually, usdc
from tests.conftest import Server


class FixedMM(MarketMaker):
    """Quotes every request at one rate and a fixed collateral fraction; records fills."""

    def __init__(self, client: Client, *, rate: int = 200, collateral_pct: int = 10, **kw):
        super().__init__(client, refresh_s=0.1, **kw)
        self.rate = rate
        self.collateral_pct = collateral_pct
        self.filled: list[Position] = []

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        return QuoteTerms(self.rate, request.size * self.collateral_pct // 100, valid_for=30)

    def on_fill(self, position: Position) -> None:
        self.filled.append(position)


async def _ask(c: Client, market: str, size: int, side: str = "long", lev: int = 10) -> str:
    r = await c.request_trade(
        market,
        side,  # type: ignore[arg-type]
        size,
        leverage=lev,
        max_funding_rate=1000,
        expires_in=30,
    )
    return r.request_id


async def test_limits_count_live_quotes_and_free_up_when_they_die(live: Server) -> None:
    limits = RiskLimits(
        max_open_notional_per_market=usdc(1500),
        max_notional_per_counterparty=usdc(2000),
        min_free_collateral=usdc(100),
    )
    async with clients(live.url, 4, fund=usdc(10_000)) as (mc, r1, r2, r3):
        mm = FixedMM(mc, limits=limits)
        async with anyio.create_task_group() as tg:
            await tg.start(mm.run)
            a = await _ask(r1, "BTC-PERP", usdc(1000))
            await eventually(lambda: mm.statistics().quotes_sent == 1)
            # Market limit: 1000 live + 1000 > 1500, even though nothing is filled yet.
            await _ask(r2, "BTC-PERP", usdc(1000))
            # Counterparty limit: r1 has 1000 live; 1000 + 1500 > 2000.
            await _ask(r1, "ETH-PERP", usdc(1500))
            await eventually(lambda: mm.statistics().limited == 2)
            assert mm.open_notional("BTC-PERP") == usdc(1000)
            assert mm.notional_with(r1.agent_id) == usdc(1000)

            (q,) = await r1.quotes(a)
            pos = await r1.accept(a, q.quote_id)
            await eventually(lambda: len(mm.filled) == 1)
            assert mm.filled[0].position_id == pos.position_id
            assert mm.inventory("BTC-PERP") == -usdc(1000)  # the requester is long
            assert mm.statistics().live_quotes == 0 and mm.statistics().fills == 1

            await r1.close(pos.position_id)
            await eventually(lambda: not mm.positions)
            assert mm.open_notional("BTC-PERP") == 0
            await _ask(r3, "BTC-PERP", usdc(1400))  # room again
            await eventually(lambda: mm.statistics().quotes_sent == 2)
            tg.cancel_scope.cancel()


async def test_min_free_collateral_and_open_requests_at_start(live: Server) -> None:
    async with clients(live.url, 2, fund=usdc(10_000)) as (mc, r):
        await mc.withdraw(usdc(9_000))  # 1000 free
        before = await _ask(r, "SOL-PERP", usdc(1000), lev=5)  # posted before the maker runs
        mm = FixedMM(
            mc,
            collateral_pct=50,
            limits=RiskLimits(min_free_collateral=usdc(400)),
        )
        async with anyio.create_task_group() as tg:
            await tg.start(mm.run)
            await eventually(lambda: mm.statistics().quotes_sent == 1)  # 1000 − 500 ≥ 400
            assert (await r.quotes(before))[0].collateral == usdc(500)
            await _ask(r, "SOL-PERP", usdc(1000), lev=5)  # 1000 − 500 − 500 < 400
            await eventually(lambda: mm.statistics().limited == 1)
            tg.cancel_scope.cancel()


async def test_a_rejected_quote_is_released(live: Server) -> None:
    async with clients(live.url, 3, fund=usdc(10_000)) as (m1, m2, r):
        cheap, dear = FixedMM(m1, rate=100), FixedMM(m2, rate=900)
        async with anyio.create_task_group() as tg:
            await tg.start(cheap.run)
            await tg.start(dear.run)
            rid = await _ask(r, "ETH-PERP", usdc(500))
            await eventually(lambda: dear.statistics().live_quotes == 1)
            await eventually(lambda: cheap.statistics().quotes_sent == 1)
            best = min(await r.quotes(rid), key=lambda q: q.funding_rate)
            await r.accept(rid, best.quote_id)
            await eventually(lambda: dear.statistics().live_quotes == 0)
            assert dear.open_notional("ETH-PERP") == 0 and not dear.positions
            # cheap's position_opened comes on its own socket, after dear's quote_rejected
            # in seq order: no order between two sockets' arrivals is promised (SPEC §6)
            await eventually(lambda: cheap.statistics().fills == 1)
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("side", ["long", "short"])
async def test_the_maker_liquidates_a_requester_under_maintenance(live: Server, side: str) -> None:
    await live.pin("BTC-PERP", "50000")
    async with clients(live.url, 2, fund=usdc(10_000)) as (mc, r):
        mm = FixedMM(mc, collateral_pct=100)
        async with anyio.create_task_group() as tg:
            await tg.start(mm.run)
            rid = await _ask(r, "BTC-PERP", usdc(1000), side=side, lev=10)
            await eventually(lambda: mm.statistics().quotes_sent == 1)
            (q,) = await r.quotes(rid)
            pos = await r.accept(rid, q.quote_id)
            # IMr = 100: liquidatable once the requester's loss exceeds 50, i.e. a 5 % move;
            # at 6 % the loss is 60, the maker takes it, and earns min(5 % × 1000, 40) = 40.
            await live.pin("BTC-PERP", "47000" if side == "long" else "53000")
            await eventually(lambda: mm.statistics().liquidations_made == 1)
            done = await r.position(pos.position_id)
            assert done.status == "liquidated" and done.liquidator == mc.agent_id
            tg.cancel_scope.cancel()
        assert (await mc.balances()).free == usdc(10_000 + 60 + 40)
        assert (await r.balances()).free == usdc(10_000) - usdc("0.5") - usdc(100)
    await trio.lowlevel.checkpoint()
    await live.assert_balanced()


async def test_prices_used_by_the_hook_are_current(live: Server) -> None:
    seen: list[int | None] = []

    class Watching(FixedMM):
        def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
            seen.append(market.oracle_price)
            return None

    async with clients(live.url, 2, fund=usdc(1_000)) as (mc, r):
        mm = Watching(mc)
        async with anyio.create_task_group() as tg:
            await tg.start(mm.run)
            await live.pin("SOL-PERP", "123.45")
            await trio.sleep(0.3)  # two refreshes
            await _ask(r, "SOL-PERP", usdc(100), lev=2)
            await eventually(lambda: mm.statistics().declined == 1)
            tg.cancel_scope.cancel()
    assert seen == [parse_price("123.45")]
