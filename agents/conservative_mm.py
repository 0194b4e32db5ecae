"""Conservative market maker: small sizes, low leverage only, high rates, full collateral.

It serves only requesters that borrow little (leverage ≤ 5) for small notionals, asks a
high funding rate, and posts collateral equal to the whole notional (1×), so a price
move cannot liquidate it short of the asset going to zero or doubling. It rarely wins
against tighter makers; it is the liquidity that is still there when they are full.

    python -m agents.conservative_mm --url http://127.0.0.1:8000 --keypair cmm.json
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from agents import _runner
from agents._client import Client
from agents._market_maker import MarketMaker, QuoteTerms, RiskLimits
from agents._models import MICRO, Market, TradeRequest

__all__ = ["ConservativeMM"]


class ConservativeMM(MarketMaker):
    """Quotes ``min(rate, max_funding_rate)`` if that is at least ``min_rate``.

    Args:
        max_size: largest notional served, micro-USDC.
        max_leverage: highest requester leverage served.
        rate: the rate asked, ppm per period.
        min_rate: below this the request is declined, ppm per period.
    """

    default_limits = RiskLimits(
        max_open_notional_per_market=20_000 * MICRO,
        max_notional_per_counterparty=5_000 * MICRO,
        min_free_collateral=5_000 * MICRO,
    )

    def __init__(
        self,
        client: Client,
        *,
        max_size: int = 2_000 * MICRO,
        max_leverage: int = 5,
        rate: int = 2_000,
        min_rate: int = 1_000,
        **options: Any,
    ) -> None:
        super().__init__(client, **options)
        self.max_size = max_size
        self.max_leverage = max_leverage
        self.rate = rate
        self.min_rate = min_rate

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        if request.size > self.max_size or request.leverage > self.max_leverage:
            return None
        rate = min(self.rate, request.max_funding_rate)
        if rate < self.min_rate:
            return None
        return QuoteTerms(funding_rate=rate, collateral=request.size, valid_for=10)


def build(client: Client, args: argparse.Namespace) -> ConservativeMM:
    return ConservativeMM(client, markets=_runner.markets_arg(args))


def main(argv: list[str] | None = None) -> int:
    args = _runner.parser("conservative_mm", __doc__ or "").parse_args(argv)
    return _runner.main(build, args)


if __name__ == "__main__":
    sys.exit(main())
