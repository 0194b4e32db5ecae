"""Oracle prices as the daemon sees them: one latest `Price` per market in a `PriceBook`.

Feeds (the simulated walk, the Pyth Hermes poller) write into the book; trading reads
from it with `usable()`, which applies SPEC §5: a price older than 60 s or with a
confidence wider than 2% of the price is not usable (`oracle_unavailable`).
Prices are integers with exponent -8 (`PRICE_EXPO`); feeds normalise on the way in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import trio

from perpd.bounds import MAX_PRICE
from perpd.errors import OracleUnavailable

PRICE_EXPO = -8
MAX_AGE_S = 60
MAX_CONF_PPM = 20_000  # 2% of the price


@dataclass(frozen=True)
class Price:
    market: str
    price: int  # exponent -8, > 0
    conf: int  # exponent -8, >= 0
    publish_time: int  # unix seconds
    source: str  # "simulated", "pinned" or "pyth"


def normalize(value: int, expo: int) -> int:
    """``value × 10^expo`` as an integer with exponent -8, truncated toward zero."""
    shift = expo - PRICE_EXPO
    if shift >= 0:
        return value * 10**shift
    q = abs(value) // 10**-shift
    return q if value >= 0 else -q


def unusable_reason(p: Price, now: float) -> str | None:
    """Why ``p`` may not be traded on at ``now``, or None if it may (pure)."""
    if p.price <= 0:
        return f"{p.market}: oracle price {p.price} is not positive"
    if p.price > MAX_PRICE:  # past what the venue can store and settle (perpd.bounds)
        return f"{p.market}: oracle price {p.price} is above the supported maximum {MAX_PRICE}"
    if now - p.publish_time > MAX_AGE_S:
        return f"{p.market}: oracle price is stale ({int(now - p.publish_time)} s old)"
    if p.conf * 1_000_000 > p.price * MAX_CONF_PPM:
        return f"{p.market}: oracle confidence {p.conf} is wider than 2% of {p.price}"
    return None


class PriceBook:
    """Latest price per market, shared by the feeds (writers) and trading (readers).

    ``update`` is synchronous and never blocks; ``wait_update`` lets the liquidation
    watcher sleep until something changes.
    """

    def __init__(self, markets: Iterable[str], *, clock: Callable[[], float] = time.time) -> None:
        self._markets = tuple(markets)
        self._prices: dict[str, Price] = {}
        self._clock = clock
        self._version = 0
        self._changed = trio.Event()

    @property
    def markets(self) -> tuple[str, ...]:
        return self._markets

    @property
    def version(self) -> int:
        """Counts updates; pass it to `wait_update` to wait for the next one."""
        return self._version

    def update(self, price: Price) -> bool:
        """Record ``price`` unless it is older than what the book holds; True if recorded."""
        if price.market not in self._markets:
            raise ValueError(f"unknown market {price.market!r}")
        held = self._prices.get(price.market)
        if held is not None and price.publish_time < held.publish_time:
            return False
        self._prices[price.market] = price
        self._version += 1
        self._changed.set()
        self._changed = trio.Event()
        return True

    def latest(self, market: str) -> Price | None:
        """The last recorded price, usable or not."""
        return self._prices.get(market)

    def usable(self, market: str) -> Price:
        """The price to trade on now; `OracleUnavailable` (503) if there is none."""
        p = self._prices.get(market)
        if p is None:
            raise OracleUnavailable(f"{market}: no oracle price yet")
        reason = unusable_reason(p, self._clock())
        if reason is not None:
            raise OracleUnavailable(reason)
        return p

    async def wait_update(self, seen_version: int) -> int:
        """Block until the book's version is past ``seen_version``; returns the new version.

        Cancel-safe: nothing is consumed.
        """
        while self._version <= seen_version:
            await self._changed.wait()
        return self._version

    def statistics(self) -> dict[str, object]:
        return {"version": self._version, "markets": len(self._prices)}
