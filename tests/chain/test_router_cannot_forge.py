"""A router that forges a consent, or changes the terms after the agents signed, is
refused by the program itself (issue 10): driven through the chain client directly,
with the router's own key, on the local chain, as a dishonest daemon would.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from solders.keypair import Keypair

from perpd.chain._backend import ChainRefused
from perpd.chain._client import QuoteTerms, RequestTerms
from perpd.chain._local import LocalChain
from tests.chain.test_local import BTC, USDC, World, sign

ALICE_NONCE = 5


@pytest.fixture
def funded() -> tuple[World, LocalChain, Keypair, Keypair]:
    world = World()
    chain = world.chain()
    alice, bob = Keypair(), Keypair()
    for agent in (alice, bob):
        chain.mint_to_and_deposit(agent.pubkey(), 5_000 * USDC)
    return world, chain, alice, bob


def _terms(world: World, alice: Keypair, bob: Keypair) -> tuple[RequestTerms, QuoteTerms]:
    request = RequestTerms(
        alice.pubkey(), ALICE_NONCE, BTC, 0, 10_000 * USDC, 20, 1_000, 0, int(world.now) + 30
    )
    return request, QuoteTerms(bob.pubkey(), 500, 600 * USDC, int(world.now) + 10)


def _lock(
    chain: LocalChain,
    request: RequestTerms,
    request_sig: bytes,
    quote: QuoteTerms,
    quote_sig: bytes,
) -> None:
    ixs = chain.client.lock_position_ixs(
        router=chain.router.pubkey(),
        request=request,
        request_sig=request_sig,
        quote=quote,
        quote_sig=quote_sig,
        price_account=chain.price_account(BTC),
    )
    chain.execute(ixs, prices=[BTC])


def _untouched(chain: LocalChain, alice: Keypair) -> bool:
    address, _ = chain.client.position_address(alice.pubkey(), ALICE_NONCE)
    return chain.account(address) is None


def test_a_consent_the_router_signed_itself_is_refused(
    funded: tuple[World, LocalChain, Keypair, Keypair],
) -> None:
    world, chain, alice, bob = funded
    request, quote = _terms(world, alice, bob)
    program = chain.client.program_id
    # The router signs the request consent with its own key, in alice's name
    forged = sign(chain.router, request.consent(program))
    with pytest.raises(ChainRefused):
        _lock(chain, request, forged, quote, sign(bob, quote.consent(program, request)))
    assert _untouched(chain, alice)


def test_terms_changed_after_signing_are_refused(
    funded: tuple[World, LocalChain, Keypair, Keypair],
) -> None:
    world, chain, alice, bob = funded
    request, quote = _terms(world, alice, bob)
    program = chain.client.program_id
    request_sig = sign(alice, request.consent(program))
    quote_sig = sign(bob, quote.consent(program, request))
    # A larger size than alice signed, a better rate than bob signed, a longer leverage
    for changed_request, changed_quote in (
        (replace(request, size=request.size * 2), quote),
        (request, replace(quote, rate=1)),
        (replace(request, leverage=10), quote),
    ):
        with pytest.raises(ChainRefused):
            _lock(chain, changed_request, request_sig, changed_quote, quote_sig)
        assert _untouched(chain, alice)
    # while the terms as signed lock
    _lock(chain, request, request_sig, quote, quote_sig)
    assert not _untouched(chain, alice)
