"""The liquidation index's stored bounds: the payer's counts its funding ahead.

`money.liquidation_price_bounds` is exact for a state, and a funding payment moves the
payer's bound nearer the price; stored exactly, every payer's bound was rewritten at
every tick, a random index write per position and most of a tick's random I/O. So the
payer's bound is stored as if it had already paid its funding up to ``until``, a
boundary 1 to HORIZON periods ahead (phased by position: each tick rewrites about one
in HORIZON, however the positions were opened). A settlement up to ``until`` leaves it:
the payer then holds at least the collateral the bound was computed with, so the
stored bound names every price the exact one does. The receiver's bound is exact when
written and a payment only moves it away. Both stay supersets for the liquidation
watcher, which judges every candidate exactly (`money.liquidatable_side`).
"""

from __future__ import annotations

import zlib

from perpd import money

HORIZON = 3  # periods: a payer's bound is rewritten about once every HORIZON ticks

# (liq_low, liq_high, bound_until): a position's stored index columns
Stored = tuple[int | None, int | None, int | None]
NONE: Stored = (None, None, None)  # a position that is not open (not in the index)


def until_of(position_id: str, now: int, period_s: int) -> int:
    """The boundary a bound written at ``now`` counts funding to: the first after now's
    period whose index is the position's phase modulo HORIZON (1..HORIZON ahead)."""
    k = now // period_s
    phase = zlib.crc32(position_id.encode()) % HORIZON
    return period_s * (k + 1 + (phase - k - 1) % HORIZON)


def covered(until: int | None, settled_to: int) -> bool:
    """Whether a stored payer's bound already counts a settlement to ``settled_to``."""
    return until is not None and settled_to <= until


def payer_bound(side: int, transfer: int) -> int:
    """Which bound a funding payment moves nearer: the payer's (0: low, 1: high).

    Each bound is one side's (the requester's low if it is long, else the maker's)."""
    requester_pays = transfer > 0
    return 0 if requester_pays == (side == 1) else 1


def payer_ahead(
    which: int,
    side: int,
    n: int,
    p0: int,
    imr: int,
    cr: int,
    imm: int,
    cm: int,
    rate: int,
    t_base: int,
    paid: int,
    until: int,
    period_s: int,
) -> int | None:
    """Bound ``which`` (the payer's) once the payer has paid what is due up to ``until``
    (capped by its collateral, as `money.funding_transfer` caps a settlement)."""
    _due, more = money.funding_transfer(n, rate, t_base, paid, cr, cm, until, period_s)
    return money.price_bounds(side, n, p0, imr, cr - more, imm, cm + more)[which]


def stored(state: money.PositionState, position_id: str, now: int, period_s: int) -> Stored:
    """The index columns of a state written at ``now`` (an open, a lock, a partial close):
    the receiver's bound exact, the payer's counting its funding to `until_of`."""
    s = state
    until = until_of(position_id, now, period_s)
    bounds = list(money.liquidation_price_bounds(s))
    if s.rate_ppm:
        which = payer_bound(s.side, s.rate_ppm)  # the rate's sign is the payment's
        bounds[which] = payer_ahead(
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
            period_s,
        )
    return bounds[0], bounds[1], until
