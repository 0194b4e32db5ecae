"""The program client (perpd.chain._client) against the packaged program in LiteSVM:
the router relays signatures the agents made (it never holds their keys), the program
accepts exactly those, and the client's decoders read back every field."""

from __future__ import annotations

import pytest
from anchorpy import Coder
from solders.keypair import Keypair
from solders.pubkey import Pubkey

from perpd import money
from perpd.chain import close_consent, withdraw_consent
from perpd.chain._client import (
    EscrowClient,
    QuoteTerms,
    RequestTerms,
    ed25519_verify_ix,
    error_names,
)
from perpd.chain._program import packaged_program
from perpd.chain._pyth_account import SOL_USD_FEED_ID, price_feed_account
from tests.escrow.escrow_harness import BTC, MARKETS, PERIOD, PRICE, T0, USDC, Escrow, load_idl


@pytest.fixture
def escrow() -> Escrow:
    """The packaged program initialized, markets listed, BTC at 60,000."""
    idl = load_idl()
    chain = Escrow(packaged_program(), idl, Coder(idl))
    chain.initialize()
    chain.set_price(BTC, PRICE)
    return chain


def sign(agent: Keypair, message: bytes) -> bytes:
    """What an agent sends the daemon: its signature of the consent bytes."""
    return bytes(agent.sign_message(message))


def terms(requester: Keypair, maker: Keypair, **changes: int) -> tuple[RequestTerms, QuoteTerms]:
    request = dict(
        requester=requester.pubkey(),
        nonce=7,
        market=BTC,
        side=0,
        size=10_000 * USDC,
        leverage=10,
        max_rate=1_000,
        duration=3_600,
        expires_at=T0 + 30,
    )
    quote = dict(maker=maker.pubkey(), rate=500, collateral=1_000 * USDC, valid_until=T0 + 10)
    request |= {k: v for k, v in changes.items() if k in request}
    quote |= {k: v for k, v in changes.items() if k in quote}
    return RequestTerms(**request), QuoteTerms(**quote)  # type: ignore[arg-type]


def lock(escrow: Escrow, request: RequestTerms, quote: QuoteTerms, rsig: bytes, qsig: bytes):
    ixs = escrow.client.lock_position_ixs(
        router=escrow.router.pubkey(),
        request=request,
        request_sig=rsig,
        quote=quote,
        quote_sig=qsig,
        price_account=escrow.price_accounts[request.market],
    )
    position = escrow.client.position_address(request.requester, request.nonce)[0]
    escrow.positions.append(position)
    return escrow.send_all(ixs, escrow.router), position


@pytest.fixture
def parties(escrow: Escrow) -> tuple[Keypair, Keypair]:
    alice, _ = escrow.funded_agent(2_000 * USDC, seed=1)
    bob, _ = escrow.funded_agent(5_000 * USDC, seed=2)
    return alice, bob


def test_a_relayed_lock_opens_the_position_the_client_decodes(
    escrow: Escrow, parties: tuple[Keypair, Keypair]
) -> None:
    alice, bob = parties
    client = escrow.client
    request, quote = terms(alice, bob)
    # Given both agents' signatures of their consents (made with their own keys)
    rsig = sign(alice, request.consent(client.program_id))
    qsig = sign(bob, quote.consent(client.program_id, request))
    # When the router relays them with lock_position
    outcome, address = lock(escrow, request, quote, rsig, qsig)
    # Then the position is there and every field decodes
    assert outcome.ok, outcome.logs
    account = escrow.svm.get_account(address)
    assert account is not None
    p = client.decode_position(bytes(account.data))
    state, fee = money.open_position(1, request.size, PRICE, 10, quote.collateral, 500, T0)
    assert (p.requester, p.maker, p.nonce) == (alice.pubkey(), bob.pubkey(), 7)
    assert (p.notional, p.entry_price, p.cr, p.cm) == (request.size, PRICE, state.cr, state.cm)
    assert (p.imr, p.imm, p.rate_ppm, p.t_base, p.funding_paid) == (
        state.imr,
        state.imm,
        500,
        T0,
        0,
    )
    assert (p.opened_at, p.term_end, p.closes) == (T0, T0 + 3_600, 0)
    assert (p.market, p.side, p.leverage, p.status) == (BTC, 0, 10, 0)
    assert p.bump == client.position_address(alice.pubkey(), 7)[1]
    raw = escrow.svm.get_account(client.collateral_address(alice.pubkey()))
    mine = client.decode_collateral(bytes(raw.data))
    assert (mine.agent, mine.locked, mine.withdrawals) == (alice.pubkey(), state.imr, 0)
    assert mine.free == 2_000 * USDC - state.imr - fee
    config = client.decode_config(bytes(escrow.svm.get_account(client.config).data))
    assert config.accrued_fees == fee and config.funding_period_s == PERIOD
    assert config.router_authority == escrow.router.pubkey()
    assert [(m.feed_id, m.max_leverage) for m in config.markets[:3]] == MARKETS
    assert config.markets[3].max_leverage == 0
    # and a client rebuilt from that config addresses the same accounts
    again = EscrowClient.from_config(
        client.program_id, bytes(escrow.svm.get_account(client.config).data)
    )
    assert (again.vault, again.usdc_mint, again.fee_account) == (
        client.vault,
        client.usdc_mint,
        client.fee_account,
    )


def test_a_forged_or_altered_consent_is_refused_by_the_program(
    escrow: Escrow, parties: tuple[Keypair, Keypair]
) -> None:
    alice, bob = parties
    program = escrow.client.program_id
    request, quote = terms(alice, bob)
    rsig = sign(alice, request.consent(program))
    qsig = sign(bob, quote.consent(program, request))
    router = escrow.router
    # A router forging the requester's signature: the precompile refuses the call
    forged = sign(router, request.consent(program))
    outcome, address = lock(escrow, request, quote, forged, qsig)
    assert not outcome.ok and outcome.error == 2, outcome.logs  # Ed25519 InvalidSignature
    # A router signing the request consent as itself: the program refuses the signer
    own = ed25519_verify_ix(
        [
            (router.pubkey(), forged, request.consent(program)),
            (bob.pubkey(), qsig, quote.consent(program, request)),
        ]
    )
    honest = escrow.client.lock_position_ix(
        router=router.pubkey(),
        request=request,
        quote=quote,
        price_account=escrow.price_accounts[BTC],
    )
    outcome = escrow.send_all([own, honest], router)
    assert not outcome.ok and error_names()[outcome.error] == "ConsentWrongSigner", outcome.logs
    # A router changing the size after the requester signed (the signature no
    # longer verifies over the bytes it relays: the precompile refuses)
    bigger, _ = terms(alice, bob, size=20_000 * USDC)
    outcome, _ = lock(escrow, bigger, quote, rsig, sign(bob, quote.consent(program, bigger)))
    assert not outcome.ok
    # A router relaying the signed bytes but locking other terms than they say
    ixs = escrow.client.lock_position_ixs(
        router=router.pubkey(),
        request=request,
        request_sig=rsig,
        quote=quote,
        quote_sig=qsig,
        price_account=escrow.price_accounts[BTC],
    )
    lower_rate = escrow.client.lock_position_ix(
        router=router.pubkey(),
        request=request,
        quote=QuoteTerms(bob.pubkey(), 400, quote.collateral, quote.valid_until),
        price_account=escrow.price_accounts[BTC],
    )
    outcome = escrow.send_all([ixs[0], lower_rate], router)
    assert not outcome.ok and error_names()[outcome.error] == "QuoteConsentMismatch"
    # Then no position exists, and the honest relay still works
    assert escrow.svm.get_account(address) is None
    outcome, _ = lock(escrow, request, quote, rsig, qsig)
    assert outcome.ok, outcome.logs


def test_close_withdraw_liquidate_and_settle_through_the_client(
    escrow: Escrow, parties: tuple[Keypair, Keypair]
) -> None:
    alice, bob = parties
    client = escrow.client
    request, quote = terms(alice, bob, leverage=50, collateral=200 * USDC, duration=0)
    outcome, position = lock(
        escrow,
        request,
        quote,
        sign(alice, request.consent(client.program_id)),
        sign(bob, quote.consent(client.program_id, request)),
    )
    assert outcome.ok, outcome.logs
    price = escrow.price_accounts[BTC]
    # settle_funding after a period
    escrow.set_time(T0 + PERIOD)
    escrow.set_price(BTC, PRICE)
    settled = escrow.send(client.settle_funding_ix([position]), escrow.router)
    assert settled.ok, settled.logs
    assert escrow.position(position).funding_paid != 0
    # a 50 % close by the requester's consent
    expires = escrow.now + 30
    sig = sign(alice, close_consent(client.program_id, position, 50, 0, expires))
    ixs = client.close_position_ixs(
        position=position,
        requester=alice.pubkey(),
        maker=bob.pubkey(),
        size_percent=50,
        closes=0,
        expires_at=expires,
        consent_sig=sig,
        price_account=price,
    )
    closed = escrow.send_all(ixs, escrow.router)
    assert closed.ok, closed.logs
    assert escrow.position(position).closes == 1
    # the same consent again is refused (its `closes` is spent)
    again = escrow.send_all(ixs, escrow.router)
    assert error_names()[again.error] == "CloseConsentReplayed"
    # liquidation by the keeper after a 1.5 % drop (reward to accrued fees)
    escrow.set_price(BTC, PRICE * 985 // 1000)
    fees = escrow.config_state().accrued_fees
    liq = client.liquidate_ix(
        position=position,
        requester=alice.pubkey(),
        maker=bob.pubkey(),
        liquidator=escrow.router.pubkey(),
        reward_to=client.config,
        price_account=price,
    )
    done = escrow.send(liq, escrow.router)
    assert done.ok, done.logs
    assert escrow.position(position).status == 2
    assert escrow.config_state().accrued_fees > fees
    # a consented withdrawal of the maker's free collateral to its wallet
    wallet = escrow.token_account(bob.pubkey(), 0)
    amount = escrow.free(bob.pubkey())
    expires = escrow.now + 30
    sig = sign(bob, withdraw_consent(client.program_id, bob.pubkey(), wallet, amount, 0, expires))
    ixs = client.withdraw_with_consent_ixs(
        agent=bob.pubkey(),
        destination=wallet,
        amount=amount,
        withdrawals=0,
        expires_at=expires,
        consent_sig=sig,
    )
    paid = escrow.send_all(ixs, escrow.router)
    assert paid.ok, paid.logs
    assert escrow.token_balance(wallet) == amount and escrow.free(bob.pubkey()) == 0
    assert escrow.collateral(bob.pubkey()).withdrawals == 1


def test_a_term_position_closes_without_consent_after_its_end(
    escrow: Escrow, parties: tuple[Keypair, Keypair]
) -> None:
    alice, bob = parties
    client = escrow.client
    request, quote = terms(alice, bob)
    outcome, position = lock(
        escrow,
        request,
        quote,
        sign(alice, request.consent(client.program_id)),
        sign(bob, quote.consent(client.program_id, request)),
    )
    assert outcome.ok
    escrow.set_time(T0 + 3_600)
    escrow.set_price(BTC, PRICE)
    ixs = client.close_position_ixs(
        position=position,
        requester=alice.pubkey(),
        maker=bob.pubkey(),
        size_percent=100,
        closes=0,
        expires_at=0,
        consent_sig=None,
        price_account=escrow.price_accounts[BTC],
    )
    assert len(ixs) == 1
    done = escrow.send_all(ixs, escrow.router)
    assert done.ok, done.logs
    assert escrow.position(position).status == 1


def test_decoders_refuse_another_account_type(escrow: Escrow) -> None:
    client = escrow.client
    config = bytes(escrow.svm.get_account(client.config).data)
    with pytest.raises(ValueError, match="not a Position"):
        client.decode_position(config)
    with pytest.raises(ValueError, match="not a Collateral"):
        client.decode_collateral(config[:72])
    with pytest.raises(ValueError, match="64 bytes"):
        ed25519_verify_ix([(Pubkey.new_unique(), bytes(63), b"m")])


def test_price_feed_accounts_are_the_push_oracle_addresses() -> None:
    # Pyth's published address of the SOL/USD feed, shard 0, on every cluster
    expected = Pubkey.from_string("7UVimffxr9ow1uXYxsr4LHAcV58mLzhmwaeKvJ1pjLiE")
    assert price_feed_account(SOL_USD_FEED_ID) == expected
    assert price_feed_account(SOL_USD_FEED_ID, shard=1) != expected
