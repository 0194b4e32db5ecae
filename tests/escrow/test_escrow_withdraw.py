"""`withdraw`: only the agent itself takes USDC out of its own free
collateral; the vault PDA signs the SPL Token transfer (invoke_signed)."""

import pytest
from escrow_harness import USDC, Escrow, without_signature
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

# Compute units of this program alone (SPL Token's own units excluded), CPI
# overhead (1,000 CU per invoke) included.
WITHDRAW_OWN_CU_CEILING = 2_000


@pytest.fixture
def alice(initialized: Escrow) -> tuple[Keypair, Pubkey]:
    """Alice with 50 USDC of free collateral and an empty wallet."""
    return initialized.funded_agent(50 * USDC)


def assert_unchanged(escrow: Escrow, agent: Pubkey, wallet: Pubkey) -> None:
    """Alice's 50 USDC are still in the vault and still free."""
    assert escrow.free(agent) == 50 * USDC
    assert escrow.token_balance(escrow.vault) == 50 * USDC
    assert escrow.token_balance(wallet) == 0


def test_withdraw_moves_usdc_back(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When Alice withdraws 20 of her 50 USDC
    outcome = escrow.send(escrow.withdraw_ix(agent.pubkey(), wallet, 20 * USDC), agent)
    # Then 20 USDC moved from the vault to her wallet and 30 stay free
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(wallet) == 20 * USDC
    assert escrow.token_balance(escrow.vault) == 30 * USDC
    collateral = escrow.collateral(agent.pubkey())
    assert (collateral.free, collateral.locked) == (30 * USDC, 0)
    own = outcome.compute_units - outcome.inner_units(TOKEN_PROGRAM_ID)
    assert own <= WITHDRAW_OWN_CU_CEILING


def test_withdraw_everything_to_any_usdc_account(initialized: Escrow, alice) -> None:
    escrow, (agent, _) = initialized, alice
    # Given a USDC account of someone else (withdrawals may pay anyone)
    elsewhere = escrow.token_account(Keypair().pubkey(), 0)
    # When Alice withdraws all of it there
    outcome = escrow.send(escrow.withdraw_ix(agent.pubkey(), elsewhere, 50 * USDC), agent)
    # Then the vault is empty and her free collateral is 0
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(elsewhere) == 50 * USDC
    assert escrow.token_balance(escrow.vault) == 0
    assert escrow.free(agent.pubkey()) == 0


def test_withdraw_more_than_free_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When Alice withdraws one micro-USDC more than she has
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 50 * USDC + 1)
    outcome = escrow.send(ix, agent)
    # Then it is refused and nothing moves
    escrow.assert_refused(outcome, 6015, "InsufficientFreeCollateral")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_withdraw_signed_by_someone_else_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Mallory, who signs as the agent but passes Alice's collateral
    mallory = escrow.funded_keypair()
    loot = escrow.token_account(mallory.pubkey(), 0)
    ix = escrow.withdraw_ix(
        mallory.pubkey(), loot, 50 * USDC, collateral=escrow.collateral_address(agent.pubkey())
    )
    # When she sends it
    outcome = escrow.send(ix, mallory)
    # Then it is refused and nothing moves
    escrow.assert_refused(outcome, 6014, "CollateralMismatch")
    assert_unchanged(escrow, agent.pubkey(), wallet)
    assert escrow.token_balance(loot) == 0


def test_withdraw_without_the_agents_signature_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given Mallory paying the fee for a withdrawal naming Alice, unsigned by Alice
    mallory = escrow.funded_keypair()
    loot = escrow.token_account(mallory.pubkey(), 0)
    ix = without_signature(escrow.withdraw_ix(agent.pubkey(), loot, 50 * USDC), agent.pubkey())
    # When she sends it
    outcome = escrow.send(ix, mallory)
    # Then it is refused
    escrow.assert_refused(outcome, 6002, "MissingSigner")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_collateral_of_another_agent_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, _) = initialized, alice
    # Given Bob, with 1 USDC of his own
    bob, bob_wallet = escrow.funded_agent(1 * USDC)
    # When Bob signs a withdrawal of 50 USDC from Alice's collateral account
    ix = escrow.withdraw_ix(
        bob.pubkey(), bob_wallet, 50 * USDC, collateral=escrow.collateral_address(agent.pubkey())
    )
    outcome = escrow.send(ix, bob)
    # Then it is refused
    escrow.assert_refused(outcome, 6014, "CollateralMismatch")
    assert escrow.free(agent.pubkey()) == 50 * USDC
    assert escrow.free(bob.pubkey()) == 1 * USDC


def test_fake_vault_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given another token account of the vault PDA, holding USDC
    fake_vault = escrow.token_account(escrow.vault_authority, 100 * USDC)
    # When Alice withdraws from it
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 10 * USDC, vault=fake_vault)
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6009, "InvalidVault")
    assert_unchanged(escrow, agent.pubkey(), wallet)
    assert escrow.token_balance(fake_vault) == 100 * USDC


def test_fake_mint_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given a destination account of another mint
    other = escrow.token_account(agent.pubkey(), 0, mint=escrow.new_mint())
    # When Alice withdraws into it
    outcome = escrow.send(escrow.withdraw_ix(agent.pubkey(), other, 10 * USDC), agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6008, "InvalidMint")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_fake_vault_authority_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When the vault authority passed is not the ["vault"] PDA
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 10 * USDC, vaultAuthority=agent.pubkey())
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6010, "InvalidVaultAuthority")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_collateral_owned_by_another_program_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # Given a copy of Alice's collateral, with a fortune, owned by another program
    forged = bytearray(escrow.svm.get_account(escrow.collateral_address(agent.pubkey())).data)
    forged[40:48] = (10**6 * USDC).to_bytes(8, "little")
    fake = Pubkey.new_unique()
    escrow.set_account(fake, bytes(forged), Keypair().pubkey())
    # When Alice withdraws against it
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 50 * USDC + 1, collateral=fake)
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6004, "InvalidAccountOwner")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_config_passed_as_collateral_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When the config account is passed again as the collateral account
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 10 * USDC, collateral=escrow.config)
    outcome = escrow.send(ix, agent)
    # Then it is refused as a duplicate
    escrow.assert_refused(outcome, 6018, "DuplicateAccount")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_withdraw_into_the_vault_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When the destination is the vault itself (a debit that moves nothing)
    ix = escrow.withdraw_ix(agent.pubkey(), escrow.vault, 10 * USDC)
    outcome = escrow.send(ix, agent)
    # Then it is refused as a duplicate
    escrow.assert_refused(outcome, 6018, "DuplicateAccount")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_read_only_collateral_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When the collateral account is passed read-only
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 10 * USDC)
    metas = list(ix.accounts)
    metas[1] = AccountMeta(metas[1].pubkey, is_signer=False, is_writable=False)
    outcome = escrow.send(Instruction(ix.program_id, ix.data, metas), agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6003, "NotWritable")
    assert_unchanged(escrow, agent.pubkey(), wallet)


def test_fake_token_program_is_refused(initialized: Escrow, alice) -> None:
    escrow, (agent, wallet) = initialized, alice
    # When another program is passed as SPL Token
    ix = escrow.withdraw_ix(agent.pubkey(), wallet, 10 * USDC, tokenProgram=escrow.program_id)
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6012, "InvalidTokenProgram")
    assert_unchanged(escrow, agent.pubkey(), wallet)
