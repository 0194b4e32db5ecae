"""`withdraw_with_consent`: the router relays an agent's signed withdraw
consent; the consent fixes the destination and the amount, and counts."""

import pytest
from escrow_harness import USDC, Escrow
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

# This program's own units (SPL Token's excluded), the consent check included.
WITHDRAW_CONSENT_OWN_CU_CEILING = 3_000


@pytest.fixture
def alice(initialized: Escrow) -> tuple[Keypair, Pubkey]:
    return initialized.funded_agent(50 * USDC)


def relayed(escrow: Escrow, agent: Keypair, to: Pubkey, value: int, withdrawals: int, **signed):
    """The consent (with `signed` overriding what the agent signs) and the instruction."""
    expires_at = escrow.now + 30
    terms = {
        "destination": to,
        "amount": value,
        "withdrawals": withdrawals,
        "expires_at": expires_at,
    }
    consent = escrow.withdraw_consent_ix(agent, **(terms | signed))
    ix = escrow.withdraw_with_consent_ix(agent.pubkey(), to, value, withdrawals, expires_at)
    return [consent, ix]


def test_a_relayed_withdrawal_moves_usdc_and_counts(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When the router relays Alice's consent to withdraw 20 USDC to her wallet
    outcome = escrow.send_all(relayed(escrow, agent, wallet, 20 * USDC, 0), escrow.router)
    # Then it moved, and her withdrawal counter advanced
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(wallet) == 20 * USDC
    collateral = escrow.collateral(agent.pubkey())
    assert (collateral.free, collateral.withdrawals) == (30 * USDC, 1)
    own = outcome.compute_units - outcome.inner_units(TOKEN_PROGRAM_ID)
    assert own <= WITHDRAW_CONSENT_OWN_CU_CEILING
    # and the next one is signed with the new count
    assert escrow.send_all(relayed(escrow, agent, wallet, 5 * USDC, 1), escrow.router).ok
    assert escrow.collateral(agent.pubkey()).withdrawals == 2


def test_a_replayed_withdraw_consent_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Alice's consent to withdraw 10 USDC, relayed once
    ixs = relayed(escrow, agent, wallet, 10 * USDC, 0)
    assert escrow.send_all(ixs, escrow.router).ok
    # When the same consent is relayed again
    # Then it is refused (`withdrawals` has moved on) and nothing moves
    escrow.refuse(ixs, [escrow.router], "WithdrawConsentReplayed")


def test_another_destination_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    loot = escrow.token_account(Keypair().pubkey(), 0)
    # Given Alice's consent for her wallet, relayed to another account
    ixs = relayed(escrow, agent, loot, 10 * USDC, 0, destination=wallet)
    escrow.refuse(ixs, [escrow.router], "WithdrawConsentMismatch")


def test_another_amount_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Alice's consent to withdraw 10 USDC, relayed as a withdrawal of 50
    ixs = relayed(escrow, agent, wallet, 50 * USDC, 0, amount=10 * USDC)
    # When the router sends it
    # Then it is refused and nothing moves
    escrow.refuse(ixs, [escrow.router], "WithdrawConsentMismatch")


def test_a_consent_by_another_key_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Alice's withdrawal relayed with Mallory's consent to the same terms
    mallory = Keypair()
    ixs = relayed(escrow, agent, wallet, 10 * USDC, 0)
    ixs[0] = relayed(escrow, mallory, wallet, 10 * USDC, 0)[0]
    # When the router sends it
    # Then it is refused and nothing moves
    escrow.refuse(ixs, [escrow.router], "ConsentWrongSigner")


def test_an_expired_withdraw_consent_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Alice's consent, and the Clock at its deadline
    ixs = relayed(escrow, agent, wallet, 10 * USDC, 0)
    escrow.set_time(escrow.now + 30)
    # When the router relays it
    # Then it is refused and nothing moves
    escrow.refuse(ixs, [escrow.router], "ConsentExpired")


def test_no_more_than_free_is_withdrawn(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Alice's consent to withdraw 1 micro-USDC more than her 50 USDC free
    ixs = relayed(escrow, agent, wallet, 50 * USDC + 1, 0)
    # When the router relays it
    # Then it is refused and nothing moves
    escrow.refuse(ixs, [escrow.router], "InsufficientFreeCollateral")
