"""The money rules of SPEC §4: the one reference implementation, in exact integer math.

Everything here is pure (no I/O, no clock, no database) and integer-only: money is
micro-USDC, prices are integers with exponent -8, rates are ppm per funding period,
time is unix seconds. A float or a ``Decimal`` reaching this module is a bug, so the
entry points refuse anything that is not an ``int`` (``bool`` included) with a
``TypeError``; impossible values (a zero price, a side of 2, ...) are a ``ValueError``.

Rounding directions are part of the rules and are chosen so that rounding never creates
money: ``floor`` (toward −∞, Python's ``//``) for PnL and closed parts, ``ceil`` for what
a requester must bring (initial margin, open fee), ``trunc`` (toward zero) for accrued
funding so the payer never pays more than accrued. Every operation that moves money
returns amounts whose sum equals what it started from; the property tests check that.

The on-chain program implements the same rules; ``tests/vectors/money.json`` (written by
``python -m perpd.money_vectors``) pins both to identical results. Intermediate products
reach ~10^35, so a port needs 128-bit arithmetic; inputs and results fit in 64 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

PPM = 1_000_000
OPEN_FEE_PPM = 500  # 0.05 % of notional, requester -> fee account
LIQUIDATION_REWARD_PPM = 50_000  # 5 % of notional, liquidated side -> liquidator
REQUESTER, MAKER = "requester", "maker"
BOUND_MAX = 2**63 - 1  # liquidation_price_bounds never returns more (no price is higher)

__all__ = [
    "BOUND_MAX",
    "LIQUIDATION_REWARD_PPM",
    "MAKER",
    "OPEN_FEE_PPM",
    "PPM",
    "REQUESTER",
    "CloseResult",
    "FundingResult",
    "LiquidationResult",
    "PositionState",
    "ceil_div",
    "close_position",
    "equities",
    "funding_due",
    "funding_transfer",
    "initial_margin",
    "liquidatable_side",
    "liquidate",
    "liquidation_price_bounds",
    "liquidation_reward_cap",
    "margin_ratio_ppm",
    "open_fee",
    "open_position",
    "pnl",
    "price_bounds",
    "settle_funding",
    "trunc_div",
    "under_maintenance",
]


# --------------------------------------------------------------------------- checks


def _int(name: str, value: object) -> int:
    """``value`` if it is a plain ``int``: floats/Decimals/bools must never carry money."""
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    return value


def _positive(name: str, value: object) -> int:
    if _int(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value  # type: ignore[return-value]


def _non_negative(name: str, value: object) -> int:
    if _int(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value  # type: ignore[return-value]


def _side(value: object) -> int:
    if _int("side", value) not in (1, -1):
        raise ValueError(f"side must be +1 (long) or -1 (short), got {value}")
    return value  # type: ignore[return-value]


def _pct(value: object) -> int:
    if not 1 <= _int("pct", value) <= 100:
        raise ValueError(f"pct must be 1..100, got {value}")
    return value  # type: ignore[return-value]


# ----------------------------------------------------------------------- arithmetic


def ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for b > 0: what a payer must bring so that nothing is under-collected."""
    _int("a", a)
    _positive("b", b)
    return -((-a) // b)


def trunc_div(a: int, b: int) -> int:
    """a / b rounded toward zero for b > 0: accrued funding never over-charges either way."""
    _int("a", a)
    _positive("b", b)
    q = abs(a) // b
    return q if a >= 0 else -q


def _clamp(x: int, lo: int, hi: int) -> int:
    return lo if x < lo else hi if x > hi else x


# ----------------------------------------------------------------- per-trade amounts


def initial_margin(notional: int, leverage: int) -> int:
    """IMr = ⌈N / L⌉: rounded up so a position is never more levered than asked."""
    return ceil_div(_positive("notional", notional), _positive("leverage", leverage))


def open_fee(notional: int) -> int:
    """⌈N × 500 / 10^6⌉: rounded up so the fee account is never short-changed."""
    return ceil_div(_positive("notional", notional) * OPEN_FEE_PPM, PPM)


def liquidation_reward_cap(notional: int) -> int:
    """⌊N × 50 000 / 10^6⌋: the most a liquidator can earn (before the collateral cap)."""
    return _non_negative("notional", notional) * LIQUIDATION_REWARD_PPM // PPM


def pnl(side: int, notional: int, entry_price: int, price: int) -> int:
    """Requester's PnL ⌊s × N × (P − P0) / P0⌋; the maker's is exactly its negation."""
    _side(side)
    _non_negative("notional", notional)
    _positive("entry_price", entry_price)
    _positive("price", price)
    return side * notional * (price - entry_price) // entry_price


def funding_due(notional: int, rate_ppm: int, elapsed_s: int, period_s: int) -> int:
    """trunc(N × f × elapsed / (10^6 × T)): cumulative funding since the base time.

    Positive: owed by the requester to the maker. Truncated toward zero so the payer,
    whichever side it is, never owes more than has accrued.
    """
    _non_negative("notional", notional)
    _int("rate_ppm", rate_ppm)
    _non_negative("elapsed_s", elapsed_s)
    _positive("period_s", period_s)
    return trunc_div(notional * rate_ppm * elapsed_s, PPM * period_s)


def margin_ratio_ppm(equity: int, notional: int, entry_price: int, price: int) -> int:
    """⌊equity × 10^6 / (N × P / P0)⌋: the API's margin_ratio, in ppm, computed exactly."""
    _int("equity", equity)
    _positive("notional", notional)
    _positive("entry_price", entry_price)
    _positive("price", price)
    return equity * PPM * entry_price // (notional * price)


def under_maintenance(equity: int, im: int) -> bool:
    """E < IM / 2, compared as 2E < IM so odd margins need no rounding decision."""
    return 2 * _int("equity", equity) < _int("im", im)


# ------------------------------------------------------------------------- position


@dataclass(frozen=True)
class PositionState:
    """What the money rules need to know about one open position (SPEC §4 symbols)."""

    side: int  # requester's side: +1 long, -1 short
    notional: int  # N, micro-USDC at entry
    entry_price: int  # P0, exponent -8, > 0
    cr: int  # requester collateral (locked), after settled funding
    cm: int  # maker collateral (locked), after settled funding
    imr: int  # requester initial margin
    imm: int  # maker initial margin
    rate_ppm: int  # f, per funding period; > 0: requester pays maker
    t_base: int  # funding base time: opening or last partial close
    funding_paid: int  # collected since t_base; > 0: requester has paid maker

    def __post_init__(self) -> None:
        for f in fields(self):
            _int(f.name, getattr(self, f.name))
        _side(self.side)
        _positive("notional", self.notional)
        _positive("entry_price", self.entry_price)
        for name in ("cr", "cm", "imr", "imm"):
            _non_negative(name, getattr(self, name))


def open_position(
    side: int,
    notional: int,
    entry_price: int,
    leverage: int,
    maker_collateral: int,
    rate_ppm: int,
    now: int,
) -> tuple[PositionState, int]:
    """A new position and the requester's open fee.

    The requester locks exactly IMr = ⌈N / L⌉ and pays the fee on top; the maker locks
    its quoted collateral, which is also its initial margin (IMm = Cm).
    """
    im = initial_margin(notional, leverage)
    state = PositionState(
        side=side,
        notional=notional,
        entry_price=entry_price,
        cr=im,
        cm=_non_negative("maker_collateral", maker_collateral),
        imr=im,
        imm=maker_collateral,
        rate_ppm=rate_ppm,
        t_base=_int("now", now),
        funding_paid=0,
    )
    return state, open_fee(notional)


# -------------------------------------------------------------------------- funding


@dataclass(frozen=True)
class FundingResult:
    """A settlement: the new state and what moved (> 0: requester -> maker)."""

    state: PositionState
    transfer: int
    due: int  # due(now) since t_base, whether or not all of it could be collected


def funding_transfer(
    notional: int,
    rate_ppm: int,
    t_base: int,
    funding_paid: int,
    cr: int,
    cm: int,
    now: int,
    period_s: int,
) -> tuple[int, int]:
    """(due(now), transfer) of `settle_funding`, on a position's stored values: the one
    rule, also for the batch settlement, which has no `PositionState` to build per row."""
    if now <= t_base:
        return 0, 0
    due = funding_due(notional, rate_ppm, now - t_base, period_s)
    delta = due - funding_paid
    if delta * rate_ppm <= 0:  # only a clock regression: never refund funding
        return due, 0
    return due, _clamp(delta, -cm, cr)


def settle_funding(state: PositionState, now: int, period_s: int) -> FundingResult:
    """Move ``due(now) − paid`` between the locked collaterals, capped by the payer's.

    Because ``paid`` counts only what was actually collected, a shortfall stays owed and
    is collected later if the payer's collateral grows back (it never does while the
    position is open, but the rule does not depend on that), and the total moved after
    any sequence of settlements equals one settlement at the last time: a missed tick is
    caught up exactly. Two guards make bad clocks harmless: nothing moves if
    ``now <= t_base``, and nothing ever moves against the sign of the rate (only a clock
    that went backwards could ask for that).
    """
    _int("now", now)
    _positive("period_s", period_s)
    s = state
    due, transfer = funding_transfer(
        s.notional, s.rate_ppm, s.t_base, s.funding_paid, s.cr, s.cm, now, period_s
    )
    if transfer == 0:
        return FundingResult(state=state, transfer=0, due=due)
    new = replace(
        state,
        cr=state.cr - transfer,
        cm=state.cm + transfer,
        funding_paid=state.funding_paid + transfer,
    )
    return FundingResult(state=new, transfer=transfer, due=due)


# ------------------------------------------------------------------------- margins


def equities(state: PositionState, price: int) -> tuple[int, int]:
    """(Er, Em) = (Cr + pnl, Cm − pnl) on the settled collaterals; Er + Em = Cr + Cm."""
    p = pnl(state.side, state.notional, state.entry_price, price)
    return state.cr + p, state.cm - p


def liquidatable_side(state: PositionState, price: int) -> str | None:
    """Which side is under maintenance at ``price``, if any.

    If both are (only possible for dust-sized positions after rounding), the PnL loser
    is liquidated, the requester on a tie: the loser is the one whose equity the price
    is eroding, and a fixed tie-break keeps the daemon and the chain in agreement.
    """
    p = pnl(state.side, state.notional, state.entry_price, price)
    r_under = under_maintenance(state.cr + p, state.imr)
    m_under = under_maintenance(state.cm - p, state.imm)
    if r_under and m_under:
        return MAKER if p > 0 else REQUESTER
    if r_under:
        return REQUESTER
    if m_under:
        return MAKER
    return None


def liquidation_price_bounds(state: PositionState) -> tuple[int | None, int | None]:
    """(low, high): ``liquidatable_side(state, P)`` is non-None only if P ≤ low or P ≥ high.

    An index for the liquidation watcher, exact rather than merely conservative: the
    side that loses when the price falls is under maintenance exactly for 1 ≤ P ≤ low,
    the side that loses when it rises exactly for P ≥ high. ``low`` is None when even
    P = 1 is safe; ``high`` is 1 if every price is already liquidatable. Both fit in a
    signed 64-bit integer: a threshold above ``BOUND_MAX`` (no price is that high) makes
    ``low = BOUND_MAX`` or ``high = None``. Valid until the state changes (funding
    settlement or partial close).

    Derivation: with pnl an integer, 2(C + pnl) < IM ⇔ pnl ≤ A := ⌊(IM − 2C − 1) / 2⌋
    (requester) and 2(Cm − pnl) < IMm ⇔ pnl ≥ B := −⌊(IMm − 2Cm − 1) / 2⌋ (maker).
    For a long requester pnl = ⌊N·P/P0⌋ − N, for a short one N − ⌈N·P/P0⌉; each
    inequality then solves to a single integer threshold on P.
    """
    s = state
    return price_bounds(s.side, s.notional, s.entry_price, s.imr, s.cr, s.imm, s.cm)


def price_bounds(
    side: int, n: int, p0: int, imr: int, cr: int, imm: int, cm: int
) -> tuple[int | None, int | None]:
    """`liquidation_price_bounds` on a position's stored values (the batch settlement)."""
    a = (imr - 2 * cr - 1) // 2  # requester under  ⇔ pnl <= a
    b = -((imm - 2 * cm - 1) // 2)  # maker under ⇔ pnl >= b
    if side == 1:
        # requester under ⇔ ⌊N·P/P0⌋ <= a + N ⇔ N·P < (a + N + 1)·P0
        low = ((a + n + 1) * p0 - 1) // n
        # maker under ⇔ ⌊N·P/P0⌋ >= b + N ⇔ N·P >= (b + N)·P0
        high = ceil_div((b + n) * p0, n)
    else:
        # maker under ⇔ ⌈N·P/P0⌉ <= N − b ⇔ N·P <= (N − b)·P0
        low = (n - b) * p0 // n
        # requester under ⇔ ⌈N·P/P0⌉ >= N − a ⇔ N·P > (N − a − 1)·P0
        high = (n - a - 1) * p0 // n + 1
    # keep both in signed 64 bits (SQLite INTEGER, the chain's i64): a threshold beyond
    # any representable price means "every price" (low) or "never" (high)
    low = min(low, BOUND_MAX)
    return (low if low >= 1 else None), (max(high, 1) if high <= BOUND_MAX else None)


# --------------------------------------------------------------------------- close


@dataclass(frozen=True)
class CloseResult:
    """A (partial) close: funding settled first, then PnL on the closed fraction."""

    funding: FundingResult
    pct: int
    closed_notional: int
    pnl: int  # pnl_c, the API's realized_pnl_usdc (price PnL only)
    requester_release: int  # the API's released_usdc
    maker_release: int
    remaining: PositionState | None  # None when pct == 100


def close_position(
    state: PositionState, pct: int, price: int, now: int, period_s: int
) -> CloseResult:
    """Close ``pct`` percent at ``price``: each part x_c = ⌊x·pct/100⌋, pool = Cr_c + Cm_c.

    The requester receives clamp(Cr_c + pnl_c, 0, pool) and the maker the rest, so the
    pool is released whole and no side ever receives more than the pool. The remaining
    position restarts funding at ``now`` with ``paid = 0`` (SPEC: a partial close resets
    t_base): any uncollectable funding shortfall on the old base is not carried over.
    """
    _pct(pct)
    _positive("price", price)
    funding = settle_funding(state, now, period_s)
    s = funding.state

    def part(x: int) -> int:
        return x * pct // 100

    n_c, cr_c, cm_c = part(s.notional), part(s.cr), part(s.cm)
    pnl_c = s.side * s.notional * pct * (price - s.entry_price) // (100 * s.entry_price)
    pool = cr_c + cm_c
    requester_release = _clamp(cr_c + pnl_c, 0, pool)
    remaining: PositionState | None = None
    if pct < 100:
        remaining = replace(
            s,
            notional=s.notional - n_c,
            cr=s.cr - cr_c,
            cm=s.cm - cm_c,
            imr=s.imr - part(s.imr),
            imm=s.imm - part(s.imm),
            t_base=max(now, s.t_base),  # == now on any sane clock; never re-accrue
            funding_paid=0,
        )
    return CloseResult(
        funding=funding,
        pct=pct,
        closed_notional=n_c,
        pnl=pnl_c,
        requester_release=requester_release,
        maker_release=pool - requester_release,
        remaining=remaining,
    )


# --------------------------------------------------------------------- liquidation


@dataclass(frozen=True)
class LiquidationResult:
    """A liquidation: full close at the oracle price with a reward to the liquidator."""

    funding: FundingResult
    side: str  # REQUESTER or MAKER: the side that was liquidated
    pnl: int  # requester's full PnL at the price
    transfer: int  # loser -> winner, signed like pnl (> 0: maker -> requester)
    reward: int  # to the liquidator (or the fee account for the daemon's keeper)
    requester_release: int
    maker_release: int


def liquidate(state: PositionState, price: int, now: int, period_s: int) -> LiquidationResult:
    """Liquidate the whole position at ``price``.

    Eligibility is judged on ``state`` as given (the caller's settled collaterals); a
    position that is not liquidatable raises ``ValueError``. Then funding is settled to
    ``now``, the PnL loser pays the winner at most its collateral (no vault, no
    socialised loss), and the liquidator is paid from what the liquidated side has left,
    at most ⌊N × 5 %⌋. Releases + reward always equal Cr + Cm as given.
    """
    side = liquidatable_side(state, price)
    if side is None:
        raise ValueError("position is not liquidatable at this price")
    funding = settle_funding(state, now, period_s)
    s = funding.state
    p = pnl(s.side, s.notional, s.entry_price, price)
    transfer = min(p, s.cm) if p > 0 else -min(-p, s.cr)
    cr, cm = s.cr + transfer, s.cm - transfer
    cap = liquidation_reward_cap(s.notional)
    if side == REQUESTER:
        reward = min(cap, cr)
        cr -= reward
    else:
        reward = min(cap, cm)
        cm -= reward
    return LiquidationResult(
        funding=funding,
        side=side,
        pnl=p,
        transfer=transfer,
        reward=reward,
        requester_release=cr,
        maker_release=cm,
    )
