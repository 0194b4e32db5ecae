"""`close_position`: the requester's close consent closes any part of its
position; past a term's end anyone closes it in full. Funding is settled
first, then PnL on the closed fraction at the Pyth price, as perpd.money says."""

import pytest
from escrow_harness import BTC, PERIOD, PRICE, USDC, Escrow, Trade
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd import money

# The program's own units: the close consent, the Pyth read, funding and PnL.
CLOSE_CU_CEILING = 6_000


@pytest.mark.parametrize("side", [0, 1], ids=["long", "short"])
@pytest.mark.parametrize("move", [+3, -3], ids=["higher", "lower"])
@pytest.mark.parametrize("pct", [40, 100], ids=["partial", "full"])
def test_close_releases_what_perpd_money_says(
    initialized: Escrow, trade: Trade, side: int, move: int, pct: int
) -> None:
    escrow = initialized
    # Given a position held for half a funding period, and BTC 3 % higher or lower
    address = escrow.open(trade.but(side=side))
    escrow.set_time(escrow.now + PERIOD // 2)
    price = PRICE * (100 + move) // 100
    escrow.set_price(BTC, price)
    before = escrow.money_state(address)
    alice, bob = trade.requester.pubkey(), trade.maker.pubkey()
    free_before = escrow.free(alice), escrow.free(bob)
    # When Alice's consent to close pct % is relayed
    outcome = escrow.close(trade.requester, address, pct)
    # Then both free balances receive perpd.money's releases
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= CLOSE_CU_CEILING
    expected = money.close_position(before, pct, price, escrow.now, PERIOD)
    assert escrow.free(alice) == free_before[0] + expected.requester_release
    assert escrow.free(bob) == free_before[1] + expected.maker_release
    # (the side the price favoured gets more than its share of the pool back)
    favoured = expected.requester_release if (side == 0) == (move > 0) else expected.maker_release
    assert (
        favoured > (before.cr if favoured == expected.requester_release else before.cm) * pct // 100
    )
    p = escrow.position(address)
    assert p.closes == 1
    if pct == 100:
        assert (p.status, p.cr, p.cm) == (1, 0, 0)
        assert escrow.collateral(alice).locked == escrow.collateral(bob).locked == 0
    else:
        assert escrow.money_state(address) == expected.remaining
        assert escrow.collateral(alice).locked == expected.remaining.imr


def test_term_end_is_closed_by_a_third_party(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given a 1-hour position whose hour has passed
    address = escrow.open(trade.but(duration=3_600))
    escrow.set_time(escrow.now + 3_600)
    escrow.set_price(BTC, PRICE + 1_000 * 10**8)
    before = escrow.money_state(address)
    # When a stranger closes it, with no consent at all
    stranger = escrow.funded_keypair()
    ix = escrow.close_ix(address, 100, 0, 0)
    outcome = escrow.send(ix, stranger)
    # Then it is closed in full at the Pyth price
    assert outcome.ok, outcome.logs
    expected = money.close_position(before, 100, PRICE + 1_000 * 10**8, escrow.now, PERIOD)
    assert escrow.position(address).status == 1
    assert escrow.free(trade.maker.pubkey()) == 4_000 * USDC + expected.maker_release


def test_past_its_term_a_position_closes_only_in_full(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given a 1-hour position at its term's end
    address = escrow.open(trade.but(duration=3_600))
    escrow.set_time(escrow.now + 3_600)
    escrow.set_price(BTC, PRICE)
    # When it is closed without a consent for 50 %
    # Then it is refused and nothing moves
    escrow.refuse([escrow.close_ix(address, 50, 0, 0)], [escrow.router], "TermCloseMustBeFull")


def test_before_its_term_a_stranger_cannot_close(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given a 1-hour position one second before its term's end
    address = escrow.open(trade.but(duration=3_600))
    escrow.set_time(escrow.now + 3_599)
    escrow.set_price(BTC, PRICE)
    # When a stranger closes it in full without a consent
    ix = escrow.close_ix(address, 100, 0, 0)
    # Then it is refused and nothing moves
    escrow.refuse([ix], [escrow.funded_keypair()], "MissingConsentSignature")


@pytest.fixture
def position(initialized: Escrow, trade: Trade) -> Pubkey:
    return initialized.open(trade)


def close_ixs(
    escrow: Escrow, signer: Keypair, address: Pubkey, signed_pct: int, signed_closes: int, **claim
):
    """`signer`'s close consent and the instruction relaying it, which may claim
    other terms (`claim`: pct, closes) than the consent says."""
    expires_at = escrow.now + 30
    consent = escrow.close_consent_ix(signer, address, signed_pct, signed_closes, expires_at)
    terms = {"pct": signed_pct, "closes": signed_closes} | claim
    return [consent, escrow.close_ix(address, terms["pct"], terms["closes"], expires_at)]


def relay_close(escrow: Escrow, signer: Keypair, address: Pubkey, pct: int, closes: int, name: str):
    return escrow.refuse(close_ixs(escrow, signer, address, pct, closes), [escrow.router], name)


def test_a_replayed_close_consent_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given Alice's consent to close 50 %, relayed once
    ixs = close_ixs(escrow, trade.requester, position, 50, 0)
    assert escrow.send_all(ixs, escrow.router).ok
    # When the router relays the same consent again
    # Then it is refused: `closes` has moved on
    escrow.refuse(ixs, [escrow.router], "CloseConsentReplayed")
    assert escrow.position(position).closes == 1


def test_an_old_consent_under_the_new_counter_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    assert escrow.send_all(close_ixs(escrow, trade.requester, position, 50, 0), escrow.router).ok
    # When the old consent is relayed claiming closes = 1
    ixs = close_ixs(escrow, trade.requester, position, 50, 0, closes=1)
    escrow.refuse(ixs, [escrow.router], "CloseConsentMismatch")


def test_a_maker_trying_to_close_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    # Given Bob, the maker, signing a close consent for Alice's position
    # When the router relays it
    # Then it is refused and nothing moves
    relay_close(initialized, trade.maker, position, 100, 0, "MakerCannotClose")


def test_a_close_consent_by_another_key_is_refused(initialized: Escrow, position: Pubkey) -> None:
    # Given a close consent for Alice's position signed by a stranger
    # When the router relays it
    # Then it is refused and nothing moves
    relay_close(initialized, Keypair(), position, 100, 0, "ConsentWrongSigner")


def test_a_double_close_is_refused(initialized: Escrow, trade: Trade, position: Pubkey) -> None:
    escrow = initialized
    # Given a position closed in full
    assert escrow.close(trade.requester, position, 100).ok
    # When Alice's consent for a second close (closes = 1) is relayed
    # Then it is refused and nothing moves
    relay_close(escrow, trade.requester, position, 100, 1, "PositionNotOpen")


def test_a_consent_for_another_size_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    # Given Alice's consent to close 10 %, relayed as a close of 100 %
    ixs = close_ixs(initialized, trade.requester, position, 10, 0, pct=100)
    # When the router sends it
    # Then it is refused and nothing moves
    initialized.refuse(ixs, [initialized.router], "CloseConsentMismatch")


def test_an_expired_close_consent_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given Alice's close consent whose deadline is now
    expires_at = escrow.now
    consent = escrow.close_consent_ix(trade.requester, position, 100, 0, expires_at)
    # When the router relays it
    # Then it is refused and nothing moves
    escrow.refuse(
        [consent, escrow.close_ix(position, 100, 0, expires_at)], [escrow.router], "ConsentExpired"
    )


def test_a_forged_position_account_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given a copy of the position owned by another program, in Alice's favour
    data = bytearray(escrow.svm.get_account(position).data)
    data[96:104] = (10**6 * USDC).to_bytes(8, "little")
    forged = Pubkey.new_unique()
    escrow.set_account(forged, bytes(data), Pubkey.new_unique())
    expires_at = escrow.now + 30
    consent = escrow.close_consent_ix(trade.requester, forged, 100, 0, expires_at)
    ix = escrow.close_ix(position, 100, 0, expires_at, position=forged)
    escrow.refuse([consent, ix], [escrow.router], "InvalidAccountOwner")


def test_another_agents_collateral_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given Alice's valid close consent and Carol's collateral account
    carol, _ = escrow.funded_agent(1 * USDC)
    expires_at = escrow.now + 30
    consent = escrow.close_consent_ix(trade.requester, position, 100, 0, expires_at)
    # When the close names Carol's collateral as the maker's
    ix = escrow.close_ix(
        position, 100, 0, expires_at, makerCollateral=escrow.collateral_address(carol.pubkey())
    )
    # Then it is refused and nothing moves
    escrow.refuse([consent, ix], [escrow.router], "PositionMismatch")


def test_a_stale_price_refuses_the_close(
    initialized: Escrow, trade: Trade, position: Pubkey
) -> None:
    escrow = initialized
    # Given the Clock 61 s past the last price
    escrow.set_time(escrow.now + 61)
    # When Alice's close consent is relayed
    # Then it is refused and nothing moves
    relay_close(escrow, trade.requester, position, 100, 0, "PriceStale")


@pytest.mark.parametrize("pct", [0, 101])
def test_a_size_percent_outside_1_to_100_is_refused(
    initialized: Escrow, trade: Trade, position: Pubkey, pct: int
) -> None:
    # Given Alice's consent to close `pct` %, outside 1..=100
    # When the router relays it
    # Then it is refused and nothing moves
    relay_close(initialized, trade.requester, position, pct, 0, "InvalidSizePercent")
