"""Cancel and replace (issue 13): units of work, like `perpd.engine`'s.

A replace is one unit: the old quote is cancelled and the new one live, or (any
refusal rolls the unit back) nothing changed. Units run one at a time on the writer,
so an accept runs wholly before or wholly after a replace: the old quote is never
accepted after the new one exists, and a quote an accept reserved (chain) is
``accepted`` already, which cancel and replace refuse (409 ``quote_filled``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from perpd import engine
from perpd.consents import QuoteConsent
from perpd.engine_cancel import cancelled_data, quote_gone
from perpd.errors import Forbidden, NotFound
from perpd.records import Quote, QuoteStatus, RequestStatus, TradeRequest
from perpd.store import queries as q
from perpd.store import quote_controls as qc


def _own_live_quote(
    conn: sqlite3.Connection, ctx: engine.Ctx, agent_id: str, quote_id: str
) -> tuple[Quote, TradeRequest]:
    quote = q.get_quote(conn, quote_id)
    if quote is None:
        raise NotFound(f"no quote {quote_id!r}")
    if quote.agent_id != agent_id:
        raise Forbidden("only the maker can cancel or replace its quote")
    gone = quote_gone(quote, ctx.now)
    if gone is not None:
        raise gone
    r = q.get_request(conn, quote.request_id)
    assert r is not None, "a quote's request is pruned only after the quote"
    return quote, r


def _cancel(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    quote: Quote,
    r: TradeRequest,
    reason: str,
    replaced_by: str | None = None,
) -> Quote:
    q.set_quote_status(conn, quote.quote_id, QuoteStatus.CANCELLED)
    q.append_event(
        conn,
        ctx.ts,
        "quote_cancelled",
        cancelled_data(quote.quote_id, r.request_id, reason, replaced_by),
        market=r.market,
        audience=[quote.agent_id, r.agent_id],
    )
    return replace(quote, status=QuoteStatus.CANCELLED)


def cancel_quote(
    conn: sqlite3.Connection, ctx: engine.Ctx, *, agent_id: str, quote_id: str
) -> Quote:
    """The maker pulls its live quote (403 for anyone else; 409 once it is not live)."""
    quote, r = _own_live_quote(conn, ctx, agent_id, quote_id)
    return _cancel(conn, ctx, quote, r, "maker")


def replace_quote(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    *,
    agent_id: str,
    quote_id: str,
    rate: int,
    collateral: int,
    valid_for: int = 10,
    valid_until: int | None = None,
    consent: QuoteConsent | None = None,
    client_id: str | None = None,
) -> Quote:
    """Cancel ``quote_id`` and quote anew on its request, as one unit; the new quote
    passes every check a quote does (the old one no longer counts in the caps)."""
    old, r = _own_live_quote(conn, ctx, agent_id, quote_id)
    new_id = engine.new_id("quo")
    _cancel(conn, ctx, old, r, "replaced", replaced_by=new_id)
    return engine.create_quote(
        conn,
        ctx,
        request_id=r.request_id,
        agent_id=agent_id,
        rate=rate,
        collateral=collateral,
        valid_for=valid_for,
        valid_until=valid_until,
        consent=consent,
        client_id=client_id,
        quote_id=new_id,
    )


def cancel_request(
    conn: sqlite3.Connection, ctx: engine.Ctx, *, agent_id: str, request_id: str
) -> TradeRequest:
    """The requester withdraws its open request; its live quotes die with it
    (``quote_cancelled``, reason ``request_cancelled``, to each maker)."""
    r = q.get_request(conn, request_id)
    if r is None:
        raise NotFound(f"no request {request_id!r}")
    if r.agent_id != agent_id:
        raise Forbidden("only the requester can cancel its request")
    engine.require_live(ctx, r)
    q.set_request_status(conn, request_id, RequestStatus.CANCELLED)
    events: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
        (r.market, cancelled_data(quote_id, request_id, "request_cancelled"), (maker, agent_id))
        for quote_id, maker in qc.cancel_live_quotes_on_request(conn, request_id)
    ]
    q.append_events_bulk(conn, ctx.ts, "quote_cancelled", events)
    q.append_event(
        conn,
        ctx.ts,
        "request_cancelled",
        {"request_id": request_id, "market": r.market},
        market=r.market,
        public=True,
    )
    return replace(r, status=RequestStatus.CANCELLED)
