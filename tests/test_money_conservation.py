"""Conservation of money across any sequence of operations (SPEC §4, last rule).

A hypothesis state machine drives a small ledger the way the daemon does (free and
locked balances per agent, a fee account, deposit and withdrawal counters) through
deposits, withdrawals, opens, funding settlements, partial closes and liquidations at any
prices and sizes. Each step moves money only by the amounts ``perpd.money`` returns, and
after every step ``deposits − withdrawals == Σ(free + locked) + fees`` must hold to the
micro-USDC, with no balance negative and ``locked`` equal to the open positions'
collateral. Rounding that created or destroyed even one micro-USDC would break it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from perpd import money
from perpd.money import PositionState

TRADERS = ("alice", "bob", "carol")
LIQUIDATOR = "keeper"
AGENTS = (*TRADERS, LIQUIDATOR)
T0 = 1_700_000_000
MAX_PRICE = 10**13
MAX_SIZE = 10**15

sizes = st.one_of(st.integers(1, 1000), st.integers(1, MAX_SIZE), st.just(MAX_SIZE))
prices = st.one_of(st.integers(1, 1000), st.integers(1, MAX_PRICE), st.just(MAX_PRICE))
rates = st.one_of(st.integers(-50_000, 50_000), st.sampled_from([-50_000, 0, 50_000]))
traders = st.sampled_from(TRADERS)


@dataclass
class Open:
    requester: str
    maker: str
    state: PositionState


class Ledger(RuleBasedStateMachine):
    """The daemon's bookkeeping in miniature, with perpd.money doing all the arithmetic."""

    def __init__(self) -> None:
        super().__init__()
        self.free = dict.fromkeys(AGENTS, 0)
        self.locked = dict.fromkeys(AGENTS, 0)
        self.fees = 0
        self.deposits = 0
        self.withdrawals = 0
        self.positions: dict[int, Open] = {}
        self.next_id = 0
        self.now = T0
        self.period = 28_800

    @initialize(period=st.sampled_from([1, 60, 3600, 28_800]))
    def choose_period(self, period: int) -> None:
        self.period = period

    # ------------------------------------------------------------------ helpers

    def _deposit(self, agent: str, amount: int) -> None:
        self.free[agent] += amount
        self.deposits += amount

    def _apply_funding(self, pos: Open, r: money.FundingResult) -> None:
        """A settlement moves money between the two locked collaterals only."""
        self.locked[pos.requester] -= r.transfer
        self.locked[pos.maker] += r.transfer
        pos.state = r.state

    def _pick(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from(sorted(self.positions)), label="position")

    def _price_for(self, data: st.DataObject, s: PositionState) -> int:
        """Any price, a price near entry, or one at the edge of liquidation."""
        p0 = s.entry_price
        near = st.integers(max(1, p0 - p0 // 5), p0 + p0 // 5)
        low, high = money.liquidation_price_bounds(s)
        edges = [p0] + ([] if high is None else [high - 1, high, high + 1])
        edges += [] if low is None else [low - 1, low, low + 1]
        edge = st.sampled_from([max(1, min(p, MAX_PRICE)) for p in edges])
        return data.draw(st.one_of(prices, near, edge), label="price")

    # -------------------------------------------------------------------- rules

    @rule(agent=st.sampled_from(AGENTS), amount=sizes)
    def deposit(self, agent: str, amount: int) -> None:
        self._deposit(agent, amount)

    @rule(agent=st.sampled_from(AGENTS), pct=st.integers(0, 100))
    def withdraw(self, agent: str, pct: int) -> None:
        amount = self.free[agent] * pct // 100
        self.free[agent] -= amount
        self.withdrawals += amount

    @rule(
        requester=traders,
        maker=traders,
        side=st.sampled_from([1, -1]),
        notional=sizes,
        price=prices,
        leverage=st.integers(1, 50),
        maker_collateral=st.one_of(st.integers(0, 1000), sizes),
        rate=rates,
        top_up=st.booleans(),
    )
    def open(
        self,
        requester: str,
        maker: str,
        side: int,
        notional: int,
        price: int,
        leverage: int,
        maker_collateral: int,
        rate: int,
        top_up: bool,
    ) -> None:
        if maker == requester:
            maker = TRADERS[(TRADERS.index(requester) + 1) % len(TRADERS)]
        state, fee = money.open_position(
            side, notional, price, leverage, maker_collateral, rate, self.now
        )
        need = state.cr + fee
        if top_up:  # the agents deposit what they lack first
            self._deposit(requester, max(0, need - self.free[requester]))
            self._deposit(maker, max(0, state.cm - self.free[maker]))
        if self.free[requester] < need or self.free[maker] < state.cm:
            return  # refused: insufficient_collateral, nothing moves
        self.free[requester] -= need
        self.locked[requester] += state.cr
        self.fees += fee
        self.free[maker] -= state.cm
        self.locked[maker] += state.cm
        self.positions[self.next_id] = Open(requester, maker, state)
        self.next_id += 1

    @rule(dt=st.one_of(st.integers(0, 100), st.integers(0, 10**7)), settle=st.booleans())
    def advance_time(self, dt: int, settle: bool) -> None:
        """The funding scheduler may run on time, late, or not at all for a while."""
        self.now += dt
        if settle:
            for pos in self.positions.values():
                self._apply_funding(pos, money.settle_funding(pos.state, self.now, self.period))

    @precondition(lambda self: self.positions)
    @rule(data=st.data(), pct=st.one_of(st.integers(1, 100), st.sampled_from([1, 50, 100])))
    def close(self, data: st.DataObject, pct: int) -> None:
        pid = self._pick(data)
        pos = self.positions[pid]
        r = money.close_position(
            pos.state, pct, self._price_for(data, pos.state), self.now, self.period
        )
        self._apply_funding(pos, r.funding)
        settled = r.funding.state
        kept_cr = r.remaining.cr if r.remaining else 0
        kept_cm = r.remaining.cm if r.remaining else 0
        pool = (settled.cr - kept_cr) + (settled.cm - kept_cm)
        assert r.requester_release + r.maker_release == pool
        self.locked[pos.requester] -= settled.cr - kept_cr
        self.locked[pos.maker] -= settled.cm - kept_cm
        self.free[pos.requester] += r.requester_release
        self.free[pos.maker] += r.maker_release
        if r.remaining is None:
            del self.positions[pid]
        else:
            pos.state = r.remaining

    @precondition(lambda self: self.positions)
    @rule(data=st.data(), keeper_is_daemon=st.booleans(), settle_first=st.booleans())
    def liquidate(self, data: st.DataObject, keeper_is_daemon: bool, settle_first: bool) -> None:
        pid = self._pick(data)
        pos = self.positions[pid]
        if settle_first:  # the watcher's normal path: settle, then judge eligibility
            self._apply_funding(pos, money.settle_funding(pos.state, self.now, self.period))
        price = self._price_for(data, pos.state)
        if money.liquidatable_side(pos.state, price) is None:
            return  # not_liquidatable
        before = pos.state
        r = money.liquidate(before, price, self.now, self.period)
        self._apply_funding(pos, r.funding)
        settled = r.funding.state
        assert r.requester_release + r.maker_release + r.reward == before.cr + before.cm
        self.locked[pos.requester] -= settled.cr
        self.locked[pos.maker] -= settled.cm
        self.free[pos.requester] += r.requester_release
        self.free[pos.maker] += r.maker_release
        if keeper_is_daemon:
            self.fees += r.reward
        else:
            self.free[LIQUIDATOR] += r.reward
        del self.positions[pid]

    # --------------------------------------------------------------- invariants

    @invariant()
    def money_is_conserved(self) -> None:
        held = sum(self.free.values()) + sum(self.locked.values()) + self.fees
        assert held == self.deposits - self.withdrawals

    @invariant()
    def nothing_is_negative(self) -> None:
        assert all(v >= 0 for v in self.free.values())
        assert all(v >= 0 for v in self.locked.values())
        assert self.fees >= 0
        for pos in self.positions.values():
            s = pos.state
            assert min(s.cr, s.cm, s.imr, s.imm) >= 0 and s.notional >= 1

    @invariant()
    def locked_is_the_open_collateral(self) -> None:
        expected = dict.fromkeys(AGENTS, 0)
        for pos in self.positions.values():
            expected[pos.requester] += pos.state.cr
            expected[pos.maker] += pos.state.cm
        assert expected == self.locked


TestLedger = Ledger.TestCase
TestLedger.settings = settings(max_examples=400, stateful_step_count=50, deadline=None)
