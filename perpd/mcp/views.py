"""The SDK's typed objects as the JSON a model reads: money and rates as decimal
strings (never floats), prices as decimal strings, times as unix seconds, and each
position seen from this agent's side."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents import (
    Balances,
    CloseResult,
    Market,
    Position,
    Quote,
    TradeRequest,
    format_price,
    format_rate,
    format_usdc,
)


def _opt_usdc(value: int | None) -> str | None:
    return None if value is None else format_usdc(value)


def _opt_price(value: int | None) -> str | None:
    return None if value is None else format_price(value)


def market_view(m: Market, allowed: bool) -> dict[str, Any]:
    """A market with its oracle's health and its funding curve (empty before any quote)."""
    curve = m.raw.get("funding_curve")
    return {
        "market": m.market,
        "allowed_by_limits": allowed,
        "oracle_price": _opt_price(m.oracle_price),
        "price_source": m.price_source,
        "publish_time": m.publish_time,
        "price_usable": m.price_usable,
        "max_leverage": m.max_leverage,
        "funding_period_s": m.funding_period_s,
        "funding_curve": curve if isinstance(curve, list) else [],
    }


def request_view(r: TradeRequest) -> dict[str, Any]:
    return {
        "request_id": r.request_id,
        "market": r.market,
        "side": r.side,
        "size_usdc": format_usdc(r.size),
        "leverage": r.leverage,
        "max_funding_rate": format_rate(r.max_funding_rate),
        "duration": r.duration,
        "status": r.status,
        "expires_at": r.expires_at,
    }


def quote_view(q: Quote) -> dict[str, Any]:
    return {
        "quote_id": q.quote_id,
        "request_id": q.request_id,
        "maker": q.agent_id,
        "funding_rate": format_rate(q.funding_rate),
        "collateral_usdc": format_usdc(q.collateral),
        "status": q.status,
        "expires_at": q.expires_at,
    }


def position_view(p: Position, agent_id: str) -> dict[str, Any]:
    """A position from ``agent_id``'s side: its role, its side, its PnL and margin."""
    role = p.role_of(agent_id)
    maker = role == "maker"
    side = p.side if not maker else ("short" if p.side == "long" else "long")
    sign = -1 if maker else 1
    pnl = None if p.unrealized_pnl is None else sign * p.unrealized_pnl
    ratio = p.margin_ratio_maker if maker else p.margin_ratio_requester
    return {
        "position_id": p.position_id,
        "market": p.market,
        "role": role,
        "side": side,
        "size_usdc": format_usdc(p.size),
        "entry_price": format_price(p.entry_price),
        "mark_price": _opt_price(p.mark_price),
        "leverage": p.leverage,
        "collateral_usdc": format_usdc(p.maker_collateral if maker else p.requester_collateral),
        "funding_rate": format_rate(p.funding_rate),
        "funding_paid_usdc": format_usdc(sign * p.funding_paid),
        "unrealized_pnl_usdc": _opt_usdc(pnl),
        "realized_pnl_usdc": format_usdc(sign * p.realized_pnl),
        "margin_ratio": None if ratio is None else format_rate(ratio),
        "status": p.status,
        "opened_at": p.opened_at,
        "expires_at": p.expires_at,
        "closed_at": p.closed_at,
        "counterparty": p.requester if maker else p.maker,
    }


def close_view(result: CloseResult, agent_id: str) -> dict[str, Any]:
    return {
        "position": position_view(result.position, agent_id),
        "realized_pnl_usdc": format_usdc(result.realized_pnl),
        "released_usdc": format_usdc(result.released),
    }


def balances_view(b: Balances) -> dict[str, Any]:
    return {
        "free_usdc": format_usdc(b.free),
        "locked_usdc": format_usdc(b.locked),
        "total_usdc": format_usdc(b.total),
    }


def wire_view(obj: Any) -> Any:
    """An SDK object as its wire JSON (already decimal strings): its ``raw`` if it keeps
    one, a mapping or list as is."""
    raw = getattr(obj, "raw", None)
    if raw is not None:
        return dict(raw)
    if isinstance(obj, Mapping):
        return dict(obj)
    if isinstance(obj, list):
        return [wire_view(o) for o in obj]
    return obj


def page_view(page: Any, kind: str) -> dict[str, Any]:
    """One history page (``items`` and ``next_cursor``, as the SDK decodes it, or the
    wire object itself) as ``{kind: [...], next_cursor}``."""
    if isinstance(page, Mapping):
        items, cursor = page.get(kind, page.get("items", [])), page.get("next_cursor")
    else:
        items, cursor = page.items, page.next_cursor
    return {kind: [wire_view(i) for i in items], "next_cursor": cursor}
