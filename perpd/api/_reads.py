"""Read calls: public market data, and private reads signed by their agent (SPEC §6)."""

from __future__ import annotations

import contextlib
from functools import partial
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from quart import Blueprint, Response, jsonify, request

from perpd import engine
from perpd.api._common import venue, verified
from perpd.api._models import Position as PositionModel
from perpd.api._pages import decode_cursor as _decode_cursor
from perpd.api._pages import encode_cursor, listing, query_window
from perpd.api._services import services
from perpd.chain._errors import ChainUnavailable
from perpd.errors import Forbidden, InvalidRequest, NotFound, OracleUnavailable
from perpd.markets import MARKETS, get_market
from perpd.metrics import read_scrape
from perpd.records import PositionStatus
from perpd.store import queries as q
from perpd.store.history import Window, page_closed_positions
from perpd.units import format_price, format_ratio_ppm, format_usdc, iso, parse_int
from perpd.views import position_view, quote_view, request_view

bp = Blueprint("reads", __name__)

POSITION_STATUSES = (PositionStatus.OPEN, PositionStatus.CLOSED, PositionStatus.LIQUIDATED)
POSITION_FIELDS = PositionModel.__struct_fields__  # the csv columns of a position
GATED_BY_ORACLE = ("accept", "close", "liquidate")  # refused while the price is unusable
EVENTS_PAGE = (1000, 10_000)  # default and maximum events per page
# --chain none shows as what it is wherever it shows (SPEC §6)
NO_CHAIN = "--chain none: off-chain test mode, custodial, SQLite is the only ledger"


def _arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is not None and (not value or len(value) > 64):
        raise InvalidRequest(f"query parameter {name} is malformed")
    return value


def _page(kind: str, sizes: tuple[int, int] | None = None) -> tuple[int, int]:
    """``(after, limit)`` from ``?cursor=`` and ``?limit=`` (bounded default and maximum)."""
    default, top = sizes or services().pages
    limit = parse_int(request.args.get("limit", str(default)), "limit", 1, top)
    cursor = request.args.get("cursor")
    return (0 if cursor is None else _decode_cursor(kind, cursor)), limit


def _next_cursor(kind: str, rows: list[tuple[int, Any]], limit: int) -> str | None:
    """Rows were fetched ``limit + 1``: a cursor only if there is more after this page."""
    return encode_cursor(kind, rows[limit - 1][0]) if len(rows) > limit else None


def _unusable(v: Any, market: str) -> str | None:
    """Why ``market``'s price may not be traded on now (the book's own judgement)."""
    try:
        v.book.usable(market)
    except OracleUnavailable as exc:
        return exc.message
    return None


@bp.get("/markets")
async def get_markets() -> Any:
    v = venue()
    out = []
    now = v.clock()
    curves = services().curves  # i13-history: kept from the commits
    for m in MARKETS.values():
        p = v.book.latest(m.name)
        reason = _unusable(v, m.name)
        out.append(
            {
                "market": m.name,
                "index": m.index,
                "oracle_price": None if p is None else format_price(p.price),
                "oracle_conf": None if p is None else format_price(p.conf),
                "price_source": None if p is None else p.source,
                "publish_time": None if p is None else p.publish_time,
                "publish_time_iso": None if p is None else iso(p.publish_time),
                "price_usable": reason is None,
                # why not, and what waits for a usable price meanwhile (requests and
                # quotes do not need one; opening, closing and liquidating do)
                "price_unusable_reason": reason,
                "gated_actions": [] if reason is None else list(GATED_BY_ORACLE),
                "oracle_age_s": None if p is None else max(0, int(now - p.publish_time)),
                "oracle_confidence_ratio": None
                if p is None or p.price <= 0
                else format_ratio_ppm(p.conf * 1_000_000 // p.price),
                "pyth_feed_id": m.feed_id,
                "max_leverage": m.max_leverage,
                "funding_period_s": v.funding_period_s,
                "min_size_usdc": format_usdc(v.limits.min_size_of(m.name)),
                "funding_curve": [] if curves is None else curves.curve(m.name, now),
            }
        )
    lim = v.limits
    limits = {
        "max_open_requests_per_agent": lim.max_open_requests_per_agent,
        "max_live_quotes_per_agent": lim.max_live_quotes_per_agent,
        "max_live_quotes_per_request": lim.max_live_quotes_per_request,
        "max_live_quotes_per_maker_request": lim.max_live_quotes_per_maker_request,
    }
    return jsonify({"markets": out, "limits": limits})


@bp.get("/requests")
async def get_requests() -> Any:
    market = _arg("market")
    if market is not None:
        get_market(market)
    after, limit = _page("r")
    v = venue()
    now = v.clock()
    rows = await v.read(lambda conn: q.page_open_requests(conn, market, now, after, limit + 1))
    return jsonify(
        {
            "requests": [request_view(r) for _, r in rows[:limit]],
            "next_cursor": _next_cursor("r", rows, limit),
        }
    )


@bp.get("/requests/<request_id>")
async def get_request(request_id: str) -> Any:
    r = await venue().read(lambda conn: q.get_request(conn, request_id))
    if r is None:
        raise NotFound(f"no request {request_id!r}")
    return jsonify(request_view(r))


@bp.get("/quotes")
async def get_quotes() -> Any:
    request_id = _arg("request_id")
    if request_id is None:
        raise InvalidRequest("request_id is required")
    after, limit = _page("q")
    v = venue()
    now = v.clock()
    rows = await v.read(lambda conn: q.page_live_quotes(conn, request_id, now, after, limit + 1))
    return jsonify(
        {
            "quotes": [quote_view(x) for _, x in rows[:limit]],
            "next_cursor": _next_cursor("q", rows, limit),
        }
    )


@bp.get("/positions")
async def get_positions() -> Any:
    agent_id, wanted = _arg("agent_id"), _arg("status")
    if wanted is not None and wanted not in POSITION_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(POSITION_STATUSES)}")
    status = None if wanted is None else PositionStatus(wanted)
    v = venue()
    if agent_id is not None and status in (PositionStatus.CLOSED, PositionStatus.LIQUIDATED):
        return await _ended_positions(agent_id, status)
    w, fmt = query_window("p", services().pages)
    rows = await v.read(
        lambda conn: q.page_positions(
            conn, agent_id, status, w.after, w.limit + 1, w.market, (w.since, w.until)
        )
    )
    items = [(k, position_view(p, v.mark_price(p.market))) for k, p in rows]
    return listing("positions", "p", POSITION_FIELDS, items, w, fmt)


async def _ended_positions(agent_id: str, status: PositionStatus) -> Any:
    """Issue 13: an agent's closed or liquidated positions in the order they ended (the
    seq of the final close or of the liquidation), filtered on ``closed_at``."""
    kind = "pc" if status == PositionStatus.CLOSED else "pl"
    w, fmt = query_window(kind)
    fetch = Window(w.after, w.limit + 1, w.market, w.since, w.until)
    v = venue()
    rows = await v.read(lambda conn: page_closed_positions(conn, agent_id, status, fetch))
    items = [(k, position_view(p, None)) for k, p in rows]
    return listing("positions", kind, POSITION_FIELDS, items, w, fmt)


@bp.get("/positions/<position_id>")
async def get_position(position_id: str) -> Any:
    v = venue()
    p = await v.read(lambda conn: q.get_position(conn, position_id))
    if p is None:
        raise NotFound(f"no position {position_id!r}")
    return jsonify(position_view(p, v.mark_price(p.market)))


@bp.get("/accounts/<agent_id>")
async def get_account(agent_id: str) -> Any:
    v, _ = await verified()
    if agent_id != v.agent_id:
        raise Forbidden("an agent can only read its own account")
    deposits = venue().deposits
    if deposits is not None:  # what the agent deposited on chain itself, credited first
        with contextlib.suppress(ChainUnavailable):
            await deposits.pick_up([agent_id])
    return jsonify(await venue().read(lambda conn: engine.account_snapshot(conn, agent_id)))


@bp.get("/events")
async def get_events() -> Any:
    v, _ = await verified()
    after, limit = _page("e", EVENTS_PAGE)
    if "since" in request.args:
        if "cursor" in request.args:
            raise InvalidRequest("give since or cursor, not both")
        after = parse_int(request.args["since"], "since", 0, 2**62)
    rows = await venue().read(lambda conn: q.events_visible_to(conn, v.agent_id, after, limit + 1))
    return jsonify(
        {
            "events": [
                {"seq": e.seq, "type": e.type, "ts": e.ts, "market": e.market, "data": e.data}
                for e in rows[:limit]
            ],
            "next_cursor": _next_cursor("e", [(e.seq, e) for e in rows], limit),
        }
    )


@bp.get("/health")
async def get_health() -> Any:
    v = venue()
    prices = {m: v.mark_price(m) is not None for m in MARKETS}
    return jsonify(
        {
            "status": "ok" if all(prices.values()) else "degraded",
            "oracle_usable": prices,
            "last_seq": v.store.last_seq,
            "time": int(v.clock()),
            "chain": v.chain,
        }
        | ({"warning": NO_CHAIN} if v.chain == "none" else {})
    )


@bp.get("/metrics")
async def get_metrics() -> Any:
    v = venue()
    metrics = services().metrics
    scrape = await v.read(partial(read_scrape, metrics.totals.seq))
    return Response(metrics.render(scrape, v), content_type=CONTENT_TYPE_LATEST)
