"""Units of work with a chain: the engine's checks (and reservation) and the outbox row
that asks the chain for the money to move, in one transaction. Then the submitter lands
the row and applies the mirror's change (`apply`) or undoes the reservation (`refuse`).

Each ``ask_*`` function returns ``(value, outbox row id)``; payloads carry everything the
transaction needs (the agents' consents, counters, addresses) so that a restart can
send it again from the row alone.
"""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from typing import Any

from perpd import engine
from perpd.consents import CloseConsent, WithdrawConsent
from perpd.errors import ApiError, InsufficientCollateral, InvalidRequest, Unauthorized
from perpd.markets import get_market
from perpd.records import Position, RequestStatus
from perpd.store import outbox
from perpd.store import queries as q
from perpd.units import format_usdc

CHAIN_SIDE = {1: 0, -1: 1}


def ask_lock(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    *,
    client: Any,
    agent_id: str,
    request_id: str,
    quote_id: str,
) -> tuple[Position, int]:
    """Unit 1 of a chain accept: reserve (free -> locked) and queue the lock.

    A retried accept of the same quote, after a 503 or while its lock is on its way,
    gets the same position and lock row (never a second one)."""
    held = q.get_request(conn, request_id)
    if (
        held is not None
        and held.agent_id == agent_id
        and held.status in (RequestStatus.PENDING, RequestStatus.FILLED)
        and held.position_id is not None
    ):
        earlier = q.get_position(conn, held.position_id)
        locks = outbox.of_ref(conn, held.position_id, "lock")
        if earlier is not None and earlier.quote_id == quote_id and locks:
            return earlier, locks[-1].id
    position = engine.reserve_accept(
        conn, ctx, agent_id=agent_id, request_id=request_id, quote_id=quote_id
    )
    r = q.get_request(conn, request_id)
    quote = q.get_quote(conn, quote_id)
    assert r is not None and quote is not None
    address = position.position_address
    assert address is not None and r.nonce is not None, "a chain accept has a consent"
    payload = {
        "request": {
            "requester": r.agent_id,
            "nonce": r.nonce,
            "market": get_market(r.market).index,
            "side": CHAIN_SIDE[r.side],
            "size": r.size,
            "leverage": r.leverage,
            "max_rate": r.max_rate,
            "duration": r.duration_s or 0,
            "expires_at": r.consent_expires_at,
        },
        "request_sig": r.consent,
        "quote": {
            "maker": quote.agent_id,
            "rate": quote.rate,
            "collateral": quote.collateral,
            "valid_until": quote.valid_until,
        },
        "quote_sig": quote.consent,
        "position": address,
        "position_id": position.position_id,
    }
    return position, outbox.add(conn, "lock", position.position_id, payload, ctx.ts)


def _position_payload(p: Position) -> dict[str, Any]:
    assert p.position_address is not None, "a position on chain has its address"
    return {
        "position_id": p.position_id,
        "position": p.position_address,
        "requester": p.requester,
        "maker": p.maker,
        "market": get_market(p.market).index,
    }


def ask_close(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    *,
    agent_id: str | None,
    position_id: str,
    pct: int,
    consent: CloseConsent | None,
) -> tuple[None, int]:
    """Queue a close (``consent`` None: a term that has ended, closed by anyone)."""
    p, _price = engine.check_close(
        conn, ctx, agent_id=agent_id, position_id=position_id, pct=pct, consent=consent
    )
    if agent_id is not None and consent is None:
        raise InvalidRequest("with a chain, a close needs the requester's consent (SPEC §6)")
    payload = {
        **_position_payload(p),
        "size_percent": pct,
        "closes": p.closes,
        "expires_at": 0 if consent is None else consent.expires_at,
        "consent": None if consent is None else consent.signature,
        "agent_id": agent_id,
    }
    return None, outbox.add(conn, "close", position_id, payload, ctx.ts)


def ask_liquidate(
    conn: sqlite3.Connection, ctx: engine.Ctx, *, liquidator: str, position_id: str
) -> tuple[None, int]:
    """Queue a liquidation; the keeper's reward goes to the fee account (the config)."""
    from perpd.chain_actions import KEEPER_REWARD_TO

    p, _price, _result = engine.check_liquidate(
        conn, ctx, liquidator=liquidator, position_id=position_id
    )
    payload = {
        **_position_payload(p),
        "liquidator": liquidator,
        "reward_to": KEEPER_REWARD_TO if liquidator == engine.KEEPER else liquidator,
    }
    return None, outbox.add(conn, "liquidate", position_id, payload, ctx.ts)


def ask_settle(conn: sqlite3.Connection, ctx: engine.Ctx, *, limit: int) -> tuple[int, int | None]:
    """Queue one settle_funding of up to ``limit`` positions whose funding time has come;
    (how many, row id), or (0, None) if none is due."""
    due = [p for p in q.positions_funding_due(conn, ctx.ts, limit) if p.position_address]
    if not due:
        return 0, None
    payload = {
        "positions": [p.position_address for p in due],
        "position_ids": [p.position_id for p in due],
    }
    return len(due), outbox.add(conn, "settle", f"funding@{ctx.ts}", payload, ctx.ts)


def ask_withdraw(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    *,
    agent_id: str,
    amount: int,
    consent: WithdrawConsent,
) -> tuple[None, int]:
    """Queue a consented withdrawal; refused now if the free balance cannot cover it."""
    account = q.get_account(conn, agent_id)
    if consent.withdrawals != account.withdrawals:
        raise Unauthorized(
            f"the withdraw consent names withdrawal {consent.withdrawals}, but "
            f"{agent_id} has made {account.withdrawals}: sign it again"
        )
    if account.free < amount:
        raise InsufficientCollateral(
            f"free balance {format_usdc(account.free)} is below {format_usdc(amount)}"
        )
    payload = {
        "agent": agent_id,
        "amount": amount,
        "destination": consent.destination,
        "withdrawals": account.withdrawals,
        "expires_at": consent.expires_at,
        "consent": consent.signature,
    }
    return None, outbox.add(conn, "withdraw", agent_id, payload, ctx.ts)


def ask_deposit(
    conn: sqlite3.Connection, ctx: engine.Ctx, *, agent_id: str, amount: int
) -> tuple[None, int]:
    """Queue the dev faucet's mint-and-deposit (the engine's ceilings checked now)."""
    engine.check_deposit(conn, agent_id, amount)
    return None, outbox.add(
        conn, "deposit", agent_id, {"agent": agent_id, "amount": amount}, ctx.ts
    )


# ---------------------------------------------------------------- after the chain


def apply(conn: sqlite3.Connection, ctx: engine.Ctx, row: outbox.OutboxRow, signature: str) -> Any:
    """The mirror's change for a landed row (the same unit records the chain's accounts)."""
    p = row.payload
    if row.kind == "lock":
        return engine.open_reserved(conn, ctx, position_id=row.ref, signature=signature)
    if row.kind == "close":
        consent = None
        if p["consent"] is not None:
            consent = CloseConsent(p["consent"], p["expires_at"], p["closes"])
        done = engine.close(
            conn,
            ctx,
            agent_id=p["agent_id"],
            position_id=row.ref,
            pct=p["size_percent"],
            consent=consent,
        )
        q.set_position_signature(conn, row.ref, "close", signature)
        return replace(done, position=replace(done.position, close_signature=signature))
    if row.kind == "liquidate":
        liq = engine.liquidate(conn, ctx, liquidator=p["liquidator"], position_id=row.ref)
        q.set_position_signature(conn, row.ref, "close", signature)
        return replace(liq, position=replace(liq.position, close_signature=signature))
    if row.kind == "settle":
        settled = 0
        for position_id in p["position_ids"]:
            if engine.settle_funding_of(conn, ctx, position_id, at=ctx.ts):
                q.set_position_signature(conn, position_id, "settle", signature)
                settled += 1
        return settled
    if row.kind == "withdraw":
        signed = WithdrawConsent(p["consent"], p["destination"], p["expires_at"], p["withdrawals"])
        return engine.withdraw(conn, ctx, p["agent"], p["amount"], signed)
    if row.kind == "deposit":
        return engine.deposit(conn, ctx, p["agent"], p["amount"])
    raise ValueError(f"unknown outbox kind {row.kind!r}")


def refuse(
    conn: sqlite3.Connection, ctx: engine.Ctx, row: outbox.OutboxRow, error: ApiError
) -> None:
    """The chain refused the row (or its mirror change was refused): undo what unit 1
    reserved, tell the parties, and record why."""
    if row.kind == "lock":
        engine.release_reserved(
            conn, ctx, position_id=row.ref, code=error.code, message=error.message
        )
    outbox.mark_failed(conn, row.id, f"{error.code}: {error.message}", ctx.ts)
