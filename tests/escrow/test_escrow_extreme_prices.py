"""Prices at SPEC §2's bounds: a position opened through `lock_position` at BTC
0.00000001 (price 1), then closed or liquidated at 10^16 (10^16 × the entry),
where the price PnL (≈ N × 10^16) is far past 64 bits. What moves is exact and
small: the winner takes at most the pool, the loser's release saturates at 0,
as perpd.money says to the micro-USDC, and the vault still balances."""

import pytest
from escrow_harness import BTC, PERIOD, USDC, Escrow, Trade
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd import bounds, money

LOW, HIGH = bounds.MIN_PRICE, bounds.MAX_PRICE
N = 10**12  # 1,000,000 USDC
COLLATERAL = 100_000 * USDC  # the maker's, = the requester's IMr at 10x
FUNDS = 200_000 * USDC


@pytest.fixture
def big(initialized: Escrow) -> Trade:
    """Alice asks for N of BTC at 10x with BTC at its lowest price; Bob quotes it."""
    alice, _ = initialized.funded_agent(FUNDS, seed=1)
    bob, _ = initialized.funded_agent(FUNDS, seed=2)
    initialized.set_price(BTC, LOW)
    return Trade(requester=alice, maker=bob, size=N, leverage=10, collateral=COLLATERAL)


def books(escrow: Escrow, *agents: Keypair) -> list[tuple[int, int]]:
    """(free, locked) of each agent's collateral account."""
    out = []
    for agent in agents:
        c = escrow.collateral(agent.pubkey())
        out.append((c.free, c.locked))
    return out


def moved(escrow: Escrow, big: Trade, side: int) -> tuple[Pubkey, money.PositionState]:
    """The position opened at price 1, with BTC now at 10^16 and an hour of funding due."""
    address = escrow.open(big.but(side=side))
    assert escrow.position(address).entry_price == LOW
    escrow.set_time(escrow.now + 3_600)
    escrow.set_price(BTC, HIGH)
    return address, escrow.money_state(address)


@pytest.mark.parametrize("side", [0, 1], ids=["long", "short"])
@pytest.mark.parametrize("pct", [50, 100], ids=["half", "full"])
def test_a_close_at_the_top_releases_what_perpd_money_says(
    initialized: Escrow, big: Trade, side: int, pct: int
) -> None:
    escrow = initialized
    address, before = moved(escrow, big, side)
    (a_free, a_locked), (b_free, b_locked) = books(escrow, big.requester, big.maker)
    # When Alice closes pct % at 10^16
    outcome = escrow.close(big.requester, address, pct)
    # Then it is not refused, and every account holds perpd.money's result
    assert outcome.ok, outcome.logs
    want = money.close_position(before, pct, HIGH, escrow.now, PERIOD)
    assert abs(want.pnl) > 2**63  # the PnL itself does not fit 64 bits
    s = want.funding.state
    pool = s.cr * pct // 100 + s.cm * pct // 100
    winner_release, loser_release = (
        (want.requester_release, want.maker_release)
        if side == 0
        else (want.maker_release, want.requester_release)
    )
    assert (winner_release, loser_release) == (pool, 0)
    imr_left = 0 if want.remaining is None else want.remaining.imr
    imm_left = 0 if want.remaining is None else want.remaining.imm
    assert books(escrow, big.requester, big.maker) == [
        (a_free + want.requester_release, a_locked - before.imr + imr_left),
        (b_free + want.maker_release, b_locked - before.imm + imm_left),
    ]
    if want.remaining is None:
        assert escrow.position(address).status == 1
    else:
        assert escrow.money_state(address) == want.remaining
        # and the rest closes too, at the same price
        rest = money.close_position(want.remaining, 100, HIGH, escrow.now, PERIOD)
        assert escrow.close(big.requester, address, 100).ok
        assert books(escrow, big.requester, big.maker) == [
            (a_free + want.requester_release + rest.requester_release, a_locked - before.imr),
            (b_free + want.maker_release + rest.maker_release, b_locked - before.imm),
        ]
    # nothing created or lost: both parties got back exactly the collateral on the table
    (a_after, _), (b_after, _) = books(escrow, big.requester, big.maker)
    assert (a_after - a_free) + (b_after - b_free) == before.cr + before.cm
    escrow.assert_conserved()


@pytest.mark.parametrize("side", [0, 1], ids=["long", "short"])
def test_a_liquidation_at_the_top_splits_what_perpd_money_says(
    initialized: Escrow, big: Trade, side: int
) -> None:
    escrow = initialized
    address, before = moved(escrow, big, side)
    carol, _ = escrow.funded_agent(1 * USDC, seed=3)
    parties = (big.requester, big.maker, carol)
    (a_free, a_locked), (b_free, b_locked), (c_free, c_locked) = books(escrow, *parties)
    fees = escrow.config_state().accrued_fees
    # When Carol liquidates it at 10^16
    ix = escrow.liquidate_ix(carol.pubkey(), address, escrow.collateral_address(carol.pubkey()))
    outcome = escrow.send(ix, carol)
    # Then the loser is liquidated and every account holds perpd.money's split
    assert outcome.ok, outcome.logs
    want = money.liquidate(before, HIGH, escrow.now, PERIOD)
    assert abs(want.pnl) > 2**63
    assert want.side == (money.MAKER if side == 0 else money.REQUESTER)
    s = want.funding.state
    # the loser's whole collateral moved to the winner; none is left for a reward
    assert want.transfer == (s.cm if side == 0 else -s.cr) and want.reward == 0
    assert books(escrow, *parties) == [
        (a_free + want.requester_release, a_locked - before.imr),
        (b_free + want.maker_release, b_locked - before.imm),
        (c_free + want.reward, c_locked),
    ]
    assert escrow.config_state().accrued_fees == fees
    p = escrow.position(address)
    assert (p.status, p.cr, p.cm) == (2, 0, 0)
    assert want.requester_release + want.maker_release + want.reward == before.cr + before.cm
    escrow.assert_conserved()
