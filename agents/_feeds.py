"""Reference funding-rate feeds: what an arbitrage maker prices against.

A real feed would read the funding rate of the same market on another venue (where
the maker hedges); here the interface comes with a static feed (tests, manual
control) and a seeded simulated one (demos). Rates are signed ppm per the feed's own
period, with the usual perpetual convention: positive means longs pay shorts.
`ReferenceRate.per_period` converts to the venue's funding period.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["FundingRateFeed", "ReferenceRate", "SimulatedFundingFeed", "StaticFundingFeed"]

EIGHT_HOURS = 28_800


@dataclass(frozen=True)
class ReferenceRate:
    """A reference funding rate: ``rate`` ppm per ``period_s`` seconds (longs pay if > 0)."""

    market: str
    rate: int
    period_s: int
    as_of: float

    def per_period(self, period_s: int) -> int:
        """The same rate over ``period_s`` seconds, in ppm, truncated toward zero."""
        scaled = abs(self.rate) * period_s // self.period_s
        return scaled if self.rate >= 0 else -scaled


@runtime_checkable
class FundingRateFeed(Protocol):
    """Anything that can tell the current reference funding rate of a market."""

    async def reference_rate(self, market: str) -> ReferenceRate:
        """The latest rate; may raise if the source is unavailable (the maker then skips)."""
        ...


class StaticFundingFeed:
    """Rates set by hand: `set` changes them at once (tests, or operator overrides)."""

    def __init__(
        self,
        rates: Mapping[str, int],
        *,
        period_s: int = EIGHT_HOURS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rates = dict(rates)
        self.period_s = period_s
        self._clock = clock

    def set(self, market: str, rate: int) -> None:
        self._rates[market] = rate

    async def reference_rate(self, market: str) -> ReferenceRate:
        if market not in self._rates:
            raise KeyError(f"no reference rate for {market}")
        return ReferenceRate(market, self._rates[market], self.period_s, self._clock())


class SimulatedFundingFeed:
    """A seeded mean-reverting random walk per market, in whole ppm.

    Markets not named up front start at their mean when first asked for.

    Every ``interval_s`` of ``clock`` time each market's rate moves by
    ``reversion`` (a fraction) of its distance to ``mean`` plus a uniform step of at
    most ``step`` ppm. The path depends only on the seed and the number of steps, so a
    demo or a test is reproducible. It is marked simulated: ``source`` says so.
    """

    source = "simulated"

    def __init__(
        self,
        markets: Iterable[str] = (),
        *,
        seed: int = 1,
        mean: int | Mapping[str, int] = 100,
        step: int = 25,
        reversion: float = 0.1,
        interval_s: float = 5.0,
        period_s: int = EIGHT_HOURS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rng = random.Random(seed)
        self._default_mean = 100 if isinstance(mean, Mapping) else mean
        self._mean = dict(mean) if isinstance(mean, Mapping) else {}
        self._rates: dict[str, int] = {}
        for m in markets:
            self._add(m)
        self._step = step
        self._reversion = reversion
        self._interval = interval_s
        self.period_s = period_s
        self._clock = clock
        self._t = clock()

    def _add(self, market: str) -> None:
        self._mean.setdefault(market, self._default_mean)
        self._rates[market] = self._mean[market]

    def _advance(self) -> None:
        steps = int((self._clock() - self._t) // self._interval)
        if steps <= 0:
            return
        self._t += steps * self._interval
        for _ in range(min(steps, 10_000)):
            for m, r in self._rates.items():
                pull = round((self._mean[m] - r) * self._reversion)
                self._rates[m] = r + pull + self._rng.randint(-self._step, self._step)

    async def reference_rate(self, market: str) -> ReferenceRate:
        self._advance()
        if market not in self._rates:
            self._add(market)  # a market listed later starts at its mean
        return ReferenceRate(market, self._rates[market], self.period_s, time.time())
