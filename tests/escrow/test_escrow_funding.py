"""`settle_funding`: anyone settles accrued funding (SPEC §4) of many positions
in one instruction, after simulated time on the Clock sysvar."""

from escrow_harness import BTC, PERIOD, PRICE, USDC, Escrow, Trade
from solders.pubkey import Pubkey

from perpd import money

# The program's own units per position settled (the first one also pays for
# the entrypoint, the config and the Clock).
SETTLE_CU_PER_POSITION_CEILING = 2_000


def test_one_period_of_funding_moves_from_requester_to_maker(
    initialized: Escrow, trade: Trade
) -> None:
    escrow = initialized
    # Given a position at 500 ppm per period
    address = escrow.open(trade)
    before = escrow.money_state(address)
    # When one funding period has passed and a stranger settles it
    escrow.set_time(escrow.now + PERIOD)
    stranger = escrow.funded_keypair()
    outcome = escrow.send(escrow.settle_ix([address]), stranger)
    # Then 0.05 % of 10,000 USDC (5 USDC) moved from Cr to Cm, as perpd.money says
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= SETTLE_CU_PER_POSITION_CEILING
    expected = money.settle_funding(before, escrow.now, PERIOD)
    assert expected.transfer == 5 * USDC
    assert escrow.money_state(address) == expected.state
    # and settling again at the same time moves nothing
    assert escrow.send(escrow.settle_ix([address]), stranger).ok
    assert escrow.money_state(address) == expected.state


def test_a_missed_tick_is_caught_up_exactly(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    address = escrow.open(trade.but(rate=-777, max_rate=0))
    before = escrow.money_state(address)
    # When settlements run at odd times, then 2.5 periods after opening
    for elapsed in (1_234, PERIOD + 17, PERIOD * 5 // 2):
        escrow.set_time(trade.valid_until - 10 + elapsed)
        assert escrow.send(escrow.settle_ix([address]), escrow.router).ok
    # Then the result is one settlement at the last time (maker pays requester)
    expected = money.settle_funding(before, escrow.now, PERIOD)
    assert expected.transfer < 0
    assert escrow.money_state(address) == expected.state


def test_twenty_positions_settle_in_one_transaction(initialized: Escrow) -> None:
    escrow = initialized
    # Given 20 positions between two agents, at various rates and sides
    alice, _ = escrow.funded_agent(30_000 * USDC, seed=1)
    bob, _ = escrow.funded_agent(30_000 * USDC, seed=2)
    escrow.set_price(BTC, PRICE)
    addresses = []
    for nonce in range(20):
        rate = (nonce - 10) * 1_000
        trade = Trade(alice, bob, nonce=nonce, side=nonce % 2, rate=rate, max_rate=max(rate, 0))
        addresses.append(escrow.open(trade))
    befores = [escrow.money_state(a) for a in addresses]
    # When 3 periods have passed and one transaction settles all 20
    escrow.set_time(escrow.now + 3 * PERIOD)
    outcome = escrow.send(escrow.settle_ix(addresses), escrow.funded_keypair())
    # Then each moved exactly what perpd.money says, within 2,000 CU per position
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= 20 * SETTLE_CU_PER_POSITION_CEILING
    for address, before in zip(addresses, befores, strict=True):
        assert escrow.money_state(address) == money.settle_funding(before, escrow.now, PERIOD).state


def test_closed_positions_are_skipped(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given an open position and a closed one, a period later
    open_one = escrow.open(trade)
    closed = escrow.open(trade.but(nonce=2, size=5_000 * USDC))
    assert escrow.close(trade.requester, closed, 100).ok
    escrow.set_time(escrow.now + PERIOD)
    before = escrow.money_state(open_one)
    # When both are settled in one instruction
    outcome = escrow.send(escrow.settle_ix([closed, open_one]), escrow.router)
    # Then the batch succeeds: the open one is settled, the closed one skipped
    assert outcome.ok, outcome.logs
    assert escrow.money_state(open_one) == money.settle_funding(before, escrow.now, PERIOD).state
    assert escrow.position(closed).status == 1


def test_a_forged_position_is_refused(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given a real position, and a copy of it owned by another program
    address = escrow.open(trade)
    data = bytes(escrow.svm.get_account(address).data)
    forged = Pubkey.new_unique()
    escrow.set_account(forged, data, Pubkey.new_unique())
    escrow.set_time(escrow.now + PERIOD)
    # When both are settled together
    ix = escrow.settle_ix([address, forged])
    # Then the whole instruction is refused: nothing moves
    escrow.refuse([ix], [escrow.router], "InvalidAccountOwner")


def test_a_collateral_account_passed_as_a_position_is_refused(
    initialized: Escrow, trade: Trade
) -> None:
    escrow = initialized
    # Given Alice's collateral account, a period later
    escrow.set_time(escrow.now + PERIOD)
    # When it is passed to settle_funding as a position
    ix = escrow.settle_ix([escrow.collateral_address(trade.requester.pubkey())])
    # Then it is refused and nothing moves
    escrow.refuse([ix], [escrow.router], "InvalidAccountData")
