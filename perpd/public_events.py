"""What the unauthenticated stream (``GET /ws/public``) may carry: public data only.

The rule (docs/decisions.md, "Issue 15"): an event goes out on the public stream only
with fields that the unsigned GETs already show to anyone (``GET /markets``,
``GET /requests``, ``GET /quotes``, ``GET /positions``), so the stream tells nobody
anything a poller could not learn. Events the venue marks public pass as they are;
an agent's private events pass only through the projections below, which keep the
fields of the public object (a quote as ``GET /quotes`` shows it, less the maker's
consent signature, which only its requester needs; a position as
``GET /positions/{id}`` shows it) and drop the rest (fees, balances released, reward,
reasons of a cancel, error messages). Everything else is private and never sent.
Pure functions, so the rule is tested without a daemon.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from perpd.money import PositionState
from perpd.records import Event, Position, PositionStatus, Quote, QuoteStatus
from perpd.views import position_view, quote_view


def _fields_of_views() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keys of a quote (less its consent) and of a position as the public GETs show
    them, taken from `perpd.views` itself so that the stream and the GETs never drift."""
    state = PositionState(1, 1, 1, 1, 1, 1, 1, 0, 0, 0)
    position = Position(
        "p", "r", "q", "BTC-PERP", "a", "b", 1, state, 0, 0, PositionStatus.OPEN, 0, None, 0
    )
    quote = Quote("q", "r", "a", 0, 1, 0, 1, QuoteStatus.LIVE)
    return tuple(k for k in quote_view(quote) if k != "consent"), tuple(position_view(position, 1))


_QUOTE, _POSITION = _fields_of_views()
_IDS = ("quote_id", "request_id")
_FUNDING = ("position_id", "amount_usdc", "payer", "receiver", "settled_to", "funding_rate")


def _keep(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data[k] for k in keys if k in data}


def _position(data: dict[str, Any]) -> dict[str, Any]:
    return _keep(data, _POSITION)


def _closed(data: dict[str, Any]) -> dict[str, Any]:
    """A close: the position object (its running realized PnL, as GET shows it) and
    how much of it closed, which two successive position objects show anyway."""
    out = _position(data)
    if "total_realized_pnl_usdc" in data:
        out["realized_pnl_usdc"] = data["total_realized_pnl_usdc"]
    return out | _keep(data, ("size_percent", "closed_size_usdc"))


def _liquidated(data: dict[str, Any]) -> dict[str, Any]:
    # which side fell below maintenance follows from the margin ratios GET showed
    return _position(data) | _keep(data, ("liquidated_side",))


def _failed(data: dict[str, Any]) -> dict[str, Any]:
    # GET /positions/{id} shows status "failed"; the chain's error text stays private
    return _keep(data, ("position_id", "request_id", "quote_id")) | {
        "status": PositionStatus.FAILED
    }


PROJECTIONS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "quote": lambda d: _keep(d, _QUOTE),
    "quote_accepted": lambda d: _keep(d, (*_IDS, "position_id")),
    "quote_rejected": lambda d: _keep(d, _IDS),
    "quote_expired": lambda d: _keep(d, _IDS),
    "quote_cancelled": lambda d: _keep(d, _IDS),  # not why: mmp, disconnect are private
    "position_opened": _position,
    "position_closed": _closed,
    "liquidation": _liquidated,
    "funding_settled": lambda d: _keep(d, _FUNDING),
    "position_failed": _failed,
}
PUBLIC_TYPES = tuple(sorted(PROJECTIONS))  # private event types the stream projects


def public_data(e: Event) -> dict[str, Any] | None:
    """``e``'s data as the public stream shows it; None if it is not public at all."""
    if e.market is None:
        return None
    if e.public:
        return e.data
    project = PROJECTIONS.get(e.type)
    return None if project is None else project(e.data)


def public_wire(e: Event) -> str | None:
    """The public stream's frame text for ``e`` (the /ws frame shape), or None."""
    if e.public and e.market is not None:
        return e.wire  # the same text /ws sends, built once
    data = public_data(e)
    if data is None:
        return None
    return json.dumps(
        {"type": e.type, "seq": e.seq, "ts": e.ts, "data": data}, separators=(",", ":")
    )
