"""The venue's rules as units of work: each function runs inside one store transaction.

Every function here takes the writer connection, checks everything first and raises an
`ApiError` before writing anything it would have to undo (the transaction rolls back
anyway), then changes balances, records and the event log together. Money moves only
through `perpd.money`; SQL only through `perpd.store.queries`.
"""

from __future__ import annotations

import functools
import math
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from solders.pubkey import Pubkey

from perpd import engine_mmp, liq_bounds, money
from perpd.bounds import MAX_BALANCE, MAX_TOTAL_DEPOSITS, saturate_pnl
from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.consents import CloseConsent, QuoteConsent, WithdrawConsent, position_address
from perpd.errors import (
    Conflict,
    Forbidden,
    InsufficientCollateral,
    InvalidRequest,
    NotFound,
    RateAboveMax,
    RateLimited,
    SelfQuote,
    Unauthorized,
)
from perpd.limits import TradeLimits
from perpd.markets import get_market
from perpd.records import (
    Account,
    Event,
    Position,
    PositionStatus,
    Quote,
    QuoteStatus,
    RequestStatus,
    TradeRequest,
)
from perpd.store import queries as q
from perpd.store import quote_controls as qc
from perpd.units import format_price, format_rate, format_usdc
from perpd.views import account_view, position_view, quote_view, request_view

KEEPER = "keeper"  # the daemon's own liquidator: its rewards go to the fee account


@dataclass(frozen=True)
class Ctx:
    """What every unit of work needs besides its arguments: the time and the period."""

    now: float
    funding_period_s: int
    price_of: Callable[[str], int]  # the usable oracle price now, or OracleUnavailable
    limits: TradeLimits = field(default_factory=TradeLimits)
    program_id: Pubkey = LOCAL_PROGRAM_ID  # the escrow program consents and addresses name

    @property
    def ts(self) -> int:
        return int(self.now)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def deadline(now: float, seconds: int) -> int:
    """A whole-second deadline at least ``seconds`` away."""
    return math.ceil(now + seconds)


def next_funding_time(t: int, period_s: int) -> int:
    """The next period boundary after ``t`` (00:00/08:00/16:00 UTC for 8 h)."""
    return (t // period_s + 1) * period_s


# ---------------------------------------------------------------- balances


def deposit(conn: sqlite3.Connection, ctx: Ctx, agent_id: str, amount: int) -> Account:
    """Credit ``amount``, within the ceilings that keep every balance in 64 bits (`bounds`)."""
    check_deposit(conn, agent_id, amount)
    q.record_deposit(conn, agent_id, amount)
    return q.get_account(conn, agent_id)


def check_deposit(conn: sqlite3.Connection, agent_id: str, amount: int) -> None:
    """The ceilings a deposit must stay under (400 past them); changes nothing."""
    account = q.get_account(conn, agent_id)
    if account.free + account.locked + amount > MAX_BALANCE:
        raise InvalidRequest(
            f"a deposit of {format_usdc(amount)} would take the balance of {agent_id} "
            f"past the ceiling of {format_usdc(MAX_BALANCE)} USDC per agent"
        )
    if q.total_deposits(conn) + amount > MAX_TOTAL_DEPOSITS:
        raise InvalidRequest(
            f"the venue's deposits would pass their ceiling of "
            f"{format_usdc(MAX_TOTAL_DEPOSITS)} USDC"
        )


def withdraw(
    conn: sqlite3.Connection,
    ctx: Ctx,
    agent_id: str,
    amount: int,
    consent: WithdrawConsent | None = None,
) -> Account:
    """Debit free collateral; a consented withdrawal advances ``withdrawals``, and is
    refused (401) if another one advanced it after its consent was verified."""
    account = q.get_account(conn, agent_id)
    if consent is not None and consent.withdrawals != account.withdrawals:
        raise Unauthorized(
            f"the withdraw consent names withdrawal {consent.withdrawals}, but "
            f"{agent_id} has made {account.withdrawals}: sign it again"
        )
    if account.free < amount:
        raise InsufficientCollateral(
            f"free balance {format_usdc(account.free)} is below {format_usdc(amount)}"
        )
    q.record_withdrawal(conn, agent_id, amount, consented=consent is not None)
    return q.get_account(conn, agent_id)


def _require_free(conn: sqlite3.Connection, agent_id: str, amount: int, who: str) -> None:
    free = q.get_account(conn, agent_id).free
    if free < amount:
        raise InsufficientCollateral(
            f"{who} has {format_usdc(free)} free USDC, needs {format_usdc(amount)}"
        )


# ---------------------------------------------------------------- request / quote


def create_request(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    agent_id: str,
    market: str,
    side: int,
    size: int,
    leverage: int,
    max_rate: int,
    duration_s: int | None,
    expires_in: int = 30,
    expires_at: int | None = None,
    nonce: int | None = None,
    consent: str | None = None,
    request_hash: str | None = None,
    client_id: str | None = None,
) -> TradeRequest:
    """Open a request for quotes; the requester must be able to fund IM + open fee now.

    ``expires_at`` (a signed deadline) replaces ``expires_in``; ``consent`` and
    ``request_hash`` come verified (`perpd.consents`). Refused below the market's
    minimum size (400), with a nonce used before (409 ``nonce_used``), and past the
    agent's cap on open requests (429, Retry-After = until its earliest one expires).
    """
    lim = ctx.limits
    min_size = lim.min_size_of(market)
    if size < min_size:
        raise InvalidRequest(f"size_usdc must be at least {format_usdc(min_size)} on {market}")
    if nonce is not None and q.nonce_used(conn, agent_id, nonce):
        raise Conflict(f"{agent_id} has used nonce {nonce} before", code="nonce_used")
    cap = lim.max_open_requests_per_agent
    count, earliest = q.open_requests_of(conn, agent_id, ctx.now, cap)
    if count >= cap:
        raise RateLimited(
            f"at most {cap} open requests per agent",
            retry_after_s=_until(ctx, earliest),
        )
    need = money.initial_margin(size, leverage) + money.open_fee(size)
    _require_free(conn, agent_id, need, "requester")
    r = TradeRequest(
        request_id=new_id("req"),
        agent_id=agent_id,
        market=market,
        side=side,
        size=size,
        leverage=leverage,
        max_rate=max_rate,
        duration_s=duration_s,
        created_at=ctx.ts,
        expires_at=deadline(ctx.now, expires_in) if expires_at is None else expires_at,
        status=RequestStatus.OPEN,
        nonce=nonce,
        consent=consent,
        consent_expires_at=expires_at if consent is not None else None,
        request_hash=request_hash,
        client_id=client_id,
    )
    q.insert_request(conn, r)
    announced = _announced(request_view(r))
    q.append_event(conn, ctx.ts, "trade_request", announced, market=market, public=True)
    return r


def _announced(view: dict[str, Any]) -> dict[str, Any]:
    """An object as its event shows it to others: without its owner's ``client_id``."""
    return {k: v for k, v in view.items() if k != "client_id"}


def _until(ctx: Ctx, deadline_s: int | None) -> int:
    """Whole seconds (at least 1) from now until ``deadline_s``: a Retry-After."""
    return max(1, math.ceil((deadline_s or 0) - ctx.now))


def _check_quote_caps(conn: sqlite3.Connection, ctx: Ctx, r: TradeRequest, maker: str) -> None:
    """429 past the caps on live quotes: per maker, per request, per maker on a request.

    Each count reads at most its cap of rows (partial indexes on live quotes)."""
    lim = ctx.limits
    count, earliest = q.live_quotes_of_agent(conn, maker, ctx.now, lim.max_live_quotes_per_agent)
    if count >= lim.max_live_quotes_per_agent:
        raise RateLimited(
            f"at most {lim.max_live_quotes_per_agent} live quotes per agent",
            retry_after_s=_until(ctx, earliest),
        )
    cap = lim.max_live_quotes_per_request
    live = q.live_quotes_on_request(conn, r.request_id, ctx.now, cap)
    if len(live) >= cap:
        raise RateLimited(
            f"request {r.request_id} already has {cap} live quotes",
            retry_after_s=_until(ctx, live[0][1]),
        )
    own = [at for who, at in live if who == maker]
    if len(own) >= lim.max_live_quotes_per_maker_request:
        raise RateLimited(
            f"at most {lim.max_live_quotes_per_maker_request} live quotes per maker on a request",
            retry_after_s=_until(ctx, own[0]),
        )


def _get_request(conn: sqlite3.Connection, request_id: str) -> TradeRequest:
    r = q.get_request(conn, request_id)
    if r is None:
        raise NotFound(f"no request {request_id!r}")
    return r


def require_live(ctx: Ctx, r: TradeRequest) -> None:
    """`request_filled` / `request_expired` unless ``r`` can still be quoted and filled."""
    if r.status == RequestStatus.FILLED:
        raise Conflict(f"request {r.request_id} is already filled", code="request_filled")
    if r.status == RequestStatus.PENDING:
        raise Conflict(
            f"request {r.request_id} is being filled (its lock is on its way to the chain)",
            code="request_filled",
        )
    if r.status == RequestStatus.CANCELLED:
        raise Conflict(f"request {r.request_id} was cancelled", code="request_cancelled")
    if r.status != RequestStatus.OPEN or ctx.now >= r.expires_at:
        raise Conflict(f"request {r.request_id} has expired", code="request_expired")


def create_quote(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    request_id: str,
    agent_id: str,
    rate: int,
    collateral: int,
    valid_for: int = 10,
    valid_until: int | None = None,
    consent: QuoteConsent | None = None,
    client_id: str | None = None,
    quote_id: str | None = None,
) -> Quote:
    """A maker's firm quote on a live request. Nothing is locked until it is accepted.

    ``valid_until`` (a signed deadline) replaces ``valid_for``; a ``consent`` was
    verified against the request consent hash it names, which must be this request's.
    ``quote_id`` is given by a replace (its cancel event names the new id first); a
    maker frozen by its protection is refused (409 ``maker_frozen``)."""
    r = _get_request(conn, request_id)
    if consent is not None and r.request_hash != consent.request_hash:
        raise Unauthorized(f"the quote consent names another request than {request_id}")
    require_live(ctx, r)
    if agent_id == r.agent_id:
        raise SelfQuote("a maker cannot quote its own request")
    if rate > r.max_rate:
        raise RateAboveMax(f"funding rate {rate} ppm is above the request's maximum")
    max_lev = get_market(r.market).max_leverage
    if collateral * max_lev < r.size:
        raise InsufficientCollateral(
            f"maker collateral must be at least size / {max_lev} = "
            f"{format_usdc(money.ceil_div(r.size, max_lev))}"
        )
    engine_mmp.require_not_frozen(conn, ctx, agent_id)
    _require_free(conn, agent_id, collateral, "maker")
    _check_quote_caps(conn, ctx, r, agent_id)
    quote = Quote(
        quote_id=quote_id or new_id("quo"),
        request_id=request_id,
        agent_id=agent_id,
        rate=rate,
        collateral=collateral,
        created_at=ctx.ts,
        expires_at=deadline(ctx.now, valid_for) if valid_until is None else valid_until,
        status=QuoteStatus.LIVE,
        consent=None if consent is None else consent.signature,
        valid_until=valid_until,
        client_id=client_id,
    )
    q.insert_quote(conn, quote)
    q.append_event(
        conn, ctx.ts, "quote", _announced(quote_view(quote)), market=r.market, audience=[r.agent_id]
    )
    return quote


# ---------------------------------------------------------------- accept


def _check_accept(
    conn: sqlite3.Connection, ctx: Ctx, agent_id: str, request_id: str, quote_id: str
) -> tuple[TradeRequest, Quote]:
    r = _get_request(conn, request_id)
    if r.agent_id != agent_id:
        raise Forbidden("only the requester can accept quotes on its request")
    require_live(ctx, r)
    quote = q.get_quote(conn, quote_id)
    if quote is None or quote.request_id != request_id:
        raise NotFound(f"no quote {quote_id!r} on request {request_id}")
    if quote.status == QuoteStatus.CANCELLED:
        raise Conflict(f"quote {quote_id} was cancelled", code="quote_cancelled")
    if quote.status != QuoteStatus.LIVE or ctx.now >= quote.expires_at:
        raise Conflict(f"quote {quote_id} is no longer live", code="quote_expired")
    return r, quote


def _new_position(
    ctx: Ctx, r: TradeRequest, quote: Quote, position_id: str, status: PositionStatus
) -> tuple[Position, int, int]:
    """The position ``quote`` fills at the oracle price now: (position, fee, price)."""
    price = ctx.price_of(r.market)
    state, fee = money.open_position(
        r.side, r.size, price, r.leverage, quote.collateral, quote.rate, ctx.ts
    )
    position = Position(
        position_id=position_id,
        request_id=r.request_id,
        quote_id=quote.quote_id,
        market=r.market,
        requester=r.agent_id,
        maker=quote.agent_id,
        leverage=r.leverage,
        state=state,
        funding_total=0,
        realized_pnl=0,
        status=status,
        opened_at=ctx.ts,
        expires_at=None if r.duration_s is None else ctx.ts + r.duration_s,
        next_funding_at=next_funding_time(ctx.ts, ctx.funding_period_s),
        nonce=r.nonce,
        position_address=(
            None if r.nonce is None else str(position_address(ctx.program_id, r.agent_id, r.nonce))
        ),
    )
    return position, fee, price


def accept(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    agent_id: str,
    request_id: str,
    quote_id: str,
) -> Position:
    """Fill a request with one of its quotes at the oracle price: all of it or none of it."""
    r, quote = _check_accept(conn, ctx, agent_id, request_id, quote_id)
    position, fee, price = _new_position(ctx, r, quote, new_id("pos"), PositionStatus.OPEN)
    state = position.state
    _require_free(conn, r.agent_id, state.cr + fee, "requester")
    _require_free(conn, quote.agent_id, state.cm, "maker")
    q.adjust_account(conn, r.agent_id, -(state.cr + fee), state.cr)
    q.add_fees(conn, fee)
    q.adjust_account(conn, quote.agent_id, -state.cm, state.cm)
    q.save_position(conn, position, _stored(ctx, position))
    q.set_quote_status(conn, quote_id, QuoteStatus.ACCEPTED)
    _filled(conn, ctx, r, quote, position, fee, price)
    engine_mmp.after_fill(conn, ctx, quote.agent_id, r.market)
    return position


def _filled(
    conn: sqlite3.Connection,
    ctx: Ctx,
    r: TradeRequest,
    quote: Quote,
    position: Position,
    fee: int,
    price: int,
) -> None:
    """The request is filled: its other quotes rejected, the events of SPEC §3."""
    request_id, quote_id = r.request_id, quote.quote_id
    q.set_request_status(conn, request_id, RequestStatus.FILLED, position.position_id)
    ids = {"quote_id": quote_id, "request_id": request_id}
    q.append_event(
        conn,
        ctx.ts,
        "quote_accepted",
        {**ids, "position_id": position.position_id},
        market=r.market,
        audience=[quote.agent_id],
    )
    # One UPDATE; at most max_live_quotes_per_request rows (the cap bounds this unit).
    for other_id, other_maker in q.reject_live_quotes(conn, request_id):
        q.append_event(
            conn,
            ctx.ts,
            "quote_rejected",
            {"quote_id": other_id, "request_id": request_id},
            market=r.market,
            audience=[other_maker],
        )
    opened = {**position_view(position, price), "open_fee_usdc": format_usdc(fee)}
    if position.lock_signature is not None:
        opened["lock_signature"] = position.lock_signature
    q.append_event(
        conn,
        ctx.ts,
        "position_opened",
        opened,
        market=r.market,
        audience=[position.requester, position.maker],
    )


# With a chain, accept is two units: `reserve_accept` (the HTTP call: free -> locked for
# both collaterals and the fee, a pending position, and the caller's lock row in the
# outbox) and, once the lock has landed, `open_reserved`; a refused lock is undone by
# `release_reserved`. Between the two nothing else can fill the request.


def reserve_accept(
    conn: sqlite3.Connection, ctx: Ctx, *, agent_id: str, request_id: str, quote_id: str
) -> Position:
    """Unit 1 of a chain accept: check it all as `accept` does and reserve the money."""
    r, quote = _check_accept(conn, ctx, agent_id, request_id, quote_id)
    position, fee, _ = _new_position(ctx, r, quote, new_id("pos"), PositionStatus.PENDING)
    state = position.state
    _require_free(conn, r.agent_id, state.cr + fee, "requester")
    _require_free(conn, quote.agent_id, state.cm, "maker")
    q.adjust_account(conn, r.agent_id, -(state.cr + fee), state.cr + fee)
    q.adjust_account(conn, quote.agent_id, -state.cm, state.cm)
    q.save_position(conn, position, liq_bounds.NONE)
    q.set_request_status(conn, request_id, RequestStatus.PENDING, position.position_id)
    q.set_quote_status(conn, quote_id, QuoteStatus.ACCEPTED)
    engine_mmp.after_fill(conn, ctx, quote.agent_id, r.market)  # the fill is counted here
    return position


def open_reserved(
    conn: sqlite3.Connection, ctx: Ctx, *, position_id: str, signature: str
) -> Position:
    """Unit 2 of a chain accept, with the landed lock: the position opens at the price
    the lock read (the oracle's now), the fee leaves the reservation for the fee account."""
    pending = _get_position(conn, position_id)
    if pending.status != PositionStatus.PENDING:
        raise Conflict(f"position {position_id} is {pending.status}", code="position_not_open")
    r = _get_request(conn, pending.request_id)
    quote = q.get_quote(conn, pending.quote_id)
    assert quote is not None, "a pending position's quote is never pruned"
    position, fee, price = _new_position(ctx, r, quote, position_id, PositionStatus.OPEN)
    position = replace(position, lock_signature=signature)
    if position.state.cr != pending.state.cr or position.state.cm != pending.state.cm:
        raise AssertionError("collateral of a reserved position changed with the price")
    q.adjust_account(conn, r.agent_id, 0, -fee)
    q.add_fees(conn, fee)
    q.save_position(conn, position, _stored(ctx, position))
    _filled(conn, ctx, r, quote, position, fee, price)
    return position


def release_reserved(
    conn: sqlite3.Connection, ctx: Ctx, *, position_id: str, code: str, message: str
) -> Position:
    """A lock the chain refused: the reservation goes back to free, the request may be
    accepted again (with another quote) while it lives, and both sides are told."""
    pending = _get_position(conn, position_id)
    if pending.status != PositionStatus.PENDING:
        raise Conflict(f"position {position_id} is {pending.status}", code="position_not_open")
    s = pending.state
    fee = money.open_fee(s.notional)
    q.adjust_account(conn, pending.requester, s.cr + fee, -(s.cr + fee))
    q.adjust_account(conn, pending.maker, s.cm, -s.cm)
    failed = replace(pending, status=PositionStatus.FAILED, closed_at=ctx.ts)
    q.save_position(conn, failed, liq_bounds.NONE)
    q.set_request_status(conn, pending.request_id, RequestStatus.OPEN, None)
    q.set_quote_status(conn, pending.quote_id, QuoteStatus.FAILED)
    q.append_event(
        conn,
        ctx.ts,
        "position_failed",
        {
            "position_id": position_id,
            "request_id": pending.request_id,
            "quote_id": pending.quote_id,
            "code": code,
            "message": message,
        },
        market=pending.market,
        audience=[pending.requester, pending.maker],
    )
    return failed


# ---------------------------------------------------------------- funding


def _move_funding(conn: sqlite3.Connection, p: Position, transfer: int) -> None:
    """Funding moves between the two locked collaterals: requester -> maker if > 0."""
    if transfer:
        q.adjust_account(conn, p.requester, 0, -transfer)
        q.adjust_account(conn, p.maker, 0, transfer)


def _funding_data(
    position_id: str, requester: str, maker: str, transfer: int, settled_to: int, rate: int
) -> dict[str, Any]:
    """SPEC §6 ``funding_settled`` data (> 0: the requester paid the maker)."""
    payer, receiver = (requester, maker) if transfer > 0 else (maker, requester)
    return {
        "position_id": position_id,
        "amount_usdc": format_usdc(abs(transfer)),
        "payer": payer,
        "receiver": receiver,
        "settled_to": settled_to,
        "funding_rate": _rate_text(rate),
    }


_rate_text = functools.lru_cache(maxsize=1024)(format_rate)


def _funding_event(
    conn: sqlite3.Connection, ctx: Ctx, p: Position, transfer: int, settled_to: int
) -> None:
    if transfer == 0:
        return
    q.append_event(
        conn,
        ctx.ts,
        "funding_settled",
        _funding_data(p.position_id, p.requester, p.maker, transfer, settled_to, p.state.rate_ppm),
        market=p.market,
        audience=[p.requester, p.maker],
    )


def settle_funding_due(
    conn: sqlite3.Connection,
    ctx: Ctx,
    limit: int,
    unindexed: list[Event] | None = None,
    locked: dict[str, int] | None = None,
) -> int:
    """Settle up to ``limit`` positions whose funding time has come; returns how many.

    Each settles to the last period boundary, not to now: every settlement lands on the
    same schedule however late the scheduler runs, and catching up after downtime
    settles to the latest boundary in one step, exactly (continuous accrual), and never
    twice. Selected inside the transaction, so nothing is read twice or goes stale.

    Set-based: one read of the columns funding needs, the money rule per row
    (`money.funding_transfer` and `money.price_bounds`, the ones a single settlement
    uses: their products pass 2^63, which SQLite's integers cannot hold), then one
    statement each for the positions, the agents' locked balances, the events and
    their audiences. The per-row Python is kept to the arithmetic and the event's data
    (a rate's text is formatted once: a tick has few distinct rates).
    ``unindexed``: the events' audience and history rows are not written; the events
    are added to it, for the scheduler's sorted pass once the unit has committed
    (`perpd.store.funding_index`). ``locked``: the agents' locked changes are added to
    it, for the caller to write once per unit (`q.adjust_locked`): a step touches most
    agents, so a statement per step rewrote about as many account rows as it settled.
    """
    period = ctx.funding_period_s
    boundary = ctx.ts // period * period
    next_at = next_funding_time(ctx.ts, period)
    kept: list[q.FundingUpdate] = []
    lows: list[q.BoundUpdate] = []
    highs: list[q.BoundUpdate] = []
    deltas: dict[str, int] = {} if locked is None else locked
    events: list[tuple[str, dict[str, Any], tuple[str, ...]]] = []
    transfer_of = money.funding_transfer
    covered, until_of, ahead = liq_bounds.covered, liq_bounds.until_of, liq_bounds.payer_ahead
    for row in q.funding_due_rows(conn, ctx.ts, limit):
        key, pid, market, requester, maker, side, n, p0, cr, cm, imr, imm, rate, t_base = row[:14]
        paid, until = row[14], row[15]
        _due, transfer = transfer_of(n, rate, t_base, paid, cr, cm, boundary, period)
        if not transfer:  # nothing moved, no bound either
            kept.append((key, cr, cm, paid, 0, next_at))
            continue
        cr, cm, paid = cr - transfer, cm + transfer, paid + transfer
        deltas[requester] = deltas.get(requester, 0) - transfer
        deltas[maker] = deltas.get(maker, 0) + transfer
        data = _funding_data(pid, requester, maker, transfer, boundary, rate)
        events.append((market, data, (requester, maker)))
        if covered(until, boundary):  # the payer's stored bound already counts this
            kept.append((key, cr, cm, paid, transfer, next_at))
            continue
        until = until_of(pid, ctx.ts, period)
        which = liq_bounds.payer_bound(side, transfer)
        bound = ahead(which, side, n, p0, imr, cr, imm, cm, rate, t_base, paid, until, period)
        (highs if which else lows).append((key, cr, cm, paid, transfer, next_at, bound, until))
    if kept or lows or highs:
        q.apply_funding(conn, kept, lows, highs)
        if locked is None:
            q.adjust_locked(conn, deltas)
        made = q.append_events_bulk(
            conn, ctx.ts, "funding_settled", events, index=unindexed is None
        )
        if unindexed is not None:
            unindexed.extend(made)
    return len(kept) + len(lows) + len(highs)


def _stored(ctx: Ctx, p: Position) -> liq_bounds.Stored:
    """The index columns of a position written now (`liq_bounds.stored`)."""
    return liq_bounds.stored(p.state, p.position_id, ctx.ts, ctx.funding_period_s)


def _funding_bounds(
    ctx: Ctx, p: Position, transfer: int, settled_to: int, held: liq_bounds.Stored
) -> liq_bounds.Stored:
    """A single settlement's stored index columns, as a batch writes them: kept if
    nothing moved or the payer's bound already counts it (`perpd.liq_bounds`), else the
    payer's rewritten (the receiver's, which a payment moves away, kept)."""
    if not transfer or liq_bounds.covered(held[2], settled_to):
        return held
    s, period = p.state, ctx.funding_period_s
    until = liq_bounds.until_of(p.position_id, ctx.ts, period)
    which = liq_bounds.payer_bound(s.side, transfer)
    bound = liq_bounds.payer_ahead(
        which,
        s.side,
        s.notional,
        s.entry_price,
        s.imr,
        s.cr,
        s.imm,
        s.cm,
        s.rate_ppm,
        s.t_base,
        s.funding_paid,
        until,
        period,
    )
    return (bound, held[1], until) if which == 0 else (held[0], bound, until)


def settle_funding_of(
    conn: sqlite3.Connection, ctx: Ctx, position_id: str, *, at: int | None = None
) -> bool:
    """Settle one position if its funding time has come (the scheduler's fallback when
    a batch fails: one bad position must not hold back the others); True if settled."""
    p = q.get_position(conn, position_id)
    if p is None or p.status != "open" or p.next_funding_at > ctx.ts:
        return False
    _settle_funding(conn, ctx, p, at)
    return True


def _settle_funding(conn: sqlite3.Connection, ctx: Ctx, p: Position, at: int | None = None) -> None:
    """Settle to the last period boundary, or to ``at`` (with a chain: the program
    settles to its Clock, which is the unit's time; the result differs only by what
    accrued since the boundary, paid now rather than next period)."""
    period = ctx.funding_period_s
    boundary = ctx.ts // period * period if at is None else at
    result = money.settle_funding(p.state, boundary, period)
    updated = p.with_state(
        result.state,
        funding_total=p.funding_total + result.transfer,
        next_funding_at=next_funding_time(ctx.ts, period),
    )
    _move_funding(conn, p, result.transfer)
    held = q.liquidation_bounds(conn, p.position_id)
    bounds = _funding_bounds(ctx, updated, result.transfer, boundary, held)
    q.save_position(conn, updated, bounds)
    _funding_event(conn, ctx, p, result.transfer, boundary)


# ---------------------------------------------------------------- close / liquidate


def _get_position(conn: sqlite3.Connection, position_id: str) -> Position:
    p = q.get_position(conn, position_id)
    if p is None:
        raise NotFound(f"no position {position_id!r}")
    return p


def _require_open(p: Position) -> None:
    if p.status != PositionStatus.OPEN:
        raise Conflict(f"position {p.position_id} is {p.status}", code="position_not_open")


def check_close(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    agent_id: str | None,
    position_id: str,
    pct: int,
    consent: CloseConsent | None = None,
) -> tuple[Position, int]:
    """Everything `close` refuses, without changing anything: (position, price)."""
    p = _get_position(conn, position_id)
    if agent_id is not None and agent_id != p.requester:
        raise Forbidden("only the requester can close a position")
    _require_open(p)
    if consent is not None and consent.closes != p.closes:
        raise Unauthorized(
            f"the close consent names close {consent.closes}, but position {position_id} "
            f"has had {p.closes}: sign it again"
        )
    min_size = ctx.limits.min_size_of(p.market)
    left = p.state.notional - p.state.notional * pct // 100
    if pct < 100 and left < min_size:
        # No dust positions: the per-close floors would outweigh what moves (decisions.md).
        raise InvalidRequest(
            f"a partial close must leave at least {format_usdc(min_size)} on {p.market} "
            f"(it would leave {format_usdc(left)}); close 100 percent instead"
        )
    return p, ctx.price_of(p.market)


@dataclass(frozen=True)
class Closed:
    position: Position
    realized_pnl: int
    released: int
    price: int


def close(
    conn: sqlite3.Connection,
    ctx: Ctx,
    *,
    agent_id: str | None,
    position_id: str,
    pct: int,
    consent: CloseConsent | None = None,
) -> Closed:
    """Close ``pct`` percent at the oracle price (``agent_id`` None: the term-expiry timer).

    Every close advances the position's ``closes``; a ``consent`` verified for another
    count (a replay, or a close that raced it) is refused (401)."""
    p, price = check_close(
        conn, ctx, agent_id=agent_id, position_id=position_id, pct=pct, consent=consent
    )
    result = money.close_position(p.state, pct, price, ctx.ts, ctx.funding_period_s)
    funded = result.funding.state
    _move_funding(conn, p, result.funding.transfer)
    remaining = result.remaining
    cr_c = funded.cr - (remaining.cr if remaining else 0)
    cm_c = funded.cm - (remaining.cm if remaining else 0)
    q.adjust_account(conn, p.requester, result.requester_release, -cr_c)
    q.adjust_account(conn, p.maker, result.maker_release, -cm_c)
    common = {
        "closes": p.closes + 1,
        "funding_total": p.funding_total + result.funding.transfer,
        # exact in the response and the event; the stored total saturates (`bounds`)
        "realized_pnl": saturate_pnl(p.realized_pnl + result.pnl),
    }
    if remaining is None:
        updated = p.with_state(
            replace(funded, cr=0, cm=0),
            status=PositionStatus.CLOSED,
            closed_at=ctx.ts,
            exit_price=price,
            **common,
        )
        bounds = liq_bounds.NONE
    else:
        updated = p.with_state(remaining, **common)
        bounds = _stored(ctx, updated)
    q.save_position(conn, updated, bounds)
    _funding_event(conn, ctx, p, result.funding.transfer, ctx.ts)
    q.append_event(
        conn,
        ctx.ts,
        "position_closed",
        {
            **position_view(updated, price),
            # SPEC §6: a close's event carries this close's PnL as realized_pnl_usdc;
            # the position's running total is total_realized_pnl_usdc.
            "total_realized_pnl_usdc": format_usdc(updated.realized_pnl),
            "size_percent": pct,
            "closed_size_usdc": format_usdc(result.closed_notional),
            "close_price": format_price(price),
            "realized_pnl_usdc": format_usdc(result.pnl),
            "released_usdc": format_usdc(result.requester_release),
            "maker_released_usdc": format_usdc(result.maker_release),
        },
        market=p.market,
        audience=[p.requester, p.maker],
    )
    return Closed(updated, result.pnl, result.requester_release, price)


@dataclass(frozen=True)
class Liquidated:
    position: Position
    reward: int
    side: str
    price: int


def check_liquidate(
    conn: sqlite3.Connection, ctx: Ctx, *, liquidator: str, position_id: str
) -> tuple[Position, int, money.LiquidationResult]:
    """Everything `liquidate` refuses, without changing anything: (position, price, result)."""
    p = _get_position(conn, position_id)
    _require_open(p)
    price = ctx.price_of(p.market)
    if money.liquidatable_side(p.state, price) is None:
        raise Conflict(
            f"position {position_id} is not liquidatable at this price", code="not_liquidatable"
        )
    result = money.liquidate(p.state, price, ctx.ts, ctx.funding_period_s)
    if liquidator == (p.requester if result.side == money.REQUESTER else p.maker):
        # The reward is the liquidated side's penalty: it cannot pay it to itself.
        raise Forbidden("the liquidated side cannot be its own liquidator (a requester can close)")
    return p, price, result


def liquidate(
    conn: sqlite3.Connection, ctx: Ctx, *, liquidator: str, position_id: str
) -> Liquidated:
    """Liquidate at the oracle price if a side is under maintenance; else `not_liquidatable`."""
    p, price, result = check_liquidate(conn, ctx, liquidator=liquidator, position_id=position_id)
    funded = result.funding.state
    _move_funding(conn, p, result.funding.transfer)
    q.adjust_account(conn, p.requester, result.requester_release, -funded.cr)
    q.adjust_account(conn, p.maker, result.maker_release, -funded.cm)
    if liquidator == KEEPER:
        q.add_fees(conn, result.reward)
    else:
        q.adjust_account(conn, liquidator, result.reward, 0)
    updated = p.with_state(
        replace(funded, cr=0, cm=0),
        status=PositionStatus.LIQUIDATED,
        closed_at=ctx.ts,
        exit_price=price,
        liquidator=liquidator,
        funding_total=p.funding_total + result.funding.transfer,
        realized_pnl=saturate_pnl(p.realized_pnl + result.pnl),
    )
    q.save_position(conn, updated, liq_bounds.NONE)
    _funding_event(conn, ctx, p, result.funding.transfer, ctx.ts)
    audience = [p.requester, p.maker] + ([] if liquidator == KEEPER else [liquidator])
    q.append_event(
        conn,
        ctx.ts,
        "liquidation",
        {
            **position_view(updated, price),
            "liquidated_side": result.side,
            "liquidator": liquidator,
            "reward_usdc": format_usdc(result.reward),
            "pnl_usdc": format_usdc(result.pnl),
            "requester_released_usdc": format_usdc(result.requester_release),
            "maker_released_usdc": format_usdc(result.maker_release),
        },
        market=p.market,
        audience=audience,
    )
    return Liquidated(updated, result.reward, result.side, price)


# ---------------------------------------------------------------- expiry


def expire_due(conn: sqlite3.Connection, ctx: Ctx) -> int:
    """Expire up to ``expiry_batch`` requests and quotes (together) whose deadline has
    passed; returns how many. The timer calls it again while a batch comes back full,
    so a crowd of deadlines in one second never holds the writer for long."""
    n = 0
    batch = ctx.limits.expiry_batch
    for r in q.requests_due(conn, ctx.now, batch):
        q.set_request_status(conn, r.request_id, RequestStatus.EXPIRED)
        q.append_event(
            conn,
            ctx.ts,
            "request_expired",
            {"request_id": r.request_id, "market": r.market},
            market=r.market,
            public=True,
        )
        n += 1
    for quote, market, requester in q.quotes_due_with_request(conn, ctx.now, batch - n):
        q.set_quote_status(conn, quote.quote_id, QuoteStatus.EXPIRED)
        q.append_event(
            conn,
            ctx.ts,
            "quote_expired",
            {"quote_id": quote.quote_id, "request_id": quote.request_id},
            market=market,
            audience=[quote.agent_id, requester],
        )
        n += 1
    return n


def prune_finished(
    conn: sqlite3.Connection,
    ctx: Ctx,
    retention_s: int,
    limit: int,
    client_id_retention_s: int | None = None,
) -> int:
    """Delete finished requests and quotes past ``retention_s`` (events stay: the log),
    and client ids first used more than ``client_id_retention_s`` ago."""
    quotes, requests = q.prune_finished(conn, ctx.ts - retention_s, limit)
    ids = 0
    if client_id_retention_s is not None:
        ids = qc.prune_client_ids(conn, ctx.ts - client_id_retention_s, limit)
    return quotes + requests + ids


def account_snapshot(conn: sqlite3.Connection, agent_id: str) -> dict[str, str]:
    return account_view(q.get_account(conn, agent_id))
