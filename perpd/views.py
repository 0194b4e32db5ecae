"""Records as the wire shows them (SPEC §6): decimal strings, ISO times, side names.

Pure functions of records and an optional oracle price; the router, the event payloads
and the WebSocket all use these, so an object looks the same wherever it appears.
"""

from __future__ import annotations

from typing import Any

from perpd import money
from perpd.records import Account, Position, PositionStatus, Quote, TradeRequest
from perpd.units import format_price, format_rate, format_ratio_ppm, format_usdc, iso

SIDE_NAMES = {1: "long", -1: "short"}


def duration_name(duration_s: int | None) -> str:
    return "perpetual" if duration_s is None else f"{duration_s // 3600}h"


def account_view(a: Account) -> dict[str, Any]:
    return {
        "agent_id": a.agent_id,
        "free_usdc": format_usdc(a.free),
        "locked_usdc": format_usdc(a.locked),
        "withdrawals": a.withdrawals,
    }


def request_view(r: TradeRequest) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "agent_id": r.agent_id,
        "market": r.market,
        "side": SIDE_NAMES[r.side],
        "size_usdc": format_usdc(r.size),
        "leverage": r.leverage,
        "max_funding_rate": format_rate(r.max_rate),
        "duration": duration_name(r.duration_s),
        "status": r.status,
        "created_at": r.created_at,
        "expires_at": r.expires_at,
        "expires_at_iso": iso(r.expires_at),
        "position_id": r.position_id,
        # SPEC §6: what a maker needs to rebuild and check the request consent
        "nonce": r.nonce,
        "consent": r.consent,
        "request_hash": r.request_hash,
        "client_id": r.client_id,
    }


def quote_view(q: Quote) -> dict[str, Any]:
    return {
        "quote_id": q.quote_id,
        "request_id": q.request_id,
        "agent_id": q.agent_id,
        "funding_rate": format_rate(q.rate),
        "collateral_usdc": format_usdc(q.collateral),
        "status": q.status,
        "created_at": q.created_at,
        "expires_at": q.expires_at,
        "expires_at_iso": iso(q.expires_at),
        "consent": q.consent,
        "client_id": q.client_id,
    }


def position_view(p: Position, price: int | None) -> dict[str, Any]:
    """The position object; PnL and margin ratios at ``price`` (None if no usable price)."""
    s = p.state
    view: dict[str, Any] = {
        "position_id": p.position_id,
        "request_id": p.request_id,
        "quote_id": p.quote_id,
        "market": p.market,
        "requester": p.requester,
        "maker": p.maker,
        "side": SIDE_NAMES[s.side],
        "size_usdc": format_usdc(s.notional),
        "entry_price": format_price(s.entry_price),
        "leverage": p.leverage,
        "requester_collateral_usdc": format_usdc(s.cr),
        "maker_collateral_usdc": format_usdc(s.cm),
        "requester_initial_margin_usdc": format_usdc(s.imr),
        "maker_initial_margin_usdc": format_usdc(s.imm),
        "funding_rate": format_rate(s.rate_ppm),
        "funding_paid_usdc": format_usdc(p.funding_total),
        "realized_pnl_usdc": format_usdc(p.realized_pnl),
        "status": p.status,
        "opened_at": p.opened_at,
        "opened_at_iso": iso(p.opened_at),
        "expires_at": p.expires_at,
        "expires_at_iso": iso(p.expires_at),
        "next_funding_at": p.next_funding_at if p.status == PositionStatus.OPEN else None,
        "closed_at": p.closed_at,
        "exit_price": None if p.exit_price is None else format_price(p.exit_price),
        "liquidator": p.liquidator,
        "nonce": p.nonce,
        "position_address": p.position_address,
        "closes": p.closes,
        # with a chain: the transactions that locked, last settled and last closed it
        "lock_signature": p.lock_signature,
        "settle_signature": p.settle_signature,
        "close_signature": p.close_signature,
        "mark_price": None,
        "unrealized_pnl_usdc": None,
        "margin_ratio_requester": None,
        "margin_ratio_maker": None,
    }
    if p.status == PositionStatus.OPEN and price is not None:
        pnl = money.pnl(s.side, s.notional, s.entry_price, price)
        er, em = money.equities(s, price)
        view["mark_price"] = format_price(price)
        view["unrealized_pnl_usdc"] = format_usdc(pnl)
        view["margin_ratio_requester"] = format_ratio_ppm(
            money.margin_ratio_ppm(er, s.notional, s.entry_price, price)
        )
        view["margin_ratio_maker"] = format_ratio_ppm(
            money.margin_ratio_ppm(em, s.notional, s.entry_price, price)
        )
    elif p.status != PositionStatus.OPEN:
        view["unrealized_pnl_usdc"] = format_usdc(0)
    return view
