"""Aggressive market maker: quotes most requests, tight rates, thin collateral, larger sizes.

It quotes whatever its limits allow, at a rate just above its floor (undercut only by
makers with a better reference), and posts twice the venue's minimum collateral: its
capital turns over fast, and it accepts that a sharp move gets it liquidated.

    python -m agents.aggressive_mm --url http://127.0.0.1:8000 --keypair amm.json
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from agents import _runner
from agents._client import Client
from agents._market_maker import MarketMaker, QuoteTerms, RiskLimits
from agents._models import MICRO, Market, TradeRequest

__all__ = ["AggressiveMM"]


class AggressiveMM(MarketMaker):
    """Quotes ``base_rate`` plus up to ``jitter`` ppm, capped by the requester's maximum.

    Args:
        max_size: largest notional served, micro-USDC.
        base_rate: lowest rate it asks, ppm per period; requests capped below are declined.
        jitter: random extra ppm, so that competing aggressive makers do not tie.
        collateral_multiple: collateral as a multiple of the venue minimum.
        seed: for the jitter (reproducible demos and tests).
    """

    default_limits = RiskLimits(
        max_open_notional_per_market=250_000 * MICRO,
        max_notional_per_counterparty=100_000 * MICRO,
        min_free_collateral=500 * MICRO,
    )

    def __init__(
        self,
        client: Client,
        *,
        max_size: int = 50_000 * MICRO,
        base_rate: int = 300,
        jitter: int = 100,
        collateral_multiple: int = 2,
        seed: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(client, **options)
        self.max_size = max_size
        self.base_rate = base_rate
        self.jitter = jitter
        self.collateral_multiple = collateral_multiple
        self._rng = random.Random(seed)

    def quote(self, request: TradeRequest, market: Market) -> QuoteTerms | None:
        if request.size > self.max_size or request.max_funding_rate < self.base_rate:
            return None
        rate = min(self.base_rate + self._rng.randint(0, self.jitter), request.max_funding_rate)
        collateral = market.min_collateral(request.size) * self.collateral_multiple
        return QuoteTerms(funding_rate=rate, collateral=collateral, valid_for=5)


def build(client: Client, args: argparse.Namespace) -> AggressiveMM:
    return AggressiveMM(client, markets=_runner.markets_arg(args))


def main(argv: list[str] | None = None) -> int:
    args = _runner.parser("aggressive_mm", __doc__ or "").parse_args(argv)
    return _runner.main(build, args)


if __name__ == "__main__":
    sys.exit(main())
