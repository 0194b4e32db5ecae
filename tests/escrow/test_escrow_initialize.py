"""`initialize`: only the program's upgrade authority creates the config PDA,
which records the router, the USDC mint, the vault, the fee account, the Pyth
receiver and the funding period; every account it trusts is checked. And
`set_market`: only the admin lists markets."""

from escrow_harness import (
    BTC_USD_FEED_ID,
    PERIOD,
    PYTH_RECEIVER_ID,
    UPGRADEABLE_LOADER_ID,
    Escrow,
    without_signature,
)
from solders.account import Account
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
    assert config.router_authority == escrow.router.pubkey()
    assert config.usdc_mint == escrow.usdc_mint
    assert config.vault == escrow.vault
    assert config.vault_authority == escrow.vault_authority
    assert config.fee_account == escrow.fee_account
    assert config.pyth_receiver == PYTH_RECEIVER_ID
    assert (config.funding_period_s, config.accrued_fees) == (PERIOD, 0)
    assert config.bump == Pubkey.find_program_address([b"config"], escrow.program_id)[1]
    assert all(m.max_leverage == 0 for m in config.markets)
    # and it is rent-exempt
    assert account.lamports >= escrow.svm.minimum_balance_for_rent_exemption(len(account.data))


def test_initialize_twice_is_refused(initialized: Escrow) -> None:
    # Given an initialized escrow
    # When the upgrade authority initializes again, with another fee account
    ix = initialized.initialize_ix(feeAccount=initialized.token_account(Keypair().pubkey(), 0))
    outcome = initialized.send(ix, initialized.admin)
    # Then it is refused and the config is unchanged
    initialized.assert_refused(outcome, 6007, "AlreadyInitialized")
    assert initialized.config_state().fee_account == initialized.fee_account


def test_a_stranger_cannot_initialize_a_fresh_deployment(escrow: Escrow) -> None:
    # Given a freshly deployed program, and a stranger watching the chain
    stranger = escrow.funded_keypair()
    # When the stranger initializes it first, naming itself admin
    outcome = escrow.send(escrow.initialize_ix(admin=stranger.pubkey()), stranger)
    # Then it is refused, nothing is created, and the upgrade authority still can
    escrow.assert_refused(outcome, 6024, "NotUpgradeAuthority")
    assert escrow.svm.get_account(escrow.config) is None
    assert escrow.send(escrow.initialize_ix(), escrow.admin).ok


def test_a_forged_program_data_account_is_refused(escrow: Escrow) -> None:
    # Given a stranger's copy of the ProgramData account naming the stranger
    stranger = escrow.funded_keypair()
    real = escrow.svm.get_account(escrow.programdata)
    forged_data = bytearray(real.data)
    forged_data[13:45] = bytes(stranger.pubkey())
    forged = Pubkey.new_unique()
    escrow.svm.set_account(
        forged, Account(real.lamports, bytes(forged_data), UPGRADEABLE_LOADER_ID, False)
    )
    # When the stranger passes it with the real program account
    ix = escrow.initialize_ix(admin=stranger.pubkey(), programData=forged)
    outcome = escrow.send(ix, stranger)
    # Then it is refused: the program account names another ProgramData
    escrow.assert_refused(outcome, 6023, "InvalidProgramData")


def test_another_program_account_is_refused(escrow: Escrow) -> None:
    # When the program account passed is not this program
    outcome = escrow.send(escrow.initialize_ix(program=UPGRADEABLE_LOADER_ID), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6022, "InvalidProgramAccount")


def test_an_immutable_program_has_no_one_to_initialize_it(
    escrow: Escrow, program_so: bytes
) -> None:
    # Given the program deployed with no upgrade authority (made final)
    escrow.deploy(program_so, None)
    # When its former authority initializes it
    outcome = escrow.send(escrow.initialize_ix(), escrow.admin)
    # Then it is refused
    escrow.assert_refused(outcome, 6023, "InvalidProgramData")


def test_admin_lists_markets(initialized: Escrow) -> None:
    # Given an initialized escrow (the fixture listed BTC, ETH, SOL)
    markets = initialized.config_state().markets
    # Then each has its Pyth feed id and maximum leverage, the rest are unlisted
    assert bytes(markets[0].feed_id) == BTC_USD_FEED_ID
    assert [m.max_leverage for m in markets] == [50, 50, 20, 0, 0, 0, 0, 0]
    # When the admin closes SOL-PERP to new positions
    outcome = initialized.send(
        initialized.set_market_ix(2, bytes(markets[2].feed_id), 0), initialized.admin
    )
    # Then its maximum leverage is 0
    assert outcome.ok, outcome.logs
    assert initialized.config_state().markets[2].max_leverage == 0


def test_only_the_admin_lists_markets(initialized: Escrow) -> None:
    # Given a stranger
    stranger = initialized.funded_keypair()
    # When the stranger lists a market with its own feed
    ix = initialized.set_market_ix(3, bytes(32), 100, admin=stranger.pubkey())
    # Then it is refused and nothing changes
    initialized.refuse([ix], [stranger], "NotAdmin")


def test_a_market_past_the_table_is_refused(initialized: Escrow) -> None:
    # Given the config's 8 market slots (0..7)
    # When the admin lists market 8
    ix = initialized.set_market_ix(8, BTC_USD_FEED_ID, 50)
    # Then it is refused and nothing changes
    initialized.refuse([ix], [initialized.admin], "InvalidMarket")


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
