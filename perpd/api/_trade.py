"""Signed trading calls (SPEC §3, §6): request, quote, accept, close, liquidate, withdraw.

Each handler authenticates, parses the whole body into exact integers (any mistake is
a 400 before anything is touched), verifies the call's consent (SPEC §6, `perpd.consents`:
before the unit, reading what it names first), then runs one unit of work on the venue.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from quart import Blueprint, jsonify
from solders.signature import Signature

from perpd import custody, engine, idempotency
from perpd.api import _models as models
from perpd.api._common import acting_agent, json_object, text_field, venue, verified
from perpd.auth import Verified
from perpd.consents import (
    LIFETIMES,
    CloseConsent,
    QuoteConsent,
    WithdrawConsent,
    check,
    close_message,
    parse_address,
    parse_deadline,
    parse_nonce,
    parse_signature,
    quote_message,
    request_hash_hex,
    request_message,
    require,
    withdraw_message,
)
from perpd.errors import (
    ChainUnconfirmed,
    Forbidden,
    InvalidRequest,
    LeverageTooHigh,
    NotFound,
)
from perpd.markets import get_market
from perpd.records import Position, PositionStatus
from perpd.store import queries as q
from perpd.units import format_usdc, parse_int, parse_rate, parse_usdc
from perpd.views import account_view, position_view, quote_view, request_view

bp = Blueprint("trade", __name__)

T = TypeVar("T")
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


def _optional(data: dict[str, Any], field: str, parse: Callable[[object], T]) -> T | None:
    """A field that may be absent (or null): None, else ``parse`` of it."""
    value = data.get(field)
    return None if value is None else parse(value)


def _one_of(data: dict[str, Any], signed: str, relative: str) -> None:
    if data.get(signed) is not None and data.get(relative) is not None:
        raise InvalidRequest(f"give {signed} or {relative}, not both")


def _deadline(data: dict[str, Any], field: str, kind: str) -> int | None:
    """An optional signed deadline, ``LIFETIMES[kind]`` seconds ahead at most."""
    now = venue().clock()
    return _optional(data, field, lambda v: parse_deadline(v, field, now, LIFETIMES[kind]))


def _consent(data: dict[str, Any], what: str) -> Signature | None:
    """The body's ``consent``: required with a chain (400), None if absent without one."""
    sig = _optional(data, "consent", parse_signature)
    require(sig, chain=venue().chain, what=what)
    return sig


def _signs(sig: Signature | None, what: str, **fields: object) -> None:
    """A consent signs these fields: each must be given with it (400 otherwise)."""
    missing = [name for name, value in fields.items() if value is None]
    if sig is not None and missing:
        raise InvalidRequest(
            f"a {what} consent signs {', '.join(fields)}: send {', '.join(missing)}"
        )


def parse_quote_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Quote fields shared by ``POST /trade/quote`` and the WebSocket ``quote`` message."""
    _one_of(data, "valid_until", "valid_for")
    fields: dict[str, Any] = {
        "request_id": text_field(data, "request_id"),
        "rate": parse_rate(data["funding_rate"], "funding_rate"),
        "collateral": parse_usdc(data["collateral_usdc"], "collateral_usdc"),
        "valid_until": _deadline(data, "valid_until", "quote"),
        "valid_for": parse_int(data.get("valid_for", 10), "valid_for", 1, 60),
        "consent": _consent(data, "quote"),
        "client_id": idempotency.parse_client_id(data.get("client_id")),
    }
    if fields["valid_until"] is not None:
        fields["valid_for"] = None  # the signed deadline is the quote's: one way to say it
    _signs(fields["consent"], "quote", valid_until=fields["valid_until"])
    return fields


def quote_fingerprint(call: str, fields: dict[str, Any], **more: Any) -> str:
    """The parsed quote (or replace) as `perpd.idempotency` compares retries."""
    named = {k: v for k, v in fields.items() if k not in ("client_id", "request_id")}
    return idempotency.fingerprint(call, {**named, **more, "request_id": fields.get("request_id")})


@bp.post("/trade/request")
async def post_request() -> Any:
    v, body = await verified()
    data = json_object(body, models.TradeRequestBody)
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
    _one_of(data, "expires_at", "expires_in")
    expires_at = _deadline(data, "expires_at", "request")
    expires_in = parse_int(data.get("expires_in", 30), "expires_in", 1, 300)
    nonce = _optional(data, "nonce", parse_nonce)
    sig = _consent(data, "request")
    _signs(sig, "request", nonce=nonce, expires_at=expires_at)
    client_id = idempotency.parse_client_id(data.get("client_id"))
    terms: dict[str, Any] = {
        "agent_id": agent_id,
        "market": market.name,
        "side": side,
        "size": size,
        "leverage": leverage,
        "max_rate": max_rate,
        "duration_s": duration_s,
    }
    request_hash = None
    if sig is not None:
        assert nonce is not None and expires_at is not None
        message = request_message(venue().program_id, nonce=nonce, expires_at=expires_at, **terms)
        check(agent_id, message, sig, "request")
        request_hash = request_hash_hex(message)
    consent = None if sig is None else str(sig)
    deadline = {"expires_at": expires_at} if expires_at is not None else {"expires_in": expires_in}
    print_ = partial(
        idempotency.fingerprint,
        "request",
        {**terms, **deadline, "nonce": nonce, "consent": consent},
    )

    def make(conn: Any, ctx: engine.Ctx) -> tuple[int, dict[str, Any]]:
        r = engine.create_request(
            conn,
            ctx,
            **terms,
            expires_in=expires_in,
            expires_at=expires_at,
            nonce=nonce,
            consent=consent,
            request_hash=request_hash,
            client_id=client_id,
        )
        return 201, request_view(r)

    status, made = await once(agent_id, "request", client_id, print_, make, v)
    if request_hash is not None:
        venue().request_hashes.add(made["request_id"], request_hash)
    return jsonify(made), status


async def quote_consent(agent_id: str, fields: dict[str, Any]) -> QuoteConsent | None:
    """Verify a quote consent against the request's consent hash: known in memory for a
    request this daemon took (`perpd.request_hashes`), else read first."""
    sig: Signature | None = fields["consent"]
    if sig is None:
        return None
    request_id = fields["request_id"]
    request_hash = venue().request_hashes.get(request_id)
    if request_hash is None:
        r = await venue().read(lambda conn: q.get_request(conn, request_id))
        if r is None:
            raise NotFound(f"no request {request_id!r}")
        if r.request_hash is None:
            raise InvalidRequest(f"request {request_id} has no consent for a quote consent to name")
        request_hash = r.request_hash
        venue().request_hashes.add(request_id, request_hash)
    message = quote_message(
        venue().program_id,
        maker=agent_id,
        request_hash=request_hash,
        rate=fields["rate"],
        collateral=fields["collateral"],
        valid_until=fields["valid_until"],
    )
    check(agent_id, message, sig, "quote")
    return QuoteConsent(str(sig), fields["valid_until"], request_hash)


async def submit_quote(
    agent_id: str, data: dict[str, Any], auth: Verified | None
) -> tuple[int, dict[str, Any]]:
    """Validate and record a quote: (status, the quote object), or a client id's first
    answer; shared with the WebSocket's ``quote`` message."""
    fields = parse_quote_fields(data)
    consent = await quote_consent(agent_id, fields)

    def make(conn: Any, ctx: engine.Ctx) -> tuple[int, dict[str, Any]]:
        quote = engine.create_quote(
            conn,
            ctx,
            request_id=fields["request_id"],
            agent_id=agent_id,
            **quote_terms(fields, consent),
        )
        return 201, quote_view(quote)

    print_ = partial(quote_fingerprint, "quote", fields)
    return await once(agent_id, "quote", fields["client_id"], print_, make, auth)


def quote_terms(fields: dict[str, Any], consent: QuoteConsent | None) -> dict[str, Any]:
    """The engine's arguments for the terms of a parsed quote (or a replace's new one)."""
    return {
        "rate": fields["rate"],
        "collateral": fields["collateral"],
        "valid_for": fields["valid_for"] or 10,
        "valid_until": fields["valid_until"],
        "consent": consent,
        "client_id": fields["client_id"],
    }


Make = Callable[[Any, engine.Ctx], tuple[int, dict[str, Any]]]


async def once(
    agent_id: str,
    kind: str,
    client_id: str | None,
    print_: Callable[[], str],
    make: Make,
    auth: Verified | None,
    *,
    urgent: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Run ``make`` as one unit, or answer as the client id's first call did
    (`perpd.idempotency`). ``print_`` makes the call's fingerprint, which only a call
    with a client id needs (a sha256 of its canonical JSON: tens of µs per quote)."""
    fingerprint = "" if client_id is None else print_()
    return await venue().mutate(
        lambda conn, ctx: idempotency.once(
            conn, ctx.ts, agent_id, kind, client_id, fingerprint, lambda: make(conn, ctx)
        ),
        auth,
        urgent=urgent,
    )


@bp.post("/trade/quote")
async def post_quote() -> Any:
    v, body = await verified()
    data = json_object(body, models.QuoteBody)
    status, quote = await submit_quote(acting_agent(data, v.agent_id), data, v)
    return jsonify(quote), status


@bp.post("/trade/accept")
async def post_accept() -> Any:
    v, body = await verified()
    data = json_object(body, models.AcceptBody)
    agent_id = acting_agent(data, v.agent_id)
    request_id, quote_id = text_field(data, "request_id"), text_field(data, "quote_id")
    submitter = venue().submitter
    if submitter is not None:
        position = await _accept_on_chain(submitter, v, agent_id, request_id, quote_id)
    else:
        position = await venue().mutate(
            lambda conn, ctx: engine.accept(
                conn, ctx, agent_id=agent_id, request_id=request_id, quote_id=quote_id
            ),
            v,
            urgent=True,
        )
    price = position.state.entry_price
    return jsonify({"position": position_view(position, price)}), 200


async def _accept_on_chain(
    submitter: Any, v: Verified, agent_id: str, request_id: str, quote_id: str
) -> Position:
    """Reserve and queue the lock, then wait for it (SPEC §3): the open position, the
    refusal's error, or 503 ``chain_unavailable``. A retried accept of a fill under way
    or done waits for, or answers with, the same position: never a second one."""
    client = submitter.chain.client
    pending, row_id = await venue().mutate(
        lambda conn, ctx: custody.ask_lock(
            conn, ctx, client=client, agent_id=agent_id, request_id=request_id, quote_id=quote_id
        ),
        v,
        urgent=True,
    )
    opened = await submitter.wait_row(row_id)
    if isinstance(opened, Position):
        return opened
    held = await venue().read(lambda conn: q.get_position(conn, pending.position_id))
    if held is None or held.status == PositionStatus.PENDING:
        raise ChainUnconfirmed("the lock is still on its way to the chain; retry the accept")
    return held


async def _close_consent(
    agent_id: str, position_id: str, pct: int, sig: Signature | None, expires_at: int | None
) -> CloseConsent | None:
    """Verify a close consent against the position's address and ``closes`` (read first).

    A position the signer cannot close (not its requester, not open) is left to the
    unit, which says so (403, 409) whatever the consent."""
    if sig is None or expires_at is None:
        return None
    p = await venue().read(lambda conn: q.get_position(conn, position_id))
    if p is None:
        raise NotFound(f"no position {position_id!r}")
    if p.requester != agent_id or p.status != PositionStatus.OPEN:
        return None
    if p.position_address is None:
        raise InvalidRequest(
            f"position {position_id} has no on-chain address (its request had no nonce): "
            "no close consent can name it"
        )
    message = close_message(
        venue().program_id,
        position=p.position_address,
        size_percent=pct,
        closes=p.closes,
        expires_at=expires_at,
    )
    check(agent_id, message, sig, "close")
    return CloseConsent(str(sig), expires_at, p.closes)


@bp.post("/trade/close")
async def post_close() -> Any:
    v, body = await verified()
    data = json_object(body, models.CloseBody)
    agent_id = acting_agent(data, v.agent_id)
    position_id = text_field(data, "position_id")
    pct = parse_int(data.get("size_percent", 100), "size_percent", 1, 100)
    expires_at = _deadline(data, "expires_at", "close")
    sig = _consent(data, "close")
    _signs(sig, "close", expires_at=expires_at)
    consent = await _close_consent(agent_id, position_id, pct, sig, expires_at)
    submitter = venue().submitter
    if submitter is not None:
        closed = await submitter.submit(
            lambda conn, ctx: custody.ask_close(
                conn, ctx, agent_id=agent_id, position_id=position_id, pct=pct, consent=consent
            ),
            v,
        )
    else:
        closed = await venue().mutate(
            lambda conn, ctx: engine.close(
                conn, ctx, agent_id=agent_id, position_id=position_id, pct=pct, consent=consent
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
    data = json_object(body, models.LiquidateBody)
    agent_id = acting_agent(data, v.agent_id)
    position_id = text_field(data, "position_id")
    submitter = venue().submitter
    if submitter is not None:
        done = await submitter.submit(
            lambda conn, ctx: custody.ask_liquidate(
                conn, ctx, liquidator=agent_id, position_id=position_id
            ),
            v,
        )
    else:
        done = await venue().mutate(
            lambda conn, ctx: engine.liquidate(
                conn, ctx, liquidator=agent_id, position_id=position_id
            ),
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
    data = json_object(body, models.WithdrawBody)
    acting_agent(data, v.agent_id)
    amount = parse_usdc(data["amount_usdc"], "amount_usdc")
    destination = _optional(data, "destination", lambda d: parse_address(d, "destination"))
    expires_at = _deadline(data, "expires_at", "withdraw")
    sig = _consent(data, "withdraw")
    _signs(sig, "withdraw", destination=destination, expires_at=expires_at)
    consent = None
    if sig is not None:
        assert destination is not None and expires_at is not None
        account = await venue().read(lambda conn: q.get_account(conn, agent_id))
        message = withdraw_message(
            venue().program_id,
            agent_id=agent_id,
            destination=destination,
            amount=amount,
            withdrawals=account.withdrawals,
            expires_at=expires_at,
        )
        check(agent_id, message, sig, "withdraw")
        consent = WithdrawConsent(str(sig), str(destination), expires_at, account.withdrawals)
    submitter = venue().submitter
    if submitter is not None:
        assert consent is not None  # required with a chain (`_consent`)
        account = await submitter.submit(
            lambda conn, ctx: custody.ask_withdraw(
                conn, ctx, agent_id=agent_id, amount=amount, consent=consent
            ),
            v,
        )
    else:
        account = await venue().mutate(
            lambda conn, ctx: engine.withdraw(conn, ctx, agent_id, amount, consent), v
        )
    return jsonify(account_view(account))
