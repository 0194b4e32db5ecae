"""Dev-mode calls (``perpd run --dev``): a faucet and a price pin. 404 without ``--dev``."""

from __future__ import annotations

from typing import Any

import trio
from quart import Blueprint, Response, jsonify, request, websocket

from perpd import custody, engine
from perpd.api import _models as models
from perpd.api._common import json_object, venue
from perpd.api._services import services
from perpd.auth import parse_agent_id
from perpd.errors import InvalidRequest, Unauthorized
from perpd.markets import get_market
from perpd.store import queries as q
from perpd.units import format_price, parse_price, parse_usdc
from perpd.views import account_view

bp = Blueprint("dev", __name__)


@bp.post("/dev/faucet")
async def post_faucet() -> Any:
    data = json_object(await request.get_data(), models.FaucetBody)
    try:
        agent_id = str(parse_agent_id(data["agent_id"]))
    except Unauthorized as exc:
        raise InvalidRequest("agent_id must be a base58 public key") from exc
    amount = parse_usdc(data["amount_usdc"], "amount_usdc")
    submitter = venue().submitter
    if submitter is not None and submitter.chain.mode != "local":
        raise InvalidRequest(
            "the faucet mints test USDC only on the local chain; on a cluster, deposit "
            "into your collateral account with the escrow program's deposit instruction "
            "(the daemon credits it)"
        )
    if submitter is not None:  # mint test USDC and deposit it through the program
        account = await submitter.submit(
            lambda conn, ctx: custody.ask_deposit(conn, ctx, agent_id=agent_id, amount=amount)
        )
        if account is None:  # landed before this call waited for it: read what it did
            account = await venue().read(lambda conn: q.get_account(conn, agent_id))
    else:
        account = await venue().mutate(
            lambda conn, ctx: engine.deposit(conn, ctx, agent_id, amount)
        )
    return jsonify(account_view(account))


@bp.post("/dev/price")
async def post_price() -> Any:
    data = json_object(await request.get_data(), models.PriceBody)
    market = get_market(data["market"])
    price = parse_price(data["price"], "price")
    p = await venue().pin_price(market.name, price)
    return jsonify(
        {
            "market": market.name,
            "oracle_price": format_price(p.price),
            "price_source": p.source,
            "publish_time": p.publish_time,
            "pinned": True,
        }
    )


@bp.post("/dev/echo")
async def post_echo() -> Any:
    """The body back, untouched: the bare-POST baseline for benchmarks on this stack."""
    return Response(await request.get_data(), content_type="application/json")


@bp.websocket("/dev/echo")
async def ws_echo() -> None:
    """Every message back: the raw WebSocket round-trip baseline for benchmarks."""
    await websocket.accept()

    async def echo() -> None:
        while True:
            await websocket.send(await websocket.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        await services().shutdown.wait()
        nursery.cancel_scope.cancel()
    await websocket.close(1001, "server shutting down")
