"""The liquidation index's payer's bound counts its funding ahead (`perpd.liq_bounds`):
over many ticks every stored bound stays wider than the exact one, so the watcher's
candidates hold every position a price makes liquidatable, while each tick rewrites
only about one payer's bound in HORIZON."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from perpd import liq_bounds, money
from perpd.nursery import funding
from perpd.store import connect
from perpd.store import queries as q
from tests.test_funding_scale import PERIOD, PRICE, T, build, ctx, untimed_units

__all__ = ["untimed_units"]  # the autouse fixture: units end on size, not the machine

TICKS = 2 * liq_bounds.HORIZON + 1


def _wider(held: int | None, exact: int | None, low: bool) -> bool:
    if exact is None:
        return True
    if held is None:
        return False
    return held >= exact if low else held <= exact


def test_until_is_a_boundary_of_the_positions_phase_one_to_horizon_periods_ahead() -> None:
    rnd = random.Random(3)
    for i in range(2_000):
        pid = f"pos_{i:06d}"
        now = rnd.randrange(0, 10**9)
        until = liq_bounds.until_of(pid, now, PERIOD)
        k = now // PERIOD
        assert (
            until % PERIOD == 0 and (k + 1) * PERIOD <= until <= (k + liq_bounds.HORIZON) * PERIOD
        )
        assert liq_bounds.until_of(pid, until, PERIOD) == until + liq_bounds.HORIZON * PERIOD


def test_a_state_written_now_stores_the_payers_bound_as_paid_to_until() -> None:
    rnd = random.Random(5)
    seen = {0: 0, 1: 0}
    for i in range(500):
        n = rnd.randrange(10, 50_000) * 1_000_000
        state, _fee = money.open_position(
            rnd.choice((1, -1)),
            n,
            PRICE,
            rnd.choice((2, 10, 50)),
            rnd.choice((n // 50, n // 2)),
            rnd.choice((-900_000, -300, 250, 5_000)),
            T,
        )
        low, high, until = liq_bounds.stored(state, f"p{i}", T, PERIOD)
        exact = money.liquidation_price_bounds(state)
        paid = money.settle_funding(state, until, PERIOD).state  # what `until` counts
        which = liq_bounds.payer_bound(state.side, state.rate_ppm)
        held = (low, high)
        assert held[which] == money.liquidation_price_bounds(paid)[which]
        assert held[1 - which] == exact[1 - which]
        assert _wider(low, exact[0], low=True) and _wider(high, exact[1], low=False)
        seen[which] += 1
    assert seen[0] and seen[1]


def _columns(conn: sqlite3.Connection) -> dict[str, tuple[int | None, int | None, int | None]]:
    rows = conn.execute("SELECT position_id, liq_low, liq_high, bound_until FROM positions")
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def test_over_many_ticks_the_bounds_stay_wide_and_few_are_rewritten(tmp_path: Path) -> None:
    build(tmp_path / "t.db", 900)
    conn = connect(tmp_path / "t.db")
    rewrites: list[float] = []
    for tick in range(TICKS):
        now = T + tick * PERIOD
        before = _columns(conn)
        conn.execute("BEGIN IMMEDIATE")
        while funding._funding_unit(conn, ctx(now), lambda: False)[1]:
            pass
        conn.execute("COMMIT")
        after = _columns(conn)
        positions = q.positions_funding_due(conn, 1 << 40, 1 << 20)
        payers = [p for p in positions if p.state.rate_ppm]
        changed = sum(before[p.position_id] != after[p.position_id] for p in payers)
        rewrites.append(changed / len(payers))
        for p in positions:
            low, high, _until = after[p.position_id]
            exact = money.liquidation_price_bounds(p.state)
            assert _wider(low, exact[0], low=True) and _wider(high, exact[1], low=False)
        edges = sorted({b for p in positions for b in money.liquidation_price_bounds(p.state) if b})
        met = 0
        for price in [*edges[:: max(1, len(edges) // 30)], PRICE // 3, PRICE, 3 * PRICE]:
            candidates = {c.position_id for c in q.liquidation_candidates(conn, "BTC-PERP", price)}
            under = {p.position_id for p in positions if money.liquidatable_side(p.state, price)}
            assert under <= candidates
            met += len(under)
        assert met > 0
        assert q.verify(conn) == []
    # the first tick also rewrites the rows written before migration 11 (half of them);
    # afterwards about one payer in HORIZON (fewer: a payer whose collateral is gone
    # moves nothing), where the exact rule rewrote every payer's at every tick
    assert rewrites[0] > max(rewrites[1:]), rewrites
    assert all(0.1 < r < 0.4 for r in rewrites[1:]), rewrites
