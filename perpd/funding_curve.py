"""The funding curve (issue 13): per market and term, the best live quoted funding rate
for a requester, how many quotes are live, and the last filled rate.

Pure state, kept in memory and moved by committed events (`perpd.records.Event`), so
``GET /markets`` never scans the quotes table: the service (`perpd.nursery.funding_curve`)
loads it once from a snapshot and feeds it every commit. A quote leaves the curve with
any event that ends it (accepted, rejected, expired, cancelled, its request expired,
cancelled or filled, its chain lock failed), and by time once past its deadline.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from perpd.records import Event
from perpd.store.history import CurveSnapshot, LiveQuote
from perpd.units import format_rate, parse_rate
from perpd.views import duration_name

# events that end one quote (by quote_id) or every quote of a request (by request_id)
QUOTE_ENDS = ("quote_accepted", "quote_rejected", "quote_expired", "quote_cancelled")
REQUEST_ENDS = ("request_expired", "request_cancelled", "position_opened")
Point = dict[str, Any]


def duration_seconds(name: str) -> int | None:
    """``"perpetual"`` → None, ``"<n>h"`` → n × 3600 (the names `duration_name` makes)."""
    return None if name == "perpetual" else int(name.removesuffix("h")) * 3600


def _term(expires_at: int | None, opened_at: int) -> int | None:
    return None if expires_at is None else expires_at - opened_at


class _Term:
    """The live quotes of one market and term, with heaps of (rate, id) and (deadline,
    id) whose stale entries are dropped lazily: the best rate and the next deadline cost
    O(log n) each, whatever the number of live quotes."""

    def __init__(self) -> None:
        self.live: dict[str, LiveQuote] = {}
        self._rates: list[tuple[int, str]] = []
        self._deadlines: list[tuple[int, str]] = []

    def add(self, quote: LiveQuote) -> None:
        self.live[quote.quote_id] = quote
        heapq.heappush(self._rates, (quote.rate, quote.quote_id))
        heapq.heappush(self._deadlines, (quote.expires_at, quote.quote_id))

    def discard(self, quote_id: str) -> None:
        self.live.pop(quote_id, None)
        if len(self._rates) > 2 * len(self.live) + 64:  # mostly stale: rebuild
            self._rates = [(q.rate, i) for i, q in self.live.items()]
            self._deadlines = [(q.expires_at, i) for i, q in self.live.items()]
            heapq.heapify(self._rates)
            heapq.heapify(self._deadlines)

    def past(self, now: float) -> list[str]:
        """Live quotes whose deadline is not after ``now`` (they can never fill)."""
        out = []
        while self._deadlines and self._deadlines[0][0] <= now:
            _, quote_id = heapq.heappop(self._deadlines)
            if quote_id in self.live:
                out.append(quote_id)
        return out

    def best(self) -> int | None:
        while self._rates and self._rates[0][1] not in self.live:
            heapq.heappop(self._rates)
        return self._rates[0][0] if self._rates else None


class CurveBook:
    """Live quotes and last fills by market and duration (None: perpetual)."""

    def __init__(self) -> None:
        self._requests: dict[str, tuple[str, int | None]] = {}  # open: market, duration
        self._quotes: dict[str, LiveQuote] = {}
        self._by_request: dict[str, set[str]] = defaultdict(set)
        self._terms: dict[str, dict[int | None, _Term]] = defaultdict(dict)
        self._fills: dict[tuple[str, int | None], tuple[int, int]] = {}  # rate, time
        self.seq = 0  # the last event applied

    def load(self, snap: CurveSnapshot) -> None:
        """Start from a snapshot (`perpd.store.history.curve_snapshot`)."""
        self.seq = snap.seq
        for request_id, market, duration_s in snap.requests:
            self._requests[request_id] = (market, duration_s)
        for quote in snap.quotes:
            self._add(quote)
        for f in snap.fills:
            self._fills[(f.market, f.duration_s)] = (f.rate, f.filled_at)

    def _add(self, quote: LiveQuote) -> None:
        self._quotes[quote.quote_id] = quote
        self._by_request[quote.request_id].add(quote.quote_id)
        terms = self._terms[quote.market]
        terms.setdefault(quote.duration_s, _Term()).add(quote)

    def _drop(self, quote_id: str) -> None:
        quote = self._quotes.pop(quote_id, None)
        if quote is None:
            return
        term = self._terms[quote.market].get(quote.duration_s)
        if term is not None:
            term.discard(quote_id)
            if not term.live:
                del self._terms[quote.market][quote.duration_s]
        ids = self._by_request.get(quote.request_id)
        if ids is not None:
            ids.discard(quote_id)
            if not ids:
                del self._by_request[quote.request_id]

    def _drop_request(self, request_id: str) -> None:
        self._requests.pop(request_id, None)
        for quote_id in list(self._by_request.get(request_id, ())):
            self._drop(quote_id)

    def apply(self, events: Iterable[Event]) -> set[str]:
        """Apply committed events (those after `seq`); returns the markets that moved."""
        moved: set[str] = set()
        for e in events:
            if e.seq <= self.seq:
                continue
            self.seq = e.seq
            market = self._apply(e)
            if market is not None:
                moved.add(market)
        return moved

    def _apply(self, e: Event) -> str | None:
        d = e.data
        if e.type == "trade_request" and e.market is not None:
            self._requests[d["request_id"]] = (e.market, duration_seconds(d["duration"]))
            return None
        if e.type == "quote":
            held = self._requests.get(d["request_id"])
            if held is None:  # its request ended in the same commit
                return None
            market, duration_s = held
            rate = parse_rate(d["funding_rate"], "funding_rate")
            self._add(
                LiveQuote(d["quote_id"], d["request_id"], market, duration_s, rate, d["expires_at"])
            )
            return market
        if e.type in QUOTE_ENDS or e.type == "position_failed":
            self._drop(d["quote_id"])  # maybe gone already: past its deadline at a read
            return e.market
        if e.type in REQUEST_ENDS:
            self._drop_request(d["request_id"])
            if e.type == "position_opened":
                term = _term(d["expires_at"], d["opened_at"])
                rate = parse_rate(d["funding_rate"], "funding_rate")
                self._fills[(d["market"], term)] = (rate, d["opened_at"])
            return e.market
        return None

    def curve(self, market: str, now: float) -> list[Point]:
        """``market``'s curve at ``now``: one point per duration with a live quote or a
        fill, perpetual first, then by length. Quotes past their deadline leave here."""
        terms = self._terms.get(market, {})
        for held in list(terms.values()):
            for quote_id in held.past(now):
                self._drop(quote_id)
        lengths = set(terms) | {t for m, t in self._fills if m == market}
        points = []
        for length in sorted(lengths, key=lambda t: -1 if t is None else t):
            term = terms.get(length)
            best = None if term is None else term.best()
            fill = self._fills.get((market, length))
            points.append(
                {
                    "duration": duration_name(length),
                    "best_rate": None if best is None else format_rate(best),
                    "live_quotes": 0 if term is None else len(term.live),
                    "last_filled_rate": None if fill is None else format_rate(fill[0]),
                    "last_filled_at": None if fill is None else fill[1],
                }
            )
        return points
