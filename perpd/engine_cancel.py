"""Cancelling live quotes (issue 13): why a quote is no longer live, and mass cancels.

Shared by the maker's own cancels and replaces (`perpd.engine_quotes`), cancel-on-
disconnect and maker protection (`perpd.engine_mmp`); runs inside the caller's unit.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from perpd.errors import Conflict
from perpd.records import Quote, QuoteStatus
from perpd.store import queries as q
from perpd.store import quote_controls as qc

if TYPE_CHECKING:
    from perpd.engine import Ctx

REASONS = ("maker", "replaced", "disconnect", "mmp", "request_cancelled")


def quote_gone(quote: Quote, now: float) -> Conflict | None:
    """The 409 that says why ``quote`` can no longer be cancelled, replaced or accepted
    (None: it is live). A quote reserved by a chain accept is already ``accepted``."""
    status = quote.status
    if status == QuoteStatus.LIVE and now < quote.expires_at:
        return None
    qid = quote.quote_id
    if status == QuoteStatus.CANCELLED:
        return Conflict(f"quote {qid} was cancelled", code="quote_cancelled")
    if status == QuoteStatus.ACCEPTED:
        return Conflict(f"quote {qid} is accepted (or being accepted)", code="quote_filled")
    if status == QuoteStatus.REJECTED:
        return Conflict(f"quote {qid} was rejected: another quote filled", code="quote_rejected")
    if status == QuoteStatus.FAILED:
        return Conflict(f"quote {qid} was refused by the chain", code="quote_rejected")
    return Conflict(f"quote {qid} has expired", code="quote_expired")


def cancelled_data(
    quote_id: str, request_id: str, reason: str, replaced_by: str | None = None
) -> dict[str, Any]:
    """The ``quote_cancelled`` event's data (issue 13's contract)."""
    assert reason in REASONS
    data: dict[str, Any] = {"quote_id": quote_id, "request_id": request_id, "reason": reason}
    if replaced_by is not None:
        data["replaced_by"] = replaced_by
    return data


def cancel_all_of(conn: sqlite3.Connection, ctx: Ctx, agent_id: str, reason: str) -> int:
    """Cancel every live quote of ``agent_id`` at once: one UPDATE, one events insert
    (``quote_cancelled`` to each maker and requester); returns how many."""
    cancelled = qc.cancel_live_quotes_of_agent(conn, agent_id, ctx.now)
    q.append_events_bulk(
        conn,
        ctx.ts,
        "quote_cancelled",
        [
            (market, cancelled_data(quote_id, request_id, reason), (agent_id, requester))
            for quote_id, request_id, market, requester in cancelled
        ],
    )
    return len(cancelled)
