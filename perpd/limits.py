"""What one agent may cost everyone: minimum sizes and caps on live order flow.

Pure values, checked by the engine inside the unit of work that would exceed them (so
two racing calls cannot both slip under a cap); the minimum size is also checked by the
router, before the writer. Listed in docs/limits.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perpd.errors import InvalidRequest
from perpd.markets import MARKETS, get_market
from perpd.units import format_usdc

DEFAULT_MIN_SIZE = 10_000_000  # micro-USDC: 10 USDC, every market


@dataclass(frozen=True)
class TradeLimits:
    # per-market minimum request size (micro-USDC); markets not named use the default
    min_size: tuple[tuple[str, int], ...] = ()
    max_open_requests_per_agent: int = 100
    max_live_quotes_per_agent: int = 500
    max_live_quotes_per_request: int = 100
    max_live_quotes_per_maker_request: int = 1
    expiry_batch: int = 200  # rows per expiry unit of work
    # derived: market -> minimum size
    _min: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        table = {name: DEFAULT_MIN_SIZE for name in MARKETS}
        for market, size in self.min_size:
            get_market(market)  # an unknown market is a configuration error
            if size < 1:
                raise ValueError(f"minimum size of {market} must be positive")
            table[market] = size
        for name, value in vars(self).items():
            if name.startswith("max_") or name == "expiry_batch":
                if value < 1:
                    raise ValueError(f"{name} must be at least 1")
        object.__setattr__(self, "_min", table)

    def min_size_of(self, market: str) -> int:
        return self._min[market]

    def refuse_dust(self, market: str, size: int) -> None:
        """400 for a request below ``market``'s minimum size. The router checks it before
        the request reaches the writer (a dust flood costs no transaction); the engine
        checks it again inside the unit of work, for every other caller."""
        least = self._min[market]
        if size < least:
            raise InvalidRequest(f"size_usdc must be at least {format_usdc(least)} on {market}")
