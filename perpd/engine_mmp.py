"""Maker protection (MMP, issue 13), as on Deribit and Paradigm: a maker's limits on
fills and notional per trailing window. The fill that reaches a limit freezes its
quoting for a cool-down and cancels its live quotes, inside that fill's unit of work, so
no later accept can fill a quote the limit should have pulled.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from perpd.engine_cancel import cancel_all_of
from perpd.errors import Conflict
from perpd.store import queries as q
from perpd.store import quote_controls as qc
from perpd.units import format_usdc, iso

if TYPE_CHECKING:
    from perpd.engine import Ctx


def protection_view(agent_id: str, p: qc.Protection | None, now: float) -> dict[str, Any]:
    """``GET /maker/protection``: the settings (nulls: none set) and ``frozen_until``
    (null unless frozen now)."""
    frozen = p is not None and p.frozen_until > now
    return {
        "agent_id": agent_id,
        "window_s": None if p is None else p.window_s,
        "max_fills": None if p is None else p.max_fills,
        "max_notional_usdc": (
            None if p is None or p.max_notional is None else format_usdc(p.max_notional)
        ),
        "cooldown_s": None if p is None else p.cooldown_s,
        "frozen_until": p.frozen_until if frozen and p is not None else None,
    }


def set_protection(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    agent_id: str,
    window_s: int,
    max_fills: int | None,
    max_notional: int | None,
    cooldown_s: int,
) -> dict[str, Any]:
    """Set (or, with neither limit, switch off) a maker's protection. Counting starts
    afresh from now; a freeze under way stays until its end."""
    held = qc.get_protection(conn, agent_id)
    p = qc.Protection(
        agent_id=agent_id,
        window_s=window_s,
        max_fills=max_fills,
        max_notional=max_notional,
        cooldown_s=cooldown_s,
        frozen_until=0 if held is None else held.frozen_until,
        counted_after=qc.last_position_rowid(conn),
        updated_at=ctx.ts,
    )
    qc.save_protection(conn, p)
    return protection_view(agent_id, p, ctx.now)


def require_not_frozen(conn: sqlite3.Connection, ctx: Ctx, agent_id: str) -> None:
    """409 ``maker_frozen`` while the maker's protection has it frozen."""
    p = qc.get_protection(conn, agent_id)
    if p is not None and p.frozen_until > ctx.now:
        raise Conflict(
            f"maker protection froze {agent_id}'s quoting until {p.frozen_until} "
            f"({iso(p.frozen_until)})",
            code="maker_frozen",
        )


def after_fill(conn: sqlite3.Connection, ctx: Ctx, maker: str, market: str) -> bool:
    """Count the fill just made (its position is saved) against ``maker``'s limits; at
    a limit, freeze it, cancel its live quotes (reason ``mmp``) and tell it
    (``mmp_triggered``). True if it triggered."""
    p = qc.get_protection(conn, maker)
    if p is None or (p.max_fills is None and p.max_notional is None):
        return False
    fills, notional = qc.maker_fills_since(conn, maker, ctx.ts - p.window_s, p.counted_after)
    if p.max_fills is not None and fills >= p.max_fills:
        reason = "fills"
    elif p.max_notional is not None and notional >= p.max_notional:
        reason = "notional"
    else:
        return False
    frozen_until = ctx.ts + p.cooldown_s
    qc.save_protection(
        conn,
        replace(p, frozen_until=frozen_until, counted_after=qc.last_position_rowid(conn)),
    )
    cancel_all_of(conn, ctx, maker, "mmp")
    q.append_event(
        conn,
        ctx.ts,
        "mmp_triggered",
        {
            "agent_id": maker,
            "reason": reason,
            "frozen_until": frozen_until,
            "fills": fills,
            "notional_usdc": format_usdc(notional),
        },
        market=market,
        audience=[maker],
    )
    return True
