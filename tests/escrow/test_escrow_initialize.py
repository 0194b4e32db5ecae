"""`initialize`: the config PDA records the router, the USDC mint, the vault
and the fee account; every account it trusts is checked."""

from escrow_harness import Escrow, without_signature
from solders.keypair import Keypair
from solders.pubkey import Pubkey

# Two PDA searches (config and vault authority, 1,500 CU per bump tried) dominate.
INITIALIZE_CU_CEILING = 20_000


def test_initialize_creates_the_config(escrow: Escrow) -> None:
    # Given a program with no config
    assert escrow.svm.get_account(escrow.config) is None
    # When the admin initializes it
    outcome = escrow.send(escrow.initialize_ix(), escrow.admin)
    # Then the config PDA, owned by the program, records every address
    assert outcome.ok, outcome.logs
    assert outcome.compute_units <= INITIALIZE_CU_CEILING
    account = escrow.svm.get_account(escrow.config)
    assert account.owner == escrow.program_id
    config = escrow.config_state()
    assert config.admin == escrow.admin.pubkey()
    assert config.router_authority == escrow.router
    assert config.usdc_mint == escrow.usdc_mint
    assert config.vault == escrow.vault
    assert config.vault_authority == escrow.vault_authority
    assert config.fee_account == escrow.fee_account
    assert config.bump == Pubkey.find_program_address([b"config"], escrow.program_id)[1]
    assert config.market_count == 0
    # and it is rent-exempt
    assert account.lamports >= escrow.svm.minimum_balance_for_rent_exemption(len(account.data))


def test_initialize_twice_is_refused(initialized: Escrow) -> None:
    # Given an initialized escrow
    # When anyone initializes again, even with other addresses
    attacker = initialized.funded_keypair()
    ix = initialized.initialize_ix(admin=attacker.pubkey())
    outcome = initialized.send(ix, attacker)
    # Then it is refused and the config is unchanged
    initialized.assert_refused(outcome, 6007, "AlreadyInitialized")
    assert initialized.config_state().admin == initialized.admin.pubkey()


def test_config_must_be_the_pda(escrow: Escrow) -> None:
    # Given an address that is not the ["config"] PDA
    # When it is passed as the config
    outcome = escrow.send(escrow.initialize_ix(config=Pubkey.new_unique()), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6006, "InvalidPda")


def test_admin_must_sign(escrow: Escrow) -> None:
    # Given a fee payer other than the admin, and the admin not signing
    payer = escrow.funded_keypair()
    ix = without_signature(escrow.initialize_ix(), escrow.admin.pubkey())
    # When the instruction is sent
    outcome = escrow.send(ix, payer)
    # Then it is refused
    escrow.assert_refused(outcome, 6002, "MissingSigner")


def test_vault_must_belong_to_the_vault_pda(escrow: Escrow) -> None:
    # Given a USDC token account whose token owner is not the ["vault"] PDA
    fake_vault = escrow.token_account(Keypair().pubkey(), 0)
    # When it is passed as the vault
    outcome = escrow.send(escrow.initialize_ix(vault=fake_vault), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6010, "InvalidVaultAuthority")


def test_vault_must_hold_the_usdc_mint(escrow: Escrow) -> None:
    # Given a vault-PDA token account of another mint
    other_mint = escrow.new_mint(decimals=6)
    fake_vault = escrow.token_account(escrow.vault_authority, 0, mint=other_mint)
    # When it is passed as the vault
    outcome = escrow.send(escrow.initialize_ix(vault=fake_vault), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6008, "InvalidMint")


def test_vault_with_a_delegate_is_refused(escrow: Escrow) -> None:
    # Given a vault-PDA USDC account with a delegate (who could spend it)
    vault = escrow.token_account(escrow.vault_authority, 0, delegate=True)
    # When it is passed as the vault
    outcome = escrow.send(escrow.initialize_ix(vault=vault), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6009, "InvalidVault")


def test_mint_must_have_six_decimals(escrow: Escrow) -> None:
    # Given a mint with 9 decimals and a vault of that mint
    mint = escrow.new_mint(decimals=9)
    vault = escrow.token_account(escrow.vault_authority, 0, mint=mint)
    # When it is passed as the USDC mint
    outcome = escrow.send(escrow.initialize_ix(usdcMint=mint, vault=vault), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6008, "InvalidMint")


def test_fee_account_must_hold_usdc(escrow: Escrow) -> None:
    # Given a fee account of another mint
    fee = escrow.token_account(Keypair().pubkey(), 0, mint=escrow.new_mint())
    # When it is passed as the fee account
    outcome = escrow.send(escrow.initialize_ix(feeAccount=fee), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6008, "InvalidMint")


def test_fee_account_cannot_be_the_vault(escrow: Escrow) -> None:
    # When the vault is also passed as the fee account
    outcome = escrow.send(escrow.initialize_ix(feeAccount=escrow.vault), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6018, "DuplicateAccount")


def test_token_program_must_be_spl_token(escrow: Escrow) -> None:
    # When another program is passed as SPL Token
    outcome = escrow.send(escrow.initialize_ix(tokenProgram=escrow.program_id), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6012, "InvalidTokenProgram")
