"""Signed trading calls (SPEC §3, §6): request, quote, accept, close, liquidate, withdraw.

Each handler authenticates, parses the whole body into exact integers (any mistake is
a 400 before anything is touched), then runs one unit of work on the venue.
"""

from __future__ import annotations

import re
from typing import Any

from quart import Blueprint, jsonify

from perpd import engine
from perpd.api._common import acting_agent, json_object, text_field, venue, verified
from perpd.auth import Verified
from perpd.errors import Forbidden, InvalidRequest, LeverageTooHigh
from perpd.markets import get_market
from perpd.records import Quote
from perpd.units import format_usdc, parse_int, parse_rate, parse_usdc
from perpd.views import account_view, position_view, quote_view, request_view

bp = Blueprint("trade", __name__)

SIDES = {"long": 1, "short": -1}
MAX_TERM_HOURS = 24 * 365
_TERM = re.compile(r"([1-9][0-9]{0,3})h")


def parse_duration(value: object) -> int | None:
    """``perpetual`` → None; ``<n>h`` → seconds (1 h … 1 year)."""
    if value is None or value == "perpetual":
        return None
    m = _TERM.fullmatch(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) > MAX_TERM_HOURS:
        raise InvalidRequest("duration must be 'perpetual' or '<n>h' with 1 <= n <= 8760")
    return int(m.group(1)) * 3600


def parse_quote_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Quote fields shared by ``POST /trade/quote`` and the WebSocket ``quote`` message."""
    return {
        "request_id": text_field(data, "request_id"),
        "rate": parse_rate(data["funding_rate"], "funding_rate"),
        "collateral": parse_usdc(data["collateral_usdc"], "collateral_usdc"),
        "valid_for": parse_int(data.get("valid_for", 10), "valid_for", 1, 60),
    }


QUOTE_REQUIRED = ("request_id", "funding_rate", "collateral_usdc")
QUOTE_OPTIONAL = ("agent_id", "valid_for")


@bp.post("/trade/request")
async def post_request() -> Any:
    v, body = await verified()
    data = json_object(
        body,
        required=("market", "side", "size_usdc", "leverage", "max_funding_rate"),
        optional=("agent_id", "duration", "expires_in"),
    )
    agent_id = acting_agent(data, v.agent_id)
    market = get_market(data["market"])
    side = SIDES.get(data["side"]) if isinstance(data["side"], str) else None
    if side is None:
        raise InvalidRequest("side must be 'long' or 'short'")
    size = parse_usdc(data["size_usdc"], "size_usdc")
    venue().limits.refuse_dust(market.name, size)  # like a malformed field: before the writer
    leverage = parse_int(data["leverage"], "leverage", 1, 1_000_000)
    if leverage > market.max_leverage:
        raise LeverageTooHigh(f"{market.name} allows at most {market.max_leverage}x")
    max_rate = parse_rate(data["max_funding_rate"], "max_funding_rate")
    duration_s = parse_duration(data.get("duration"))
    expires_in = parse_int(data.get("expires_in", 30), "expires_in", 1, 300)
    r = await venue().mutate(
        lambda conn, ctx: engine.create_request(
            conn,
            ctx,
            agent_id=agent_id,
            market=market.name,
            side=side,
            size=size,
            leverage=leverage,
            max_rate=max_rate,
            duration_s=duration_s,
            expires_in=expires_in,
        ),
        v,
    )
    return jsonify(request_view(r)), 201


async def submit_quote(agent_id: str, data: dict[str, Any], auth: Verified | None) -> Quote:
    """Validate and record a quote; shared with the WebSocket's ``quote`` message."""
    fields = parse_quote_fields(data)
    return await venue().mutate(
        lambda conn, ctx: engine.create_quote(
            conn,
            ctx,
            request_id=fields["request_id"],
            agent_id=agent_id,
            rate=fields["rate"],
            collateral=fields["collateral"],
            valid_for=fields["valid_for"],
        ),
        auth,
    )


@bp.post("/trade/quote")
async def post_quote() -> Any:
    v, body = await verified()
    data = json_object(body, required=QUOTE_REQUIRED, optional=QUOTE_OPTIONAL)
    quote = await submit_quote(acting_agent(data, v.agent_id), data, v)
    return jsonify(quote_view(quote)), 201


@bp.post("/trade/accept")
async def post_accept() -> Any:
    v, body = await verified()
    data = json_object(body, required=("request_id", "quote_id"), optional=("agent_id",))
    agent_id = acting_agent(data, v.agent_id)
    request_id, quote_id = text_field(data, "request_id"), text_field(data, "quote_id")
    position = await venue().mutate(
        lambda conn, ctx: engine.accept(
            conn, ctx, agent_id=agent_id, request_id=request_id, quote_id=quote_id
        ),
        v,
        urgent=True,
    )
    price = position.state.entry_price
    return jsonify({"position": position_view(position, price)}), 200


@bp.post("/trade/close")
async def post_close() -> Any:
    v, body = await verified()
    data = json_object(body, required=("position_id",), optional=("agent_id", "size_percent"))
    agent_id = acting_agent(data, v.agent_id)
    position_id = text_field(data, "position_id")
    pct = parse_int(data.get("size_percent", 100), "size_percent", 1, 100)
    closed = await venue().mutate(
        lambda conn, ctx: engine.close(
            conn, ctx, agent_id=agent_id, position_id=position_id, pct=pct
        ),
        v,
        urgent=True,
    )
    return jsonify(
        {
            "position": position_view(closed.position, closed.price),
            "realized_pnl_usdc": format_usdc(closed.realized_pnl),
            "released_usdc": format_usdc(closed.released),
        }
    )


@bp.post("/trade/liquidate")
async def post_liquidate() -> Any:
    v, body = await verified()
    data = json_object(body, required=("position_id",), optional=("agent_id",))
    agent_id = acting_agent(data, v.agent_id)
    position_id = text_field(data, "position_id")
    done = await venue().mutate(
        lambda conn, ctx: engine.liquidate(conn, ctx, liquidator=agent_id, position_id=position_id),
        v,
        urgent=True,
    )
    return jsonify(
        {
            "position": position_view(done.position, done.price),
            "liquidated_side": done.side,
            "reward_usdc": format_usdc(done.reward),
        }
    )


@bp.post("/accounts/<agent_id>/withdraw")
async def post_withdraw(agent_id: str) -> Any:
    v, body = await verified()
    if agent_id != v.agent_id:
        raise Forbidden("an agent can only withdraw from its own account")
    data = json_object(body, required=("amount_usdc",), optional=("agent_id",))
    acting_agent(data, v.agent_id)
    amount = parse_usdc(data["amount_usdc"], "amount_usdc")
    account = await venue().mutate(
        lambda conn, ctx: engine.withdraw(conn, ctx, agent_id, amount), v
    )
    return jsonify(account_view(account))
