"""Read calls: public market data, and private reads signed by their agent (SPEC §6)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, jsonify, request

from perpd import engine
from perpd.api._common import venue, verified
from perpd.errors import Forbidden, InvalidRequest, NotFound
from perpd.markets import MARKETS, get_market
from perpd.store import queries as q
from perpd.units import format_price, iso, parse_int
from perpd.views import position_view, quote_view, request_view

bp = Blueprint("reads", __name__)

POSITION_STATUSES = ("open", "closed", "liquidated")
MAX_LIST = 500


def _arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is not None and (not value or len(value) > 64):
        raise InvalidRequest(f"query parameter {name} is malformed")
    return value


@bp.get("/markets")
async def get_markets() -> Any:
    v = venue()
    out = []
    for m in MARKETS.values():
        p = v.book.latest(m.name)
        out.append(
            {
                "market": m.name,
                "index": m.index,
                "oracle_price": None if p is None else format_price(p.price),
                "oracle_conf": None if p is None else format_price(p.conf),
                "price_source": None if p is None else p.source,
                "publish_time": None if p is None else p.publish_time,
                "publish_time_iso": None if p is None else iso(p.publish_time),
                "price_usable": v.mark_price(m.name) is not None,
                "pyth_feed_id": m.feed_id,
                "max_leverage": m.max_leverage,
                "funding_period_s": v.funding_period_s,
            }
        )
    return jsonify({"markets": out})


@bp.get("/requests")
async def get_requests() -> Any:
    market = _arg("market")
    if market is not None:
        get_market(market)
    v = venue()
    now = v.clock()
    rows = await v.read(lambda conn: q.open_requests(conn, market, now))
    return jsonify({"requests": [request_view(r) for r in rows]})


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
    v = venue()
    now = v.clock()
    rows = await v.read(lambda conn: q.quotes_of_request(conn, request_id, "live"))
    return jsonify({"quotes": [quote_view(x) for x in rows if now < x.expires_at]})


@bp.get("/positions")
async def get_positions() -> Any:
    agent_id, status = _arg("agent_id"), _arg("status")
    if status is not None and status not in POSITION_STATUSES:
        raise InvalidRequest(f"status must be one of {', '.join(POSITION_STATUSES)}")
    v = venue()
    rows = await v.read(lambda conn: q.list_positions(conn, agent_id, status, MAX_LIST))
    return jsonify({"positions": [position_view(p, v.mark_price(p.market)) for p in rows]})


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
    return jsonify(await venue().read(lambda conn: engine.account_snapshot(conn, agent_id)))


@bp.get("/events")
async def get_events() -> Any:
    v, _ = await verified()
    since = parse_int(request.args.get("since", "0"), "since", 0, 2**62)
    limit = parse_int(request.args.get("limit", "1000"), "limit", 1, 10_000)
    rows = await venue().read(lambda conn: q.events_visible_to(conn, v.agent_id, since, limit))
    return jsonify(
        {
            "events": [
                {"seq": e.seq, "type": e.type, "ts": e.ts, "market": e.market, "data": e.data}
                for e in rows
            ]
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
        }
    )


@bp.get("/metrics")
async def get_metrics() -> Any:
    v = venue()
    led = await v.read(q.ledger)
    lines = [
        "# TYPE perpd_store_writes_total counter",
        f"perpd_store_writes_total {v.store.writes}",
        "# TYPE perpd_last_event_seq gauge",
        f"perpd_last_event_seq {v.store.last_seq}",
    ]
    for key, value in led.items():
        lines += [
            f"# TYPE perpd_ledger_{key}_micro_usdc gauge",
            f"perpd_ledger_{key}_micro_usdc {value}",
        ]
    for service, obj in v.services.items():
        for key, value in obj.statistics().items():
            if isinstance(value, int):
                lines.append(f"perpd_{service}_{key} {value}")
    for m in MARKETS:
        p = v.book.latest(m)
        if p is not None:
            lines.append(f'perpd_oracle_price{{market="{m}"}} {p.price}')
    return Response("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
