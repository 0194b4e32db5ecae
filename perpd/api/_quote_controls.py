"""Issue 13's signed calls: cancel and replace a quote, cancel a request, maker protection.

Parsed whole before the writer (a 400 touches nothing), the replace's new quote consent
verified like a quote's (`perpd.api._trade`), then one unit of work each.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from quart import Blueprint, jsonify

from perpd import engine, engine_mmp, engine_quotes
from perpd.api import _models as models
from perpd.api._common import acting_agent, json_object, text_field, venue, verified
from perpd.api._trade import (
    once,
    parse_quote_fields,
    quote_consent,
    quote_fingerprint,
    quote_terms,
)
from perpd.auth import Verified
from perpd.errors import NotFound
from perpd.store import queries as q
from perpd.store import quote_controls as qc
from perpd.units import parse_int, parse_usdc
from perpd.views import quote_view, request_view

bp = Blueprint("quote_controls", __name__)

MAX_WINDOW_S = 86_400  # maker protection: the longest window and cool-down (one day)
MAX_FILLS = 1_000_000


@bp.post("/trade/quote/cancel")
async def post_cancel_quote() -> Any:
    v, body = await verified()
    data = json_object(body, models.CancelQuoteBody)
    agent_id = acting_agent(data, v.agent_id)
    quote_id = text_field(data, "quote_id")
    quote = await venue().mutate(
        lambda conn, ctx: engine_quotes.cancel_quote(
            conn, ctx, agent_id=agent_id, quote_id=quote_id
        ),
        v,
        urgent=True,
    )
    return jsonify({"quote": quote_view(quote)})


async def submit_replace(
    agent_id: str, data: dict[str, Any], auth: Verified | None
) -> tuple[int, dict[str, Any]]:
    """Validate and run a replace: (status, the new quote with ``replaced_quote_id``);
    shared with the WebSocket's ``replace`` message."""
    quote_id = text_field(data, "quote_id")
    old = await venue().read(lambda conn: q.get_quote(conn, quote_id))
    if old is None:
        raise NotFound(f"no quote {quote_id!r}")
    # the new quote is on the old one's request: its consent names that request's hash
    fields = parse_quote_fields({**data, "request_id": old.request_id})
    consent = None if old.agent_id != agent_id else await quote_consent(agent_id, fields)

    def make(conn: Any, ctx: engine.Ctx) -> tuple[int, dict[str, Any]]:
        new = engine_quotes.replace_quote(
            conn, ctx, agent_id=agent_id, quote_id=quote_id, **quote_terms(fields, consent)
        )
        return 201, {**quote_view(new), "replaced_quote_id": quote_id}

    print_ = partial(quote_fingerprint, "replace", fields, quote_id=quote_id)
    return await once(agent_id, "quote", fields["client_id"], print_, make, auth, urgent=True)


@bp.post("/trade/quote/replace")
async def post_replace_quote() -> Any:
    v, body = await verified()
    data = json_object(body, models.ReplaceQuoteBody)
    status, new = await submit_replace(acting_agent(data, v.agent_id), data, v)
    return jsonify(new), status


@bp.post("/trade/request/cancel")
async def post_cancel_request() -> Any:
    v, body = await verified()
    data = json_object(body, models.CancelRequestBody)
    agent_id = acting_agent(data, v.agent_id)
    request_id = text_field(data, "request_id")
    r = await venue().mutate(
        lambda conn, ctx: engine_quotes.cancel_request(
            conn, ctx, agent_id=agent_id, request_id=request_id
        ),
        v,
        urgent=True,
    )
    return jsonify({"request": request_view(r)})


def _optional_limit(data: dict[str, Any], field: str, parse: Any) -> int | None:
    value = data.get(field)
    return None if value is None else int(parse(value))


@bp.get("/quotes/<quote_id>")
async def get_quote(quote_id: str) -> Any:
    """One quote in any status (a maker checks what its cancel or replace left)."""
    quote = await venue().read(lambda conn: q.get_quote(conn, quote_id))
    if quote is None:
        raise NotFound(f"no quote {quote_id!r}")
    return jsonify(quote_view(quote))


@bp.post("/maker/protection")
async def post_protection() -> Any:
    v, body = await verified()
    data = json_object(body, models.ProtectionBody)
    agent_id = acting_agent(data, v.agent_id)
    window_s = parse_int(data["window_s"], "window_s", 1, MAX_WINDOW_S)
    cooldown_s = parse_int(data["cooldown_s"], "cooldown_s", 1, MAX_WINDOW_S)
    max_fills = _optional_limit(
        data, "max_fills", lambda x: parse_int(x, "max_fills", 1, MAX_FILLS)
    )
    max_notional = _optional_limit(
        data, "max_notional_usdc", lambda x: parse_usdc(x, "max_notional_usdc")
    )
    settings = await venue().mutate(
        lambda conn, ctx: engine_mmp.set_protection(
            conn,
            ctx,
            agent_id=agent_id,
            window_s=window_s,
            max_fills=max_fills,
            max_notional=max_notional,
            cooldown_s=cooldown_s,
        ),
        v,
    )
    return jsonify(settings)


@bp.get("/maker/protection")
async def get_protection() -> Any:
    v, _ = await verified()
    held = await venue().read(lambda conn: qc.get_protection(conn, v.agent_id))
    return jsonify(engine_mmp.protection_view(v.agent_id, held, venue().clock()))
