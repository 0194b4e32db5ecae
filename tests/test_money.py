"""Unit and property tests for perpd.money (SPEC §4), with hand-worked numbers.

The running example is a 1 000 USDC (N = 10^9 micro-USDC) position entered at a price of
1.00000000 (P0 = 10^8), so pnl = 10 × (P − P0) exactly and the arithmetic is easy to
check by hand.
"""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpd import money, money_vectors
from perpd.money import (
    MAKER,
    REQUESTER,
    PositionState,
    ceil_div,
    close_position,
    equities,
    funding_due,
    initial_margin,
    liquidatable_side,
    liquidate,
    liquidation_price_bounds,
    margin_ratio_ppm,
    open_fee,
    open_position,
    pnl,
    settle_funding,
    trunc_div,
    under_maintenance,
)

N = 10**9  # 1 000 USDC
P0 = 10**8  # price 1.00000000
HOUR = 3600


def state(**kw: int) -> PositionState:
    """The running example at 10×/10×: Cr = IMr = Cm = IMm = 100 USDC, no funding."""
    base = dict(
        side=1,
        notional=N,
        entry_price=P0,
        cr=10**8,
        cm=10**8,
        imr=10**8,
        imm=10**8,
        rate_ppm=0,
        t_base=0,
        funding_paid=0,
    )
    base.update(kw)
    return PositionState(**base)


# --------------------------------------------------------------------- arithmetic


def test_ceil_div() -> None:
    assert ceil_div(7, 2) == 4
    assert ceil_div(-7, 2) == -3
    assert ceil_div(6, 3) == 2
    assert ceil_div(0, 5) == 0
    assert ceil_div(10**30 + 1, 10**15) == 10**15 + 1


def test_trunc_div_rounds_toward_zero() -> None:
    assert trunc_div(7, 2) == 3
    assert trunc_div(-7, 2) == -3  # floor would be -4
    assert trunc_div(-1, 10) == 0
    assert trunc_div(-10, 10) == -1
    assert trunc_div(0, 3) == 0


@pytest.mark.parametrize("b", [0, -1])
def test_division_needs_positive_divisor(b: int) -> None:
    with pytest.raises(ValueError):
        ceil_div(1, b)
    with pytest.raises(ValueError):
        trunc_div(1, b)


@pytest.mark.parametrize("bad", [1.0, Decimal(1), True, "1"])
def test_non_integers_are_refused(bad: Any) -> None:
    """A float or Decimal reaching the money code is a bug, not something to round."""
    with pytest.raises(TypeError):
        pnl(1, bad, 3, 4)
    with pytest.raises(TypeError):
        open_fee(bad)
    with pytest.raises(TypeError):
        state(cr=bad)


# ---------------------------------------------------------------- per-trade amounts


def test_initial_margin_rounds_up() -> None:
    assert initial_margin(1000, 3) == 334
    assert initial_margin(1000, 10) == 100
    assert initial_margin(1, 50) == 1
    assert initial_margin(999, 1000) == 1
    assert initial_margin(10**15, 50) == 2 * 10**13
    with pytest.raises(ValueError):
        initial_margin(1000, 0)
    with pytest.raises(ValueError):
        initial_margin(0, 10)


def test_open_fee_rounds_up() -> None:
    assert open_fee(1) == 1  # 0.0005 rounds up to 1
    assert open_fee(2000) == 1
    assert open_fee(2001) == 2
    assert open_fee(N) == 500_000  # 0.05 % of 1 000 USDC = 0.5 USDC
    assert open_fee(10**15) == 5 * 10**11


def test_pnl_floors_toward_minus_infinity() -> None:
    assert pnl(-1, 1000, 3, 4) == -334  # -333.33 floors to -334, not -333
    assert pnl(1, 1000, 3, 4) == 333
    assert pnl(1, 1000, 3, 2) == -334
    assert pnl(-1, 1000, 3, 2) == 333
    assert pnl(1, 1000, 3, 3) == 0
    # BTC at 65 000 -> 66 300 (+2 %) on 1 000 USDC long: +20 USDC
    assert pnl(1, N, 65_000 * P0, 66_300 * P0) == 20 * 10**6
    assert pnl(-1, N, 65_000 * P0, 66_300 * P0) == -20 * 10**6
    # price extremes
    assert pnl(1, 10**15, 10**13, 1) == 100 - 10**15  # 10^15 × (1 − 10^13) / 10^13
    # -10^15 + 10^15/(10^13 - 1) = -999_999_999_999_899.99999999999 floors to ...900
    assert pnl(1, 10**15, 10**13 - 1, 1) == -999_999_999_999_900
    assert pnl(1, 10**5, 1, 10**13) == 10**5 * (10**13 - 1)


def test_pnl_is_zero_sum_as_one_integer() -> None:
    """The maker's PnL is defined as -pnl, so the two always sum to exactly zero."""
    s = state(side=-1, entry_price=3, notional=1000)
    r = pnl(s.side, s.notional, s.entry_price, 4)
    er, em = equities(s, 4)
    assert (er, em) == (s.cr + r, s.cm - r)
    assert er + em == s.cr + s.cm


def test_funding_due_truncates_toward_zero() -> None:
    assert funding_due(1000, -1, 1, 1) == 0  # -0.001: floor would charge -1
    assert funding_due(1000, 1, 1, 1) == 0
    assert funding_due(1_000_001, -3, 1, 2) == -1  # -1.5 -> -1
    assert funding_due(1_000_001, 3, 1, 2) == 1
    assert funding_due(N, -500, 1800, HOUR) == -250_000  # exact: half a period at -0.05 %
    assert funding_due(N, 10_000, HOUR, HOUR) == 10 * 10**6  # 1 % of 1 000 USDC
    assert funding_due(N, 10_000, 3 * HOUR, HOUR) == 30 * 10**6
    assert funding_due(N, 10_000, 0, HOUR) == 0
    with pytest.raises(ValueError):
        funding_due(N, 10_000, -1, HOUR)


def test_under_maintenance_is_strictly_below_half() -> None:
    assert under_maintenance(49, 100)
    assert not under_maintenance(50, 100)
    assert under_maintenance(1, 3)  # 1 < 1.5
    assert not under_maintenance(2, 3)
    assert under_maintenance(0, 1)
    assert not under_maintenance(0, 0)
    assert under_maintenance(-1, 0)


def test_margin_ratio_ppm() -> None:
    # 10× long at 0.95: equity 50 USDC on a position worth 950 USDC = 5.263 %
    assert margin_ratio_ppm(5 * 10**7, N, P0, 95 * 10**6) == 52_631
    assert margin_ratio_ppm(10**8, N, P0, P0) == 100_000
    assert margin_ratio_ppm(-1, N, P0, P0) == -1  # -0.001 floors to -1
    assert margin_ratio_ppm(0, N, P0, P0) == 0


def test_open_position() -> None:
    s, fee = open_position(-1, N, 65_000 * P0, 10, 5 * 10**7, -1234, 1_700_000_000)
    assert fee == 500_000
    assert s == PositionState(
        side=-1,
        notional=N,
        entry_price=65_000 * P0,
        cr=10**8,
        cm=5 * 10**7,
        imr=10**8,
        imm=5 * 10**7,
        rate_ppm=-1234,
        t_base=1_700_000_000,
        funding_paid=0,
    )
    s, fee = open_position(1, 1000, 3, 3, 0, 0, 0)
    assert (s.cr, s.imr, s.cm, s.imm, fee) == (334, 334, 0, 0, 1)


@pytest.mark.parametrize(
    "args",
    [
        (0, N, P0, 10, 1, 0, 0),  # side
        (2, N, P0, 10, 1, 0, 0),
        (1, 0, P0, 10, 1, 0, 0),  # notional
        (1, N, 0, 10, 1, 0, 0),  # price
        (1, N, P0, 0, 1, 0, 0),  # leverage
        (1, N, P0, 10, -1, 0, 0),  # maker collateral
    ],
)
def test_open_position_rejects_impossible_values(args: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        open_position(*args)


# ------------------------------------------------------------------------- funding


def test_settle_funding_moves_the_accrued_difference() -> None:
    s = state(rate_ppm=10_000, t_base=1000)  # 1 % per hour, requester pays
    half = settle_funding(s, 1000 + 1800, HOUR)
    assert (half.transfer, half.due) == (5 * 10**6, 5 * 10**6)
    assert (half.state.cr, half.state.cm, half.state.funding_paid) == (
        95 * 10**6,
        105 * 10**6,
        5 * 10**6,
    )
    full = settle_funding(half.state, 1000 + HOUR, HOUR)
    assert (full.transfer, full.due) == (5 * 10**6, 10**7)
    assert (full.state.cr, full.state.cm, full.state.funding_paid) == (
        90 * 10**6,
        110 * 10**6,
        10**7,
    )
    again = settle_funding(full.state, 1000 + HOUR, HOUR)
    assert again.transfer == 0 and again.state == full.state


def test_settle_funding_negative_rate_maker_pays() -> None:
    s = state(rate_ppm=-500, t_base=0)
    r = settle_funding(s, 1800, HOUR)
    assert (r.transfer, r.due) == (-250_000, -250_000)
    assert (r.state.cr, r.state.cm, r.state.funding_paid) == (100_250_000, 99_750_000, -250_000)


def test_settle_funding_is_capped_by_the_payers_collateral() -> None:
    s = state(rate_ppm=50_000)  # 5 % per period = 50 USDC per hour on 100 USDC margin
    r = settle_funding(s, 3 * HOUR, HOUR)
    assert (r.due, r.transfer) == (15 * 10**7, 10**8)
    assert (r.state.cr, r.state.cm, r.state.funding_paid) == (0, 2 * 10**8, 10**8)
    # the uncollectable 50 USDC stays owed (due - paid), nothing is invented to pay it
    later = settle_funding(r.state, 4 * HOUR, HOUR)
    assert (later.due, later.transfer, later.state) == (2 * 10**8, 0, r.state)
    # negative rate: capped by the maker's collateral instead
    m = settle_funding(state(rate_ppm=-50_000, cm=3 * 10**7), 2 * HOUR, HOUR)
    assert (m.due, m.transfer) == (-(10**8), -3 * 10**7)
    assert (m.state.cr, m.state.cm, m.state.funding_paid) == (13 * 10**7, 0, -3 * 10**7)


def test_settle_funding_shortfall_is_collected_if_collateral_returns() -> None:
    """paid counts only what was collected, so a debt is not forgiven by a later tick."""
    r = settle_funding(state(rate_ppm=50_000, cr=10**7), HOUR, HOUR)
    assert (r.transfer, r.state.funding_paid) == (10**7, 10**7)
    topped = replace(r.state, cr=10**8)  # hypothetical: the rule does not assume cr stays 0
    again = settle_funding(topped, HOUR, HOUR)
    assert again.transfer == 4 * 10**7


def test_settle_funding_ignores_bad_clocks() -> None:
    s = state(rate_ppm=10_000, t_base=1000)
    assert settle_funding(s, 1000, HOUR).transfer == 0
    assert settle_funding(s, 999, HOUR) == money.FundingResult(state=s, transfer=0, due=0)
    late = settle_funding(s, 1000 + HOUR, HOUR).state
    back = settle_funding(late, 1000 + 1800, HOUR)  # clock went backwards: no refund
    assert back.transfer == 0 and back.state == late


@st.composite
def funding_states(draw: st.DrawFn) -> PositionState:
    n = draw(st.integers(1, 10**15))
    return PositionState(
        side=draw(st.sampled_from([1, -1])),
        notional=n,
        entry_price=draw(st.integers(1, 10**13)),
        cr=draw(st.integers(0, n)),
        cm=draw(st.integers(0, n)),
        imr=draw(st.integers(0, n)),
        imm=draw(st.integers(0, n)),
        rate_ppm=draw(st.integers(-50_000, 50_000)),
        t_base=draw(st.integers(0, 2 * 10**9)),
        funding_paid=0,
    )


@settings(max_examples=300, deadline=None)
@given(
    s=funding_states(),
    period=st.sampled_from([1, 7, 3600, 28_800]),
    offsets=st.lists(st.integers(0, 10**7), min_size=1, max_size=6),
)
def test_funding_catch_up_is_independent_of_tick_times(
    s: PositionState, period: int, offsets: list[int]
) -> None:
    """Settling at t1 < t2 < ... < tk moves exactly what one settlement at tk moves."""
    times = sorted(s.t_base + o for o in offsets)
    cur, total = s, 0
    for t in times:
        r = settle_funding(cur, t, period)
        total += r.transfer
        cur = r.state
        assert cur.cr >= 0 and cur.cm >= 0
        assert cur.cr + cur.cm == s.cr + s.cm
    once = settle_funding(s, times[-1], period)
    assert total == once.transfer
    assert cur == once.state
    # never more than accrued, in the rate's direction
    assert abs(total) <= abs(once.due) and total * s.rate_ppm >= 0


@settings(max_examples=200, deadline=None)
@given(s=funding_states(), t1=st.integers(0, 10**6), t2=st.integers(0, 10**6))
def test_funding_two_step_equals_one_step(s: PositionState, t1: int, t2: int) -> None:
    t1, t2 = sorted((t1, t2))
    a = settle_funding(s, s.t_base + t1, 28_800)
    b = settle_funding(a.state, s.t_base + t2, 28_800)
    c = settle_funding(s, s.t_base + t2, 28_800)
    assert a.transfer + b.transfer == c.transfer
    assert b.state == c.state


# -------------------------------------------------------------------------- margins


def test_liquidatable_side_at_ten_x() -> None:
    """10×/10×: the requester goes under below 0.95, the maker above 1.05 (5 % moves)."""
    s = state()
    assert liquidatable_side(s, 95 * 10**6) is None  # Er = 50 USDC = exactly IM/2
    assert liquidatable_side(s, 95 * 10**6 - 1) == REQUESTER  # Er = 49.99999 USDC
    assert liquidatable_side(s, 105 * 10**6) is None
    assert liquidatable_side(s, 105 * 10**6 + 1) == MAKER
    assert liquidatable_side(s, P0) is None
    short = replace(s, side=-1)
    assert liquidatable_side(short, 95 * 10**6 - 1) == MAKER
    assert liquidatable_side(short, 105 * 10**6 + 1) == REQUESTER
    assert liquidation_price_bounds(s) == (95 * 10**6 - 1, 105 * 10**6 + 1)
    assert liquidation_price_bounds(short) == (95 * 10**6 - 1, 105 * 10**6 + 1)


def test_liquidatable_side_when_both_are_under() -> None:
    """Only dust can be under on both sides; then the PnL loser goes (requester on a tie)."""
    s = PositionState(1, 100, 100, 1, 1, 10, 10, 0, 0, 0)
    assert liquidatable_side(s, 100) == REQUESTER  # pnl == 0
    assert liquidatable_side(s, 101) == MAKER  # pnl == +1
    assert liquidatable_side(s, 99) == REQUESTER  # pnl == -1
    low, high = liquidation_price_bounds(s)
    assert (low, high) == (103, 97)  # overlapping: every price is liquidatable


def test_liquidatable_side_after_funding_drain() -> None:
    drained = settle_funding(state(rate_ppm=50_000), 3 * HOUR, HOUR).state
    assert (drained.cr, drained.cm) == (0, 2 * 10**8)
    assert liquidatable_side(drained, P0) == REQUESTER
    # the requester's PnL would have to reach IMr/2 = 50 USDC (P >= 1.05) to be safe again,
    # at which point the maker (Em = 150 USDC) is still fine
    assert liquidatable_side(drained, 105 * 10**6 - 1) == REQUESTER
    assert liquidatable_side(drained, 105 * 10**6) is None
    assert liquidation_price_bounds(drained) == (105 * 10**6 - 1, 115 * 10**6 + 1)


def test_liquidation_price_bounds_stay_in_64_bits() -> None:
    """Thresholds beyond any representable price collapse to BOUND_MAX / None."""
    # 1 micro-USDC long against 10^9 USDC of maker collateral: the maker would need the
    # price to rise ~10^15-fold, beyond 2^63 - 1
    rich_maker = PositionState(1, 1, 10**13, 1, 10**15, 1, 10**15, 0, 0, 0)
    assert liquidation_price_bounds(rich_maker) == (10**13 - 1, None)
    # the same maker drained to nothing with a huge margin: every price is liquidatable
    drained = replace(rich_maker, side=-1, cm=0, cr=10**15)
    low, high = liquidation_price_bounds(drained)
    assert low == money.BOUND_MAX and liquidatable_side(drained, money.BOUND_MAX) == MAKER
    assert high is None


@st.composite
def any_states(draw: st.DrawFn) -> PositionState:
    """Arbitrary (not necessarily reachable) states: the bounds must hold for all of them."""
    n = draw(st.integers(1, 10**15))
    cap = draw(st.sampled_from([10, 10**6, 2 * n]))
    return PositionState(
        side=draw(st.sampled_from([1, -1])),
        notional=n,
        entry_price=draw(st.one_of(st.integers(1, 1000), st.integers(1, 10**13))),
        cr=draw(st.integers(0, cap)),
        cm=draw(st.integers(0, cap)),
        imr=draw(st.integers(0, cap)),
        imm=draw(st.integers(0, cap)),
        rate_ppm=0,
        t_base=0,
        funding_paid=0,
    )


@settings(max_examples=500, deadline=None)
@given(s=any_states(), data=st.data())
def test_liquidation_price_bounds_are_exact(s: PositionState, data: st.DataObject) -> None:
    low, high = liquidation_price_bounds(s)
    assert high is not None  # prices here are far below BOUND_MAX
    assert high >= 1 and (low is None or low >= 1)
    # at the bounds: liquidatable; one unit inside: the bound's own side is safe
    falls = REQUESTER if s.side == 1 else MAKER  # the side a falling price hurts

    def under(side: str, price: int) -> bool:
        er, em = equities(s, price)
        return under_maintenance(er, s.imr) if side == REQUESTER else under_maintenance(em, s.imm)

    rises = MAKER if falls == REQUESTER else REQUESTER
    assert liquidatable_side(s, high) is not None and under(rises, high)
    if high > 1:
        assert not under(rises, high - 1)
    if low is not None:
        assert liquidatable_side(s, low) is not None and under(falls, low)
        assert not under(falls, low + 1)
    else:
        assert not under(falls, 1)
    # strictly between: nothing is liquidatable
    lo = (low or 0) + 1
    if lo < high:
        p = data.draw(st.one_of(st.integers(lo, high - 1), st.sampled_from([lo, high - 1])))
        assert liquidatable_side(s, p) is None
    # outside: always liquidatable
    if low is not None:
        assert liquidatable_side(s, data.draw(st.integers(1, low))) is not None
    assert liquidatable_side(s, data.draw(st.integers(high, high + 10**14))) is not None


# --------------------------------------------------------------------------- close


def test_partial_close_then_close() -> None:
    s = state(cm=2 * 10**8, imm=2 * 10**8, rate_ppm=10_000)  # maker at 5×; 1 %/h funding
    # close 30 % at 1.10 half an hour in: funding 5 USDC first, then PnL on 30 %
    c1 = close_position(s, 30, 110 * 10**6, 1800, HOUR)
    assert (c1.funding.transfer, c1.funding.state.cr, c1.funding.state.cm) == (
        5 * 10**6,
        95 * 10**6,
        205 * 10**6,
    )
    assert c1.closed_notional == 3 * 10**8
    assert c1.pnl == 30 * 10**6  # 10 % of 300 USDC
    # pool = floor(95e6 × 0.3) + floor(205e6 × 0.3) = 28.5 + 61.5 USDC
    assert (c1.requester_release, c1.maker_release) == (58_500_000, 31_500_000)
    assert c1.remaining == PositionState(
        side=1,
        notional=7 * 10**8,
        entry_price=P0,
        cr=66_500_000,
        cm=143_500_000,
        imr=7 * 10**7,
        imm=14 * 10**7,
        rate_ppm=10_000,
        t_base=1800,
        funding_paid=0,
    )
    # close the rest an hour later at 0.95: funding restarts from t_base = 1800 on 700 USDC
    c2 = close_position(c1.remaining, 100, 95 * 10**6, 1800 + HOUR, HOUR)
    assert (c2.funding.transfer, c2.funding.due) == (7 * 10**6, 7 * 10**6)
    assert c2.closed_notional == 7 * 10**8
    assert c2.pnl == -35 * 10**6
    assert (c2.requester_release, c2.maker_release) == (24_500_000, 185_500_000)
    assert c2.remaining is None
    # net: requester -17 USDC = funding -12 + pnl (+30 - 35); the maker the opposite
    assert c1.requester_release + c2.requester_release - s.cr == -17 * 10**6
    assert c1.maker_release + c2.maker_release - s.cm == 17 * 10**6


def test_close_parts_floor_and_remaining_keeps_the_rest() -> None:
    s = PositionState(-1, 1000, 3, 5, 7, 5, 7, 0, 0, 0)
    c = close_position(s, 50, 4, 0, HOUR)
    assert c.pnl == -167  # floor(-1000 × 50 × 1 / 300) = floor(-166.67)
    assert c.closed_notional == 500
    assert (c.requester_release, c.maker_release) == (0, 5)  # clamp(2 - 167, 0, 2 + 3)
    assert c.remaining is not None
    r = c.remaining
    assert (r.notional, r.cr, r.cm, r.imr, r.imm) == (500, 3, 4, 3, 4)


def test_close_release_is_clamped_to_the_pool() -> None:
    s = state()
    win = close_position(s, 100, 2 * P0, 0, HOUR)  # pnl +1000 USDC, pool only 200
    assert (win.pnl, win.requester_release, win.maker_release) == (10**9, 2 * 10**8, 0)
    lose = close_position(s, 100, P0 // 2, 0, HOUR)  # pnl -500 USDC
    assert (lose.pnl, lose.requester_release, lose.maker_release) == (-5 * 10**8, 0, 2 * 10**8)
    one = close_position(s, 1, P0, 0, HOUR)
    assert (one.closed_notional, one.requester_release, one.maker_release) == (10**7, 10**6, 10**6)


def test_close_rejects_bad_pct() -> None:
    for pct in (0, 101, -5):
        with pytest.raises(ValueError):
            close_position(state(), pct, P0, 0, HOUR)


# --------------------------------------------------------------------- liquidation


def test_liquidation_reward_capped_by_remaining_collateral() -> None:
    # 10× long at 0.94: pnl -60 USDC; Er = 40 < 50. The maker takes 60, the liquidator the
    # requester's last 40 USDC (5 % of N would be 50)
    r = liquidate(state(), 94 * 10**6, 0, HOUR)
    assert (r.side, r.pnl, r.transfer, r.reward) == (REQUESTER, -6 * 10**7, -6 * 10**7, 4 * 10**7)
    assert (r.requester_release, r.maker_release) == (0, 16 * 10**7)


def test_liquidation_reward_uncapped_at_low_leverage() -> None:
    # 2× requester (Cr = 500 USDC) against a 1× maker, liquidated at 0.74 (pnl -260)
    s = state(cr=5 * 10**8, imr=5 * 10**8, cm=N, imm=N)
    assert liquidation_price_bounds(s)[0] == 75 * 10**6 - 1
    r = liquidate(s, 74 * 10**6, 0, HOUR)
    assert (r.side, r.transfer, r.reward) == (REQUESTER, -26 * 10**7, 5 * 10**7)
    assert (r.requester_release, r.maker_release) == (19 * 10**7, 126 * 10**7)


def test_liquidation_of_the_maker() -> None:
    r = liquidate(state(), 106 * 10**6, 0, HOUR)  # pnl +60 USDC, Em = 40
    assert (r.side, r.pnl, r.transfer, r.reward) == (MAKER, 6 * 10**7, 6 * 10**7, 4 * 10**7)
    assert (r.requester_release, r.maker_release) == (16 * 10**7, 0)


def test_liquidation_with_bad_debt_pays_no_reward() -> None:
    r = liquidate(state(), 80 * 10**6, 0, HOUR)  # pnl -200 USDC, Cr only 100
    assert (r.transfer, r.reward, r.requester_release, r.maker_release) == (
        -(10**8),
        0,
        0,
        2 * 10**8,
    )


def test_liquidation_by_funding_drain_with_positive_pnl() -> None:
    """A requester drained by funding is liquidated while winning on price: its PnL is paid
    to it by the maker first, and the liquidator's reward comes out of that."""
    drained = settle_funding(state(rate_ppm=50_000), 3 * HOUR, HOUR).state
    assert liquidatable_side(drained, 101 * 10**6) == REQUESTER
    r = liquidate(drained, 101 * 10**6, 3 * HOUR, HOUR)
    assert r.funding.transfer == 0  # still owes 50 USDC, nothing left to collect
    assert (r.side, r.pnl, r.transfer, r.reward) == (REQUESTER, 10**7, 10**7, 10**7)
    assert (r.requester_release, r.maker_release) == (0, 19 * 10**7)
    assert r.requester_release + r.maker_release + r.reward == drained.cr + drained.cm


def test_liquidation_settles_funding_first() -> None:
    s = state(rate_ppm=10_000)
    r = liquidate(s, 94 * 10**6, HOUR, HOUR)  # 10 USDC funding, then pnl -60
    assert (r.funding.transfer, r.funding.state.cr, r.funding.state.cm) == (
        10**7,
        9 * 10**7,
        11 * 10**7,
    )
    assert (r.transfer, r.reward) == (-6 * 10**7, 3 * 10**7)
    assert (r.requester_release, r.maker_release) == (0, 17 * 10**7)


def test_liquidation_eligibility_is_judged_on_the_given_state() -> None:
    s = state(rate_ppm=50_000)
    assert liquidatable_side(s, P0) is None
    with pytest.raises(ValueError):
        liquidate(s, P0, 3 * HOUR, HOUR)  # unsettled funding would drain it: caller settles


@settings(max_examples=300, deadline=None)
@given(s=any_states(), price=st.integers(1, 10**13), dt=st.integers(0, 10**6))
def test_liquidation_conserves_money(s: PositionState, price: int, dt: int) -> None:
    s = replace(s, rate_ppm=50_000 if dt % 2 else -50_000)
    if liquidatable_side(s, price) is None:
        with pytest.raises(ValueError):
            liquidate(s, price, dt, HOUR)
        return
    r = liquidate(s, price, dt, HOUR)
    assert min(r.requester_release, r.maker_release, r.reward) >= 0
    assert r.requester_release + r.maker_release + r.reward == s.cr + s.cm
    assert r.reward <= s.notional * 50_000 // 10**6
    assert abs(r.transfer) <= abs(r.pnl) and r.transfer * r.pnl >= 0


# ------------------------------------------------------------------------- vectors


def test_vectors_file_matches_the_generator() -> None:
    """tests/vectors/money.json must be exactly what `python -m perpd.money_vectors` writes."""
    committed = money_vectors.VECTORS_PATH.read_text()
    assert committed == money_vectors.render(), "stale: run python -m perpd.money_vectors"


def _state_in(d: dict[str, int]) -> PositionState:
    return PositionState(**d)


def _replay(section: str, inputs: dict[str, Any]) -> Any:
    """Recompute one vector from its JSON inputs, as a port of the rules would."""
    if section in ("initial_margin", "open_fee", "pnl", "funding_due", "margin_ratio_ppm"):
        return getattr(money, section)(**inputs)
    s = _state_in(inputs["state"]) if "state" in inputs else None
    assert s is not None
    if section == "settle_funding":
        return money_vectors._funding(settle_funding(s, inputs["now"], inputs["period_s"]))
    if section == "liquidatable_side":
        return liquidatable_side(s, inputs["price"])
    if section == "close_position":
        args = (inputs["pct"], inputs["price"], inputs["now"], inputs["period_s"])
        return money_vectors._close(close_position(s, *args))
    if section == "liquidate":
        try:
            r = liquidate(s, inputs["price"], inputs["now"], inputs["period_s"])
        except ValueError:
            return {"error": "not_liquidatable"}
        return money_vectors._liquidation(r)
    if section == "liquidation_price_bounds":
        low, high = liquidation_price_bounds(s)
        return {"low": low, "high": high}
    raise AssertionError(section)


def test_vectors_replay_from_json() -> None:
    doc = json.loads(money_vectors.VECTORS_PATH.read_text())
    assert doc["version"] == 1 and isinstance(doc["description"], str)
    sections = [k for k in doc if k not in ("version", "description")]
    assert set(sections) >= {
        "initial_margin",
        "open_fee",
        "pnl",
        "funding_due",
        "settle_funding",
        "close_position",
        "liquidate",
        "liquidation_price_bounds",
    }
    for section in sections:
        assert len(doc[section]) >= 25, section
        for case in doc[section]:
            assert _replay(section, case["inputs"]) == case["expected"], (section, case)


def test_vectors_cover_the_edges() -> None:
    doc = json.loads(money_vectors.VECTORS_PATH.read_text())
    pcts = {c["inputs"]["pct"] for c in doc["close_position"]}
    assert {1, 100} <= pcts
    assert any(c["inputs"]["rate_ppm"] < 0 and c["expected"] for c in doc["funding_due"])
    assert any(c["inputs"]["notional"] == 10**15 for c in doc["pnl"])
    assert {"requester", "maker", "not_liquidatable"} <= {
        c["expected"].get("side", c["expected"].get("error")) for c in doc["liquidate"]
    }
    bounds = [c["expected"] for c in doc["liquidation_price_bounds"]]
    assert any(b["low"] is None for b in bounds) and any(b["high"] is None for b in bounds)
    assert money_vectors.main(["--check"]) == 0
