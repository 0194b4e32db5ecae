"""The simulated oracle: a seeded random walk per market, for local development.

Integer arithmetic only (a step is a whole number of ppm), so a seed gives the same
path on every machine. A pinned price (``POST /dev/price``) is republished with a fresh
publish time every tick, so it stays usable, and it survives a restart (the store keeps
pins). Prices carry source "simulated" everywhere they show.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from perpd.bounds import MAX_PRICE, MIN_PRICE
from perpd.markets import MARKETS
from perpd.oracle import Price, PriceBook

STEP_PPM = 400  # largest move per tick, ±0.04 %
CONF_PPM = 500  # quoted confidence, 0.05 % of the price (well inside the 2 % limit)
SOURCE = "simulated"


class SimulatedFeed:
    """Walks each market's price; `pin` freezes one market at a given price."""

    def __init__(
        self,
        book: PriceBook,
        *,
        seed: int = 7,
        pins: dict[str, int] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._book = book
        self._rng = random.Random(seed)
        self._clock = clock
        self.pins: dict[str, int] = dict(pins or {})
        self._walk = {m: MARKETS[m].sim_start_price for m in book.markets}
        self.ticks = 0

    def pin(self, market: str, price: int) -> Price:
        """Hold ``market`` at ``price`` from now on and publish it at once."""
        self.pins[market] = price
        self._walk[market] = price
        return self._publish(market, price)

    def _publish(self, market: str, price: int) -> Price:
        p = Price(market, price, price * CONF_PPM // 1_000_000, int(self._clock()), SOURCE)
        self._book.update(p)
        return p

    def tick(self) -> None:
        """Advance every unpinned market one step and republish every market."""
        self.ticks += 1
        for market in self._book.markets:
            if market not in self.pins:
                step = self._rng.randint(-STEP_PPM, STEP_PPM)
                walked = self._walk[market] * (1_000_000 + step) // 1_000_000
                self._walk[market] = max(MIN_PRICE, min(MAX_PRICE, walked))
            self._publish(market, self.pins.get(market, self._walk[market]))
