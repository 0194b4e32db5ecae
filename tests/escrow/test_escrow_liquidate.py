"""`liquidate`: anyone liquidates a position one side of which is under
maintenance, in full, with SPEC §4's split; the reward goes to the collateral
account the liquidator names (or to the fee account, for the router's keeper),
never to the liquidated side."""

import pytest
from escrow_harness import BTC, PERIOD, PRICE, USDC, Escrow, Trade, without_signature
from solders.pubkey import Pubkey

from perpd import money

# The program's own units: the Pyth read, the maintenance check and the split.
LIQUIDATE_CU_CEILING = 6_000
# 10x long at 60,000: the requester is under maintenance below ~57,000, the
# maker (1,000 USDC on 10,000) above ~63,000.
CRASH, RALLY = 56_000 * 10**8, 64_000 * 10**8


@pytest.fixture
def position(initialized: Escrow, trade: Trade) -> Pubkey:
    address = initialized.open(trade)
    initialized.set_time(initialized.now + PERIOD // 4)
    return address


@pytest.fixture
def carol(initialized: Escrow):
    """A liquidator with a collateral account of her own."""
    keypair, _ = initialized.funded_agent(1 * USDC, seed=3)
    return keypair


def test_a_healthy_position_is_not_liquidated(initialized: Escrow, position: Pubkey, carol) -> None:
    escrow = initialized
    # Given BTC still at the entry price: both sides above maintenance
    escrow.set_price(BTC, PRICE)
    # When Carol liquidates
    ix = escrow.liquidate_ix(carol.pubkey(), position, escrow.collateral_address(carol.pubkey()))
    # Then it is refused and nothing moves
    escrow.refuse([ix], [carol], "NotLiquidatable")


@pytest.mark.parametrize(("price", "side"), [(CRASH, money.REQUESTER), (RALLY, money.MAKER)])
def test_an_undermargined_side_is_liquidated(
    initialized: Escrow, trade: Trade, position: Pubkey, carol, price: int, side: str
) -> None:
    escrow = initialized
    # Given BTC past one side's maintenance level
    escrow.set_price(BTC, price)
    before = escrow.money_state(position)
    alice, bob = trade.requester.pubkey(), trade.maker.pubkey()
    free = escrow.free(alice), escrow.free(bob), escrow.free(carol.pubkey())
    # When Carol liquidates it, naming her own collateral account
    ix = escrow.liquidate_ix(carol.pubkey(), position, escrow.collateral_address(carol.pubkey()))
    outcome = escrow.send(ix, carol)
    # Then the split is perpd.money's, and Carol's reward is in her free balance
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= LIQUIDATE_CU_CEILING
    expected = money.liquidate(before, price, escrow.now, PERIOD)
    assert expected.side == side and expected.reward > 0
    assert escrow.free(alice) == free[0] + expected.requester_release
    assert escrow.free(bob) == free[1] + expected.maker_release
    assert escrow.free(carol.pubkey()) == free[2] + expected.reward
    p = escrow.position(position)
    assert (p.status, p.cr, p.cm) == (2, 0, 0)
    # and it cannot be liquidated (or closed) again
    escrow.refuse([ix], [carol], "PositionNotOpen")


def test_the_winner_may_liquidate_and_keep_the_reward(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given a crash that puts Alice (long) under maintenance
    escrow.set_price(BTC, CRASH)
    before = escrow.money_state(position)
    bob = trade.maker
    free = escrow.free(bob.pubkey())
    # When Bob, the winning side, liquidates and names his own collateral
    ix = escrow.liquidate_ix(bob.pubkey(), position, escrow.collateral_address(bob.pubkey()))
    assert escrow.send(ix, bob).ok
    # Then he receives his release and the reward, as perpd.money says
    expected = money.liquidate(before, CRASH, escrow.now, PERIOD)
    assert escrow.free(bob.pubkey()) == free + expected.maker_release + expected.reward


def test_the_keeper_pays_the_reward_to_the_fee_account(
    initialized: Escrow, position: Pubkey
) -> None:
    escrow = initialized
    escrow.set_price(BTC, RALLY)
    before = escrow.money_state(position)
    fees = escrow.config_state().accrued_fees
    # When the router's keeper liquidates, naming the config (the protocol's fees)
    ix = escrow.liquidate_ix(escrow.router.pubkey(), position, escrow.config)
    outcome = escrow.send(ix, escrow.router)
    # Then the reward is added to the accrued fees
    assert outcome.ok, outcome.logs
    expected = money.liquidate(before, RALLY, escrow.now, PERIOD)
    assert escrow.config_state().accrued_fees == fees + expected.reward


@pytest.mark.parametrize(("price", "who"), [(CRASH, "requester"), (RALLY, "maker")])
def test_a_reward_aimed_at_the_liquidated_side_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey, price: int, who: str
) -> None:
    escrow = initialized
    # Given a price that puts `who` under maintenance
    escrow.set_price(BTC, price)
    loser = trade.requester if who == "requester" else trade.maker
    # When that side liquidates with the reward to its own collateral
    ix = escrow.liquidate_ix(loser.pubkey(), position, escrow.collateral_address(loser.pubkey()))
    # Then it is refused and nothing moves
    escrow.refuse([ix], [loser], "RewardToLiquidatedSide")


def test_a_stale_price_makes_liquidation_wait(initialized: Escrow, position: Pubkey, carol) -> None:
    escrow = initialized
    # Given a crash price published 61 s ago
    escrow.set_price(BTC, CRASH, publish_time=escrow.now - 61)
    # When Carol liquidates
    ix = escrow.liquidate_ix(carol.pubkey(), position, escrow.collateral_address(carol.pubkey()))
    # Then it is refused and nothing moves
    escrow.refuse([ix], [carol], "PriceStale")


def test_a_price_of_another_feed_is_refused(initialized: Escrow, position: Pubkey, carol) -> None:
    escrow = initialized
    # Given a crash price on an account of another feed
    escrow.set_price(BTC, CRASH, feed_id=bytes(range(32)))
    # When Carol liquidates with it
    ix = escrow.liquidate_ix(carol.pubkey(), position, escrow.collateral_address(carol.pubkey()))
    # Then it is refused and nothing moves
    escrow.refuse([ix], [carol], "PriceWrongFeed")


def test_the_liquidator_must_sign(initialized: Escrow, position: Pubkey, carol) -> None:
    escrow = initialized
    # Given a liquidatable position and a liquidation naming Carol unsigned
    escrow.set_price(BTC, CRASH)
    ix = escrow.liquidate_ix(carol.pubkey(), position, escrow.collateral_address(carol.pubkey()))
    # When the router sends it
    # Then it is refused and nothing moves
    escrow.refuse([without_signature(ix, carol.pubkey())], [escrow.router], "MissingSigner")
