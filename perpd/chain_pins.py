"""The local chain's Clock and oracle, pinned to a unit's time and prices while it runs.

The in-process SVM reads its Clock sysvar and the oracle through `ChainPins`: the
venue's clock and price book, or, while a unit executes a transaction, the time and the
prices that unit pinned, so the program computes at exactly the time and price the
mirror's change does. The chain submitter pins and unpins; `perpd.chain._open` gives it
to the local chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from perpd import engine
from perpd.markets import MARKETS
from perpd.oracle import Price, PriceBook


class ChainPins:
    """The local chain's Clock and oracle: the venue's, or the time and prices a unit
    pins while it executes, so the program computes at exactly the time and price the
    mirror's change does (the simulated feed may tick between two reads)."""

    def __init__(self, clock: Callable[[], float], book: PriceBook) -> None:
        self.clock = clock
        self.book = book
        self.time: int | None = None
        self.prices: dict[int, Price] = {}

    def __call__(self) -> float:
        return float(self.time) if self.time is not None else self.clock()

    def oracle(self, market: int) -> tuple[int, int, int]:
        """(price e-8, conf e-8, publish_time) of a market, by its index (SPEC §2)."""
        p = self.prices.get(market) or self.book.latest(_NAMES[market])
        if p is None:
            return 0, 0, 0  # no price yet: the program refuses it (PriceNotPositive)
        return p.price, p.conf, p.publish_time

    def pin(self, ctx: engine.Ctx, kind: str, markets: Sequence[int]) -> engine.Ctx:
        """Pin the time and the usable prices of ``markets`` (`OracleUnavailable` if
        one is not usable: nothing is sent on a price the venue would refuse); returns
        the unit's context reading the same prices."""
        self.time = chain_time(kind, ctx)
        self.prices = {m: self.book.usable(_NAMES[m]) for m in markets}
        pinned = {_NAMES[m]: p.price for m, p in self.prices.items()}
        original = ctx.price_of
        return replace(ctx, price_of=lambda name: pinned.get(name) or original(name))

    def unpin(self) -> None:
        self.time, self.prices = None, {}


_NAMES = {m.index: m.name for m in MARKETS.values()}


def chain_time(kind: str, ctx: engine.Ctx) -> int:
    """The time the program computes at: the unit's (a settlement too, so funding on
    chain settles to the crank's time, not the period boundary: decisions.md)."""
    return ctx.ts
