"""A random trader: opens positions of random market, side, size and leverage, holds, closes.

It is the demand side of the demo and a load generator: every few seconds, while it
holds fewer than ``max_open`` positions, it asks for a random position, takes the best
quote (`Trader`), holds it for a random time and closes it (sometimes half first). It
also watches its positions and liquidates a maker that falls under maintenance: the
reward is the trader's, and the maker's losses stop eating into its winnings.

    python -m agents.trader --url http://127.0.0.1:8000 --keypair trader.json --fund 20000
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
from collections import Counter
from collections.abc import Iterable, Sequence

import anyio
import anyio.abc

from agents import _runner
from agents._client import Client
from agents._errors import AgentError, ApiError, Conflict, TransportError
from agents._models import MICRO, Market, Position, Quote, Side, TradeRequest, format_usdc
from agents._trader import HistoryTally, Trader

__all__ = ["RandomTrader"]

log = logging.getLogger("agents.trader")

DEFAULT_SIZES = tuple(usdc * MICRO for usdc in (100, 250, 500, 1_000, 2_500, 5_000))


class RandomTrader:
    """Trades at random, within ``max_open`` positions at a time.

    Args:
        client: the agent's `Client`.
        markets: markets to trade (default: every listed market).
        seed: for reproducible runs.
        sizes: notionals to pick from, micro-USDC.
        leverages: requester leverages to pick from (capped by each market).
        max_funding_rate: the most it pays per period, ppm.
        hold_s: (min, max) seconds a position is held.
        think_s: (min, max) seconds between requests.
        max_open: positions held at once.
        expires_in: request lifetime, seconds; quote_window: seconds to collect quotes.
        cautious: the share of requests on which it takes the best-collateralised quote
            instead of the cheapest (a maker that posts more can lose more before it is
            liquidated, which some traders pay for).
        report_s: seconds between two reports of its fills and funding, read from the
            daemon's history (``GET /fills``, ``GET /funding``).
    """

    def __init__(
        self,
        client: Client,
        *,
        markets: Iterable[str] | None = None,
        seed: int | None = None,
        sizes: Sequence[int] = DEFAULT_SIZES,
        leverages: Sequence[int] = (2, 3, 5, 10),
        max_funding_rate: int = 3_000,
        hold_s: tuple[float, float] = (5.0, 30.0),
        think_s: tuple[float, float] = (0.5, 3.0),
        max_open: int = 3,
        expires_in: int = 10,
        quote_window: float = 1.5,
        cautious: float = 0.0,
        report_s: float = 30.0,
    ) -> None:
        self.client = client
        self.history = HistoryTally(client)
        self.report_s = report_s
        self.trader = Trader(client, quote_window=quote_window, choose=self._choose)
        self.cautious = cautious
        self._wanted = None if markets is None else list(markets)
        self._rng = random.Random(seed)
        self.sizes = list(sizes)
        self.leverages = list(leverages)
        self.max_funding_rate = max_funding_rate
        self.hold_s = hold_s
        self.think_s = think_s
        self.max_open = max_open
        self.expires_in = expires_in
        self.markets: dict[str, Market] = {}
        self.holding: dict[str, Position] = {}
        self.counts = Counter[str]()

    def _choose(self, request: TradeRequest, quotes: Sequence[Quote]) -> Quote | None:
        if not quotes:
            return None
        if self._rng.random() < self.cautious:
            return max(quotes, key=lambda q: (q.collateral, -q.funding_rate))
        return min(quotes, key=lambda q: (q.funding_rate, -q.collateral))

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Trade until cancelled. Cancel-safe: open positions stay open (close them later)."""
        listed = {m.market: m for m in await self.client.markets()}
        wanted = self._wanted if self._wanted is not None else list(listed)
        self.markets = {n: listed[n] for n in wanted if n in listed}
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_makers)
            tg.start_soon(self._report)
            task_status.started()
            while True:
                await anyio.sleep(self._rng.uniform(*self.think_s))
                if len(self.holding) + self.counts["in_flight"] < self.max_open:
                    tg.start_soon(self._round_trip)

    async def _round_trip(self) -> None:
        market = self._rng.choice(list(self.markets.values()))
        side: Side = self._rng.choice(("long", "short"))
        size = self._rng.choice(self.sizes)
        leverage = min(self._rng.choice(self.leverages), market.max_leverage)
        self.counts["in_flight"] += 1
        try:
            position = await self.trader.open(
                market.market,
                side,
                size,
                leverage=leverage,
                max_funding_rate=self.max_funding_rate,
                duration=self._rng.choice(("perpetual", "perpetual", "perpetual", "1h")),
                expires_in=self.expires_in,
            )
        except (ApiError, TransportError) as exc:
            self.counts[f"refused:{getattr(exc, 'code', 'transport')}"] += 1
            log.info("trader %s: request refused: %s", self.client.agent_id[:8], exc)
            await anyio.sleep(2.0)  # e.g. out of collateral until a position closes
            return
        finally:
            self.counts["in_flight"] -= 1
        if position is None:
            self.counts["unfilled"] += 1
            return
        self.counts["opened"] += 1
        self.holding[position.position_id] = position
        try:
            await anyio.sleep(self._rng.uniform(*self.hold_s))
            if self._rng.random() < 0.25:
                await self.trader.close(position.position_id, 50)
                self.counts["partial_closes"] += 1
                await anyio.sleep(self._rng.uniform(*self.hold_s) / 2)
            await self.trader.close(position.position_id, 100)
            self.counts["closed"] += 1
        except Conflict:
            self.counts["gone"] += 1  # liquidated, or closed at its term
        except AgentError as exc:
            log.warning("trader %s: close failed: %s", self.client.agent_id[:8], exc)
        finally:
            self.holding.pop(position.position_id, None)

    async def _report(self) -> None:
        """Page the fills and funding payments the daemon recorded, and log the totals."""
        while True:
            await anyio.sleep(self.report_s)
            try:
                h = await self.history.update()
            except AgentError as exc:
                log.info("trader %s: history unavailable: %s", self.client.agent_id[:8], exc)
                continue
            self.counts["fills_recorded"] = h.fills
            log.info(
                "trader %s: %d fills, %s USDC notional, fees %s, funding paid %s received %s",
                self.client.agent_id[:8],
                h.fills,
                format_usdc(h.notional),
                format_usdc(h.fees),
                format_usdc(h.funding_paid),
                format_usdc(h.funding_received),
            )

    async def _watch_makers(self) -> None:
        """Liquidate makers under maintenance on this trader's positions, once a second."""
        while True:
            await anyio.sleep(1.0)
            if not self.holding:
                continue
            try:
                mine = await self.client.my_positions("open")
            except AgentError:
                continue
            for p in mine:
                if p.requester == self.client.agent_id and p.liquidatable_side() == "maker":
                    try:
                        await self.client.liquidate(p.position_id)
                        self.counts["liquidations_made"] += 1
                    except AgentError:
                        pass  # someone was faster, or the price moved back


def build(client: Client, args: argparse.Namespace) -> RandomTrader:
    return RandomTrader(client, markets=_runner.markets_arg(args), seed=args.seed)


def main(argv: list[str] | None = None) -> int:
    p = _runner.parser("trader", __doc__ or "")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    return _runner.main(build, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
