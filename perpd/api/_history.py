"""History (issue 13): the caller's fills, funding payments and liquidations, signed like
``GET /accounts/{id}``, cursor-paged on the event ``seq``, with time and market filters
and ``format=csv`` (`perpd.api._pages`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from quart import Blueprint, Response, request

from perpd.api._common import venue, verified
from perpd.api._pages import listing, query_window
from perpd.errors import Forbidden
from perpd.history_views import (
    FILL_FIELDS,
    FUNDING_FIELDS,
    LIQUIDATION_FIELDS,
    fill_item,
    funding_item,
    liquidation_item,
)
from perpd.store.history import HistoryRow, Window, page_history

bp = Blueprint("history", __name__)


async def _history(
    name: str,
    kind: str,
    cursor_kind: str,
    fields: Sequence[str],
    view: Callable[[HistoryRow, str], dict[str, Any]],
) -> Response:
    signer, _ = await verified()
    claimed = request.args.get("agent_id")
    if claimed is not None and claimed != signer.agent_id:
        raise Forbidden("an agent can only read its own history")
    w, fmt = query_window(cursor_kind)
    fetch = Window(w.after, w.limit + 1, w.market, w.since, w.until)
    rows = await venue().read(lambda conn: page_history(conn, signer.agent_id, kind, fetch))
    items = [(r.seq, view(r, signer.agent_id)) for r in rows]
    return listing(name, cursor_kind, fields, items, w, fmt)


@bp.get("/fills")
async def get_fills() -> Any:
    return await _history("fills", "fill", "fl", FILL_FIELDS, fill_item)


@bp.get("/funding")
async def get_funding() -> Any:
    period_s = venue().funding_period_s
    return await _history(
        "funding",
        "funding",
        "fu",
        FUNDING_FIELDS,
        lambda row, agent: funding_item(row, agent, period_s),
    )


@bp.get("/liquidations")
async def get_liquidations() -> Any:
    return await _history("liquidations", "liquidation", "lq", LIQUIDATION_FIELDS, liquidation_item)
