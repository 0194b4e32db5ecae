"""Units of work the engine tests share: two funded agents and one open request."""

from __future__ import annotations

import sqlite3

from perpd import engine
from perpd.records import TradeRequest

FUNDS = 10_000 * 10**6  # each agent's deposit, micro-USDC


def funded_request(
    conn: sqlite3.Connection,
    c: engine.Ctx,
    *,
    market: str = "BTC-PERP",
    side: int = 1,
    size: int = 1000 * 10**6,
    leverage: int = 10,
    expires_in: int = 30,
) -> TradeRequest:
    """``req`` and ``mm`` each deposit `FUNDS`; ``req`` asks for a perpetual position
    at a max rate of 1000 ppm."""
    for who in ("req", "mm"):
        engine.deposit(conn, c, who, FUNDS)
    return engine.create_request(
        conn,
        c,
        agent_id="req",
        market=market,
        side=side,
        size=size,
        leverage=leverage,
        max_rate=1000,
        duration_s=None,
        expires_in=expires_in,
    )
