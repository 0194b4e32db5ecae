"""`Trader`: the requester's side of the RFQ — request, gather quotes, take the best, close.

The default choice is the lowest funding rate (the requester pays it every period);
among equal rates, the quote with more maker collateral (a maker that can lose more
before it is liquidated is a safer counterparty), then the older one. Override
`Trader.choose` or pass ``choose=`` to decide differently, including declining all.

If the chosen quote is gone by the time it is accepted (it expired, or the maker no
longer has the collateral), the next best is tried, until the request itself expires:
the daemon refuses a dead quote without changing anything, so trying the next one is
always safe.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from agents._client import Client
from agents._errors import (
    ApiError,
    Conflict,
    InsufficientCollateral,
    NotFound,
    QuoteExpired,
    RequestExpired,
)
from agents._models import CloseResult, HistoryPage, Position, Quote, Side, TradeRequest

__all__ = ["Chooser", "HistoryTally", "TradeHistory", "Trader", "TraderStatistics"]

log = logging.getLogger("agents.trader")

Chooser = Callable[[TradeRequest, Sequence[Quote]], Quote | None]
T = TypeVar("T")


# a quote that went between the read and the accept: try the next live one
_QUOTE_GONE = ("quote_cancelled", "quote_rejected", "quote_filled")


@dataclass(frozen=True)
class TraderStatistics:
    requests: int
    quotes_seen: int
    fills: int
    unfilled: int
    accept_retries: int
    closes: int
    refused: Counter[str]


class Trader:
    """Opens and closes positions for one agent.

    Args:
        client: the agent's `Client`.
        quote_window: seconds to collect quotes before choosing (kept inside the
            request's lifetime).
        choose: a replacement for `choose`.
    """

    def __init__(
        self, client: Client, *, quote_window: float = 2.0, choose: Chooser | None = None
    ) -> None:
        self.client = client
        self.quote_window = quote_window
        self._choose = choose
        self._stats = Counter[str]()
        self._refused = Counter[str]()

    def choose(self, request: TradeRequest, quotes: Sequence[Quote]) -> Quote | None:
        """The quote to accept, or None to let the request lapse.

        Default: lowest rate, then most maker collateral, then the oldest quote.
        """
        if self._choose is not None:
            return self._choose(request, quotes)
        if not quotes:
            return None
        return min(quotes, key=lambda q: (q.funding_rate, -q.collateral, q.created_at or 0))

    def statistics(self) -> TraderStatistics:
        s = self._stats
        return TraderStatistics(
            requests=s["requests"],
            quotes_seen=s["quotes_seen"],
            fills=s["fills"],
            unfilled=s["unfilled"],
            accept_retries=s["accept_retries"],
            closes=s["closes"],
            refused=Counter(self._refused),
        )

    async def open(
        self,
        market: str,
        side: Side,
        size: int,
        *,
        leverage: int,
        max_funding_rate: int,
        duration: str = "perpetual",
        expires_in: int = 30,
        quote_window: float | None = None,
    ) -> Position | None:
        """Request a position, wait for quotes, accept the chosen one.

        Returns the new position, or None if no acceptable quote could be taken before
        the request expired. Refusals of the request itself (no collateral, leverage too
        high, ...) are raised. Cancelling is safe: an unaccepted request just expires.
        """
        request = await self.client.request_trade(
            market,
            side,
            size,
            leverage=leverage,
            max_funding_rate=max_funding_rate,
            duration=duration,
            expires_in=expires_in,
        )
        self._stats["requests"] += 1
        return await self.fill(request, quote_window=quote_window)

    async def fill(
        self, request: TradeRequest, *, quote_window: float | None = None
    ) -> Position | None:
        """Gather quotes on an existing request of this agent and accept the chosen one."""
        window = self.quote_window if quote_window is None else quote_window
        remaining = request.expires_at - self.client.signer.clock()
        await anyio.sleep(max(0.0, min(window, remaining - 1.0)))
        tried: set[str] = set()
        first = True
        while self.client.signer.clock() < request.expires_at:
            quotes = [
                q for q in await self.client.quotes(request.request_id) if q.quote_id not in tried
            ]
            if first:
                self._stats["quotes_seen"] += len(quotes)
                first = False
            pick = self.choose(request, quotes)
            if pick is None:
                break
            tried.add(pick.quote_id)
            try:
                position = await self.client.accept(request.request_id, pick.quote_id)
            except (QuoteExpired, InsufficientCollateral, NotFound) as exc:
                self._refused[exc.code] += 1
                self._stats["accept_retries"] += 1
                continue
            except RequestExpired as exc:
                self._refused[exc.code] += 1
                break
            except Conflict as exc:
                self._refused[exc.code] += 1
                if exc.code not in _QUOTE_GONE:
                    raise
                # replaced or pulled meanwhile (issue 13): the live quotes, read again,
                # hold its replacement if there is one
                self._stats["accept_retries"] += 1
                continue
            self._stats["fills"] += 1
            return position
        self._stats["unfilled"] += 1
        return None

    async def close(self, position_id: str, size_percent: int = 100) -> CloseResult:
        """Close ``size_percent`` of a position this agent requested."""
        try:
            result = await self.client.close(position_id, size_percent)
        except ApiError as exc:
            self._refused[exc.code] += 1
            raise
        self._stats["closes"] += 1
        return result


# ---------------------------------------------------------------- history (issue 13)


@dataclass(frozen=True)
class TradeHistory:
    """What the daemon's history says this agent did, since the tally started."""

    fills: int
    notional: int  # micro-USDC, summed over the fills
    fees: int  # open fees this agent paid
    funding_paid: int
    funding_received: int


class HistoryTally:
    """Pages this agent's fills and funding payments (``GET /fills``, ``GET /funding``)
    from where the last `update` stopped, counting each once.

    The lists are keyset pages on an increasing key, so the page the last walk ended on
    is asked again from its own cursor: it holds the items seen then, which are skipped
    by key, and whatever came after them; no timestamp is trusted to resume.
    """

    def __init__(self, client: Client, page_size: int = 500) -> None:
        self.client = client
        self.page_size = page_size
        self._cursors: dict[str, str | None] = {"fills": None, "funding": None}
        self._last = {"fills": 0, "funding": 0}
        self._totals = Counter[str]()

    async def _new(
        self, name: str, page: Callable[..., Awaitable[HistoryPage[T]]], key: Callable[[T], int]
    ) -> list[T]:
        cursor, fresh = self._cursors[name], []
        while True:
            got = await page(cursor=cursor, limit=self.page_size)
            fresh += [x for x in got.items if key(x) > self._last[name]]
            if got.next_cursor is None:
                break
            cursor = got.next_cursor
        self._cursors[name] = cursor
        if fresh:
            self._last[name] = key(fresh[-1])
        return fresh

    async def update(self) -> TradeHistory:
        """Read what is new and return the running totals."""
        t = self._totals
        fills: list[Any] = await self._new("fills", self.client.fills, lambda f: f.fill_id)
        for f in fills:
            t["fills"] += 1
            t["notional"] += f.size
            t["fees"] += f.fee
        payments: list[Any] = await self._new(
            "funding", self.client.funding, lambda p: p.payment_id
        )
        for p in payments:
            t["funding_paid" if p.direction == "paid" else "funding_received"] += p.amount
        return self.totals()

    def totals(self) -> TradeHistory:
        t = self._totals
        return TradeHistory(
            t["fills"], t["notional"], t["fees"], t["funding_paid"], t["funding_received"]
        )
