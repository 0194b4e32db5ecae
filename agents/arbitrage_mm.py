"""Arbitrage market maker: prices funding off a reference feed, skewed by its inventory.

The maker hedges each position on a reference venue, so its cost is that venue's
funding rate ``r`` (positive: longs pay shorts), rescaled to this venue's period. A
long requester makes the maker short here and long there, paying ``r`` there, so it
asks ``r + spread``; a short requester makes it long here and short there, receiving
``r``, so it can pay the requester up to that: it asks ``-r + spread``.

Its net inventory ``I`` (long > 0, live quotes counted as filled) tilts the price
toward trades that reduce it: the rate becomes ``s·(r − skew·I/limit) + spread`` for a
requester of side ``s`` (+1 long, −1 short). A trade that would take ``|I|`` beyond
``inventory_limit`` is refused outright; one that reduces it is always quoted.

    python -m agents.arbitrage_mm --url http://127.0.0.1:8000 --keypair arb.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agents import _runner
from agents._client import Client
from agents._feeds import FundingRateFeed, ReferenceRate, SimulatedFundingFeed
from agents._market_maker import MAX_RATE_PPM, MarketMaker, QuoteTerms, RiskLimits
from agents._models import MICRO, Market, TradeRequest

__all__ = ["ArbitrageMM"]


def _trunc_div(a: int, b: int) -> int:
    """``a / b`` truncated toward zero (Python's ``//`` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


class ArbitrageMM(MarketMaker):
    """Quotes around a reference funding rate; see the module docstring for the formula.

    Args:
        feed: the `FundingRateFeed` it hedges against.
        spread: ppm per period it keeps on every trade.
        skew: ppm per period of tilt at a full inventory (``|I| = inventory_limit``).
        inventory_limit: largest net notional per market, micro-USDC.
        leverage: collateral posted is ``size / leverage`` (at least the venue minimum).
    """

    default_limits = RiskLimits(
        max_open_notional_per_market=200_000 * MICRO,
        max_notional_per_counterparty=50_000 * MICRO,
        min_free_collateral=1_000 * MICRO,
    )

    def __init__(
        self,
        client: Client,
        feed: FundingRateFeed,
        *,
        spread: int = 100,
        skew: int = 300,
        inventory_limit: int = 50_000 * MICRO,
        leverage: int = 10,
        **options: Any,
    ) -> None:
        super().__init__(client, **options)
        self.feed = feed
        self.spread = spread
        self.skew = skew
        self.inventory_limit = inventory_limit
        self.leverage = leverage
        self.reference: dict[str, ReferenceRate] = {}

    async def refresh(self) -> None:
        """Fetch the reference rate of every market made (a failing market is skipped)."""
        for name in self.markets:
            try:
                self.reference[name] = await self.feed.reference_rate(name)
            except Exception:  # that market goes unquoted until the feed answers again
                self.reference.pop(name, None)

    def price(self, request: TradeRequest, market: Market) -> int | None:
        """The rate this maker would ask, before limits; None without a reference."""
        ref = self.reference.get(market.market)
        if ref is None:
            return None
        s = 1 if request.side == "long" else -1
        inventory = self.inventory(market.market) + self.pending_inventory(market.market)
        tilt = _trunc_div(self.skew * inventory, self.inventory_limit)
        rate = s * (ref.per_period(market.funding_period_s) - tilt) + self.spread
        return max(-MAX_RATE_PPM, min(MAX_RATE_PPM, rate))

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        s = 1 if request.side == "long" else -1
        inventory = self.inventory(market.market) + self.pending_inventory(market.market)
        after = inventory - s * request.size
        if abs(after) > self.inventory_limit and abs(after) > abs(inventory):
            return None
        rate = self.price(request, market)
        if rate is None or rate > request.max_funding_rate:
            return None
        collateral = max(market.min_collateral(request.size), request.size // self.leverage)
        return QuoteTerms(funding_rate=rate, collateral=collateral, valid_for=10)


def build(client: Client, args: argparse.Namespace) -> ArbitrageMM:
    feed = SimulatedFundingFeed(seed=args.feed_seed, mean=args.feed_mean)
    return ArbitrageMM(client, feed, markets=_runner.markets_arg(args))


def main(argv: list[str] | None = None) -> int:
    p = _runner.parser("arbitrage_mm", __doc__ or "")
    p.add_argument("--feed-seed", type=int, default=1, help="simulated reference feed seed")
    p.add_argument("--feed-mean", type=int, default=100, help="simulated feed's mean, ppm per 8 h")
    return _runner.main(build, p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
