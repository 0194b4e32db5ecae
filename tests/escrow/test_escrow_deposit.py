"""`deposit`: USDC moves from the depositor's token account into the vault by
an SPL Token CPI and is credited to an agent's free collateral; the first
deposit creates the agent's collateral PDA, paid by the depositor."""

from escrow_harness import USDC, Escrow, without_signature
from solders.account import Account
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.constants import TOKEN_PROGRAM_ID

# Compute units of this program alone (SPL Token's own units excluded), CPI
# overhead (1,000 CU per invoke) included.
DEPOSIT_OWN_CU_CEILING = 2_000
# The first deposit also derives the collateral PDA (1,500 CU per bump tried)
# and creates it by a System Program CPI.
FIRST_DEPOSIT_OWN_CU_CEILING = 2_000 + 1_000 + 1_500 * 8 + 200


def test_first_deposit_creates_collateral_and_moves_usdc(initialized: Escrow) -> None:
    escrow = initialized
    # Given an agent with 100 USDC in its wallet and no collateral account
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 100 * USDC)
    assert escrow.collateral(agent.pubkey()) is None
    # When it deposits 40 USDC
    outcome = escrow.send(escrow.deposit_ix(agent, wallet, agent.pubkey(), 40 * USDC), agent)
    # Then 40 USDC moved into the vault and are its free collateral
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(wallet) == 60 * USDC
    assert escrow.token_balance(escrow.vault) == 40 * USDC
    collateral = escrow.collateral(agent.pubkey())
    assert collateral.agent == agent.pubkey()
    assert (collateral.free, collateral.locked) == (40 * USDC, 0)
    address, bump = Pubkey.find_program_address(
        [b"collateral", bytes(agent.pubkey())], escrow.program_id
    )
    assert collateral.bump == bump
    account = escrow.svm.get_account(address)
    assert account.owner == escrow.program_id
    assert account.lamports >= escrow.svm.minimum_balance_for_rent_exemption(len(account.data))
    own = outcome.compute_units - outcome.inner_units(TOKEN_PROGRAM_ID)
    assert own <= FIRST_DEPOSIT_OWN_CU_CEILING


def test_next_deposit_credits_the_same_account(initialized: Escrow) -> None:
    escrow = initialized
    # Given an agent with 10 USDC of collateral and 5 more in its wallet
    agent, _ = escrow.funded_agent(10 * USDC)
    refill = escrow.token_account(agent.pubkey(), 5 * USDC)
    # When it deposits the 5
    outcome = escrow.send(escrow.deposit_ix(agent, refill, agent.pubkey(), 5 * USDC), agent)
    # Then its free collateral is 15 and the vault holds 15
    assert outcome.ok, outcome.logs
    assert escrow.free(agent.pubkey()) == 15 * USDC
    assert escrow.token_balance(escrow.vault) == 15 * USDC
    own = outcome.compute_units - outcome.inner_units(TOKEN_PROGRAM_ID)
    assert own <= DEPOSIT_OWN_CU_CEILING


def test_deposit_for_another_agent_is_a_gift(initialized: Escrow) -> None:
    escrow = initialized
    # Given a faucet with USDC and an agent that never touched the escrow
    faucet = escrow.funded_keypair()
    faucet_wallet = escrow.token_account(faucet.pubkey(), 1_000 * USDC)
    agent = escrow.funded_keypair()
    # When the faucet deposits 25 USDC for the agent
    ix = escrow.deposit_ix(faucet, faucet_wallet, agent.pubkey(), 25 * USDC)
    outcome = escrow.send(ix, faucet)
    # Then the agent's collateral exists (paid by the faucet) and holds the 25
    assert outcome.ok, outcome.logs
    assert escrow.free(agent.pubkey()) == 25 * USDC
    assert escrow.collateral(faucet.pubkey()) is None
    # and the agent, not the faucet, can withdraw them
    wallet = escrow.token_account(agent.pubkey(), 0)
    outcome = escrow.send(escrow.withdraw_ix(agent.pubkey(), wallet, 25 * USDC), agent)
    assert outcome.ok, outcome.logs
    assert escrow.token_balance(wallet) == 25 * USDC


def test_deposit_works_when_the_collateral_address_was_prefunded(initialized: Escrow) -> None:
    escrow = initialized
    # Given someone sent lamports to the agent's collateral address beforehand
    # (which makes the System Program's CreateAccount fail)
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 3 * USDC)
    address = escrow.collateral_address(agent.pubkey())
    escrow.svm.set_account(address, Account(1_000, b"", Pubkey.default(), False))
    # When the agent deposits
    outcome = escrow.send(escrow.deposit_ix(agent, wallet, agent.pubkey(), 3 * USDC), agent)
    # Then the account is created all the same
    assert outcome.ok, outcome.logs
    assert escrow.free(agent.pubkey()) == 3 * USDC


def assert_nothing_moved(
    escrow: Escrow, wallet: Pubkey, agent: Pubkey, wallet_usdc: int, free: int
) -> None:
    assert escrow.token_balance(wallet) == wallet_usdc
    assert escrow.token_balance(escrow.vault) == free
    assert escrow.free(agent) == free


def test_fake_vault_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given a USDC token account that is not the configured vault
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 10 * USDC)
    fake_vault = escrow.token_account(escrow.vault_authority, 0)
    # When the deposit names it as the vault
    ix = escrow.deposit_ix(agent, wallet, agent.pubkey(), 10 * USDC, vault=fake_vault)
    outcome = escrow.send(ix, agent)
    # Then it is refused and nothing moves
    escrow.assert_refused(outcome, 6009, "InvalidVault")
    assert_nothing_moved(escrow, wallet, agent.pubkey(), 10 * USDC, 0)
    assert escrow.token_balance(fake_vault) == 0


def test_fake_mint_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given a wallet of another mint
    agent = escrow.funded_keypair()
    fake = escrow.token_account(agent.pubkey(), 10 * USDC, mint=escrow.new_mint())
    # When the agent deposits from it
    outcome = escrow.send(escrow.deposit_ix(agent, fake, agent.pubkey(), 10 * USDC), agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6008, "InvalidMint")
    assert_nothing_moved(escrow, fake, agent.pubkey(), 10 * USDC, 0)


def test_collateral_of_another_agent_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given Bob's existing collateral account
    bob, _ = escrow.funded_agent(1 * USDC)
    alice = escrow.funded_keypair()
    wallet = escrow.token_account(alice.pubkey(), 10 * USDC)
    # When Alice deposits for herself into Bob's collateral account
    ix = escrow.deposit_ix(
        alice, wallet, alice.pubkey(), 10 * USDC, collateral=escrow.collateral_address(bob.pubkey())
    )
    outcome = escrow.send(ix, alice)
    # Then it is refused: Bob's balance and Alice's wallet are unchanged
    escrow.assert_refused(outcome, 6014, "CollateralMismatch")
    assert escrow.free(bob.pubkey()) == 1 * USDC
    assert escrow.token_balance(wallet) == 10 * USDC


def test_collateral_not_at_the_pda_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given a fresh address that is not the agent's ["collateral", agent] PDA
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 10 * USDC)
    # When it is passed as the agent's collateral account
    ix = escrow.deposit_ix(agent, wallet, agent.pubkey(), 10 * USDC, collateral=Pubkey.new_unique())
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6006, "InvalidPda")


def test_collateral_owned_by_another_program_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given, at the agent's collateral address, a well-formed collateral account
    # owned by another program
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 10 * USDC)
    other, _ = escrow.funded_agent(7 * USDC)
    forged = bytearray(escrow.svm.get_account(escrow.collateral_address(other.pubkey())).data)
    forged[8:40] = bytes(agent.pubkey())
    address = escrow.collateral_address(agent.pubkey())
    escrow.set_account(address, bytes(forged), Keypair().pubkey())
    # When the agent deposits into it
    outcome = escrow.send(escrow.deposit_ix(agent, wallet, agent.pubkey(), 10 * USDC), agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6004, "InvalidAccountOwner")
    assert escrow.token_balance(wallet) == 10 * USDC


def test_config_owned_by_another_program_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    # Given a copy of the config, naming a vault the attacker controls, owned by another program
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 10 * USDC)
    thief_vault = escrow.token_account(agent.pubkey(), 0)
    forged = bytearray(escrow.svm.get_account(escrow.config).data)
    forged[8 + 3 * 32 : 8 + 4 * 32] = bytes(thief_vault)
    fake_config = Pubkey.new_unique()
    escrow.set_account(fake_config, bytes(forged), Keypair().pubkey())
    # When a deposit names it as the config
    ix = escrow.deposit_ix(
        agent, wallet, agent.pubkey(), 10 * USDC, config=fake_config, vault=thief_vault
    )
    outcome = escrow.send(ix, agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6004, "InvalidAccountOwner")


def test_depositor_must_sign(initialized: Escrow) -> None:
    escrow = initialized
    # Given Alice's wallet, and Mallory paying the fee
    alice = escrow.funded_keypair()
    wallet = escrow.token_account(alice.pubkey(), 10 * USDC)
    mallory = escrow.funded_keypair()
    ix = without_signature(
        escrow.deposit_ix(alice, wallet, mallory.pubkey(), 10 * USDC), alice.pubkey()
    )
    # When Mallory sends a deposit from Alice's wallet without Alice's signature
    outcome = escrow.send(ix, mallory)
    # Then it is refused
    escrow.assert_refused(outcome, 6002, "MissingSigner")
    assert escrow.token_balance(wallet) == 10 * USDC


def test_source_must_belong_to_the_depositor(initialized: Escrow) -> None:
    escrow = initialized
    # Given Alice's wallet
    alice = escrow.funded_keypair()
    wallet = escrow.token_account(alice.pubkey(), 10 * USDC)
    mallory = escrow.funded_keypair()
    # When Mallory signs a deposit from it
    outcome = escrow.send(escrow.deposit_ix(mallory, wallet, mallory.pubkey(), 10 * USDC), mallory)
    # Then it is refused
    escrow.assert_refused(outcome, 6020, "SourceOwnerMismatch")


def test_zero_amount_is_refused(initialized: Escrow) -> None:
    escrow = initialized
    agent = escrow.funded_keypair()
    wallet = escrow.token_account(agent.pubkey(), 10 * USDC)
    # When an agent deposits nothing
    outcome = escrow.send(escrow.deposit_ix(agent, wallet, agent.pubkey(), 0), agent)
    # Then it is refused
    escrow.assert_refused(outcome, 6016, "InvalidAmount")
