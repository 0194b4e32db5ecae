"""`lock_position`: a position exists on chain only when both agents signed it:
the requester's request consent and the maker's quote consent, read back from
the Ed25519 precompile call before it, byte for byte against its arguments."""

import pytest
from escrow_harness import (
    BTC,
    PRICE,
    PROGRAM_ID,
    SOL,
    USDC,
    Escrow,
    Trade,
    ed25519_ix,
    without_signature,
)
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd import money

# The program's own compute units: two consent checks, the request hash, the
# Pyth read, the position PDA search and its creation (a System Program CPI).
LOCK_CU_CEILING = 6_000


def test_lock_moves_both_collaterals_into_the_position(initialized: Escrow, trade: Trade) -> None:
    escrow = initialized
    # Given Alice's request and Bob's quote on it, both signed
    # When the router relays both consents
    outcome = escrow.lock(trade)
    # Then the position holds Cr = IMr and Cm at the oracle's entry price
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= LOCK_CU_CEILING
    address = escrow.position_address(trade.requester.pubkey(), trade.nonce)
    expected, fee = money.open_position(
        1, trade.size, PRICE, trade.leverage, trade.collateral, trade.rate, escrow.now
    )
    p = escrow.position(address)
    assert (p.requester, p.maker, p.nonce) == (trade.requester.pubkey(), trade.maker.pubkey(), 1)
    assert (p.market, p.side, p.leverage, p.status, p.closes) == (BTC, 0, 10, 0, 0)
    assert (p.notional, p.entry_price, p.cr, p.cm) == (trade.size, PRICE, expected.cr, expected.cm)
    assert (p.imr, p.imm, p.rate_ppm) == (expected.imr, expected.imm, trade.rate)
    assert (p.t_base, p.funding_paid, p.opened_at, p.term_end) == (escrow.now, 0, escrow.now, 0)
    # and the requester paid margin + fee, the maker its collateral, the config the fee
    alice, bob = (
        escrow.collateral(trade.requester.pubkey()),
        escrow.collateral(trade.maker.pubkey()),
    )
    assert (alice.free, alice.locked) == (2_000 * USDC - 1_000 * USDC - fee, 1_000 * USDC)
    assert (bob.free, bob.locked) == (4_000 * USDC, 1_000 * USDC)
    assert escrow.config_state().accrued_fees == fee == 5 * USDC


def test_a_term_position_records_its_end(initialized: Escrow, trade: Trade) -> None:
    # Given a request for a 1-hour short
    term = trade.but(duration=3_600, side=1)
    # When it is locked
    address = initialized.open(term)
    # Then the position ends an hour after its opening
    p = initialized.position(address)
    assert (p.side, p.term_end) == (1, initialized.now + 3_600)


def refuse_lock(escrow: Escrow, trade: Trade, name: str, consents=None) -> None:
    """The lock is refused with `name` and nothing moves (no position either)."""
    call = trade.consents() if consents is None else consents
    escrow.refuse([call, escrow.lock_ix(trade)], [escrow.router], name)
    assert (
        escrow.svm.get_account(escrow.position_address(trade.requester.pubkey(), trade.nonce))
        is None
    )


def test_a_consent_signed_by_another_key_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given Mallory signing Alice's request bytes
    mallory = Keypair()
    call = ed25519_ix([(mallory, trade.request()), (trade.maker, trade.quote())])
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "ConsentWrongSigner", call)


def test_a_quote_signed_by_another_key_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given Alice's request and Bob's quote bytes signed by a stranger
    call = ed25519_ix([(trade.requester, trade.request()), (Keypair(), trade.quote())])
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "ConsentWrongSigner", call)


@pytest.mark.parametrize(
    "signed",
    [
        {"size": 10_000 * USDC + 1},
        {"leverage": 11},
        {"expires_at": 1_700_000_031},
        {"market": 1},
        {"max_rate": 1_001},
        {"nonce": 2},
    ],
    ids=["size", "leverage", "expiry", "market", "max_rate", "nonce"],
)
def test_a_request_differing_by_one_byte_is_refused(
    initialized: Escrow, trade: Trade, signed: dict
) -> None:
    # Given a request consent signed over terms that differ from the instruction's
    other = trade.but(**signed)
    call = ed25519_ix([(trade.requester, other.request()), (trade.maker, trade.quote())])
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "RequestConsentMismatch", call)


@pytest.mark.parametrize(
    "signed",
    [{"rate": 501}, {"collateral": 1_000 * USDC - 1}, {"valid_until": 1_700_000_011}],
    ids=["rate", "collateral", "valid_until"],
)
def test_a_quote_differing_by_one_byte_is_refused(
    initialized: Escrow, trade: Trade, signed: dict
) -> None:
    # Given a quote consent signed over terms that differ from the instruction's
    call = ed25519_ix(
        [(trade.requester, trade.request()), (trade.maker, trade.but(**signed).quote())]
    )
    # When the router relays it
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "QuoteConsentMismatch", call)


def test_a_quote_on_another_request_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given Bob's quote on another request of Alice's (same terms, nonce 2)
    other = trade.but(nonce=2)
    call = ed25519_ix([(trade.requester, trade.request()), (trade.maker, other.quote())])
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "QuoteConsentMismatch", call)


def test_consents_for_another_program_are_refused(initialized: Escrow, trade: Trade) -> None:
    # Given consents signed for another deployment's program id
    elsewhere = Pubkey.new_unique()
    assert elsewhere != PROGRAM_ID
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "RequestConsentMismatch", trade.consents(program=elsewhere))


def test_offsets_into_another_instruction_are_refused(initialized: Escrow, trade: Trade) -> None:
    # Given a valid Ed25519 call first, and right before the lock a second call
    # whose every offset points into the first one (the precompile accepts it)
    signed = [(trade.requester, trade.request()), (trade.maker, trade.quote())]
    ixs = [ed25519_ix(signed), ed25519_ix(signed, data_in=0), initialized.lock_ix(trade)]
    # When the router sends the three
    # Then the lock is refused and nothing moves
    initialized.refuse(ixs, [initialized.router], "ConsentOutsideCall")


def test_no_ed25519_call_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given no Ed25519 call in the transaction
    # When the lock is sent alone
    # Then it is refused and nothing moves
    initialized.refuse(
        [initialized.lock_ix(trade)], [initialized.router], "MissingConsentSignature"
    )


def test_another_instruction_before_the_lock_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given the consents, then an unrelated instruction right before the lock
    memo = initialized.set_market_ix(BTC, bytes(initialized.config_state().markets[0].feed_id), 50)
    ixs = [trade.consents(), memo, initialized.lock_ix(trade)]
    # When the router (and the admin, for set_market) sends the three
    # Then the lock is refused and nothing moves
    initialized.refuse(ixs, [initialized.router, initialized.admin], "NotEd25519Call")


def test_a_call_with_only_the_request_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given an Ed25519 call holding the request consent but no quote consent
    call = ed25519_ix([(trade.requester, trade.request())])
    # When the router relays it
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "ConsentSignatureMissing", call)


def test_a_reused_nonce_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given a locked position
    initialized.open(trade)
    # When the same consents are relayed again
    # Then the lock is refused and nothing moves
    initialized.refuse(
        [trade.consents(), initialized.lock_ix(trade)], [initialized.router], "PositionExists"
    )


def test_an_expired_request_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given the Clock at the request's deadline
    initialized.set_time(trade.expires_at)
    initialized.set_price(BTC, PRICE)
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade.but(valid_until=trade.expires_at + 5), "ConsentExpired")


def test_an_expired_quote_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given the Clock at the quote's deadline (the request is still live)
    initialized.set_time(trade.valid_until)
    initialized.set_price(BTC, PRICE)
    # When the router relays both consents
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade, "ConsentExpired")


def test_only_the_router_relays(initialized: Escrow, trade: Trade) -> None:
    # Given a maker that relays both consents itself, picking its own quote
    bob = trade.maker
    ix = initialized.lock_ix(trade, router=bob.pubkey())
    # When Bob sends the lock, signing as the router
    # Then it is refused and nothing moves
    initialized.refuse([trade.consents(), ix], [bob], "NotRouter")


def test_the_router_must_sign(initialized: Escrow, trade: Trade) -> None:
    # Given the lock with the router's key but not its signature
    payer = initialized.funded_keypair()
    ix = without_signature(initialized.lock_ix(trade), initialized.router.pubkey())
    # When another key pays for and sends it
    # Then it is refused and nothing moves
    initialized.refuse([trade.consents(), ix], [payer], "MissingSigner")


@pytest.mark.parametrize(
    ("terms", "name"),
    [
        ({"leverage": 51}, "InvalidLeverage"),
        ({"leverage": 0}, "InvalidLeverage"),
        ({"rate": 50_001, "max_rate": 50_001}, "RateOutOfRange"),
        ({"rate": -50_001}, "RateOutOfRange"),
        ({"rate": 1_001}, "RateAboveMax"),
        ({"collateral": 10_000 * USDC // 50 - 1}, "MakerCollateralTooLow"),
        ({"side": 2}, "InvalidSide"),
        ({"size": 0}, "InvalidSize"),
        ({"market": 3}, "MarketNotListed"),
        ({"market": 9}, "InvalidMarket"),
    ],
)
def test_terms_outside_the_rules_are_refused(
    initialized: Escrow, trade: Trade, terms: dict, name: str
) -> None:
    # Given both agents signing terms the rules do not allow
    # When the router relays them
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade.but(**terms), name)


def test_leverage_above_the_markets_max_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given SOL-PERP (20x at most) at a fresh price
    initialized.set_price(SOL, 150 * 10**8)
    # When the router relays consents for 21x on it
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade.but(market=SOL, leverage=21), "InvalidLeverage")


def test_the_requester_must_afford_margin_and_fee(initialized: Escrow, trade: Trade) -> None:
    # Given a request of 20,000 USDC at 10x: 2,000 of margin + 10 of fee, and
    # Alice has 2,000
    # When the router relays it with Bob's quote
    # Then the lock is refused and nothing moves
    refuse_lock(
        initialized,
        trade.but(size=20_000 * USDC, collateral=2_000 * USDC),
        "InsufficientFreeCollateral",
    )


def test_self_trade_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given Alice quoting on her own request
    alice = trade.requester
    # When the router relays both consents
    # Then the lock is refused and nothing moves
    refuse_lock(initialized, trade.but(maker=alice), "SelfTrade")


@pytest.mark.parametrize(
    ("price", "name"),
    [
        ({"publish_time": 1_700_000_000 - 61}, "PriceStale"),
        ({"conf": PRICE * 2 // 100 + 1}, "PriceConfidenceTooWide"),
        ({"feed_id": bytes(32)}, "PriceWrongFeed"),
        ({"owner": Pubkey.new_unique()}, "PriceAccountOwner"),
        ({"verification": ("partial", 5)}, "PriceNotFullyVerified"),
    ],
    ids=["stale", "wide", "wrong-feed", "wrong-owner", "partial"],
)
def test_an_unusable_price_is_refused(
    initialized: Escrow, trade: Trade, price: dict, name: str
) -> None:
    # Given a BTC price account the program must not use
    initialized.set_price(BTC, PRICE, **price)
    # When the router relays both consents
    # Then the lock is refused with the price's own error and nothing moves
    refuse_lock(initialized, trade, name)


def test_a_price_a_minute_old_is_usable(initialized: Escrow, trade: Trade) -> None:
    # Given a price published 60 s ago (the limit)
    initialized.set_price(BTC, PRICE, publish_time=initialized.now - 60)
    # When the router relays both consents
    # Then the position is locked
    assert initialized.lock(trade).ok


def test_a_non_canonical_position_address_is_refused(initialized: Escrow, trade: Trade) -> None:
    # Given the address of (Alice, nonce) under a lower, non-canonical bump: a
    # second address for the same request consent
    escrow = initialized
    requester = trade.requester.pubkey()
    canonical, bump = escrow.position_pda(requester, trade.nonce)
    seeds = [b"position", bytes(requester), trade.nonce.to_bytes(8, "little")]
    lower = next(b for b in range(bump - 1, -1, -1) if _is_pda(seeds, b))
    other = Pubkey.create_program_address([*seeds, bytes([lower])], escrow.program_id)
    # When the router locks at it
    ix = escrow.lock_ix(trade, bump=lower, position=other)
    # Then it is refused, so a consent can lock one position only
    escrow.refuse([trade.consents(), ix], [escrow.router], "InvalidPda")
    assert escrow.svm.get_account(other) is None and escrow.open(trade) == canonical


def _nonce_with_bump(escrow: Escrow, requester: Pubkey, bump: int) -> int:
    """The first nonce whose position address has canonical bump `bump`."""
    return next(n for n in range(1, 10_000) if escrow.position_pda(requester, n)[1] == bump)


@pytest.mark.parametrize("bump", [255, 254, 253, 252])
def test_lock_stays_under_the_ceiling_at_lower_bumps(
    initialized: Escrow, trade: Trade, bump: int
) -> None:
    # Given a nonce whose canonical bump is `bump`: the program checks each
    # higher bump (255 - bump of them) gives no address
    escrow = initialized
    requester = trade.requester.pubkey()
    at_bump = trade.but(nonce=_nonce_with_bump(escrow, requester, bump))
    # When the router locks it
    outcome = escrow.lock(at_bump)
    # Then the position exists at its canonical address, within the CU ceiling
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= LOCK_CU_CEILING, outcome.compute_units
    address = escrow.position_address(requester, at_bump.nonce)
    assert escrow.position(address).bump == bump


@pytest.mark.parametrize("canonical", [255, 254, 253])
def test_the_next_valid_lower_bump_is_refused(
    initialized: Escrow, trade: Trade, canonical: int
) -> None:
    # Given a nonce of canonical bump `canonical` and the highest lower bump
    # that also gives an address (what a client skipping the canonical one sends)
    escrow = initialized
    requester = trade.requester.pubkey()
    nonce = _nonce_with_bump(escrow, requester, canonical)
    seeds = [b"position", bytes(requester), nonce.to_bytes(8, "little")]
    lower = next(b for b in range(canonical - 1, -1, -1) if _is_pda(seeds, b))
    other = Pubkey.create_program_address([*seeds, bytes([lower])], escrow.program_id)
    at_bump = trade.but(nonce=nonce)
    # When the router locks at that address
    ix = escrow.lock_ix(at_bump, bump=lower, position=other)
    # Then it is refused as today (InvalidPda), and the canonical one still opens
    escrow.refuse([at_bump.consents(), ix], [escrow.router], "InvalidPda")
    assert escrow.svm.get_account(other) is None
    assert escrow.position(escrow.open(at_bump)).bump == canonical


def _is_pda(seeds: list[bytes], bump: int) -> bool:
    try:
        Pubkey.create_program_address([*seeds, bytes([bump])], PROGRAM_ID)
    except Exception:  # solders raises PubkeyError (not exported): on the curve
        return False
    return True
