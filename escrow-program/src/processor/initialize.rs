//! `initialize`: creates the config PDA and records who and what the escrow
//! trusts: the router authority, the USDC mint, the vault, the fee account.
//!
//! The vault is created beforehand (e.g. the associated token account of the
//! `["vault"]` PDA): this instruction checks it rather than creating it, so the
//! program needs no token-account initialisation CPI. Only the program's
//! upgrade authority may call it (checked against the upgradeable loader's
//! ProgramData account), once.

use super::{check_distinct, check_signer, check_system_program, check_token_program, check_writable};
use crate::account::AccountView;
use crate::cpi::{create_pda_account, Signer};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::Args;
use crate::state::loader::{programdata_address, upgrade_authority};
use crate::state::config::{ConfigKeys, CONFIG_SEED, VAULT_AUTHORITY_SEED};
use crate::state::{Config, Mint, ProgramAccount, TokenAccount};
use crate::syscalls::{find_program_address, keys_eq, Seed};
use crate::Pubkey;

/// USDC has 6 decimals; every amount in perpd is micro-USDC.
pub const USDC_DECIMALS: u8 = 6;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let mut args = Args::new(data);
    let (router_authority, pyth_receiver) = (args.key()?, args.key()?);
    let funding_period_s = args.i64()?;
    args.finish()?;
    if funding_period_s <= 0 {
        return Err(EscrowError::InvalidFundingPeriod);
    }
    let (admin, config, vault, usdc_mint, fee_account, token_program, system_program, program, programdata) =
        match accounts {
            [a, b, c, d, e, f, g, h, i, ..] => (a, b, c, d, e, f, g, h, i),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    check_signer(admin)?;
    let programdata_key = programdata_address(program, program_id)?;
    if !keys_eq(upgrade_authority(programdata, programdata_key)?, admin.key()) {
        return Err(EscrowError::NotUpgradeAuthority);
    }
    check_writable(admin)?;
    check_writable(config)?;
    check_distinct(admin, config)?;
    check_token_program(token_program)?;
    check_system_program(system_program)?;

    let mut config_key = [0u8; 32];
    let config_bump = find_program_address(&[Seed::new(CONFIG_SEED)], program_id, &mut config_key)
        .ok_or(EscrowError::InvalidPda)?;
    if !keys_eq(config.key(), &config_key) {
        return Err(EscrowError::InvalidPda);
    }

    let mint = Mint::load(usdc_mint)?;
    if mint.decimals() != USDC_DECIMALS {
        return Err(EscrowError::InvalidMint);
    }

    let mut vault_authority = [0u8; 32];
    let vault_authority_bump =
        find_program_address(&[Seed::new(VAULT_AUTHORITY_SEED)], program_id, &mut vault_authority)
            .ok_or(EscrowError::InvalidPda)?;
    let vault_state = TokenAccount::load(vault).map_err(|_| EscrowError::InvalidVault)?;
    if !keys_eq(vault_state.mint(), usdc_mint.key()) {
        return Err(EscrowError::InvalidMint);
    }
    if !keys_eq(vault_state.owner(), &vault_authority) {
        return Err(EscrowError::InvalidVaultAuthority);
    }
    // A delegate could spend the vault; a close authority could close it once empty.
    if vault_state.has_delegate() || vault_state.has_close_authority() || vault_state.is_native() {
        return Err(EscrowError::InvalidVault);
    }

    let fee_state = TokenAccount::load(fee_account).map_err(|_| EscrowError::InvalidFeeAccount)?;
    if !keys_eq(fee_state.mint(), usdc_mint.key()) {
        return Err(EscrowError::InvalidMint);
    }
    check_distinct(vault, fee_account)?;

    let bump = [config_bump];
    let seeds = [Seed::new(CONFIG_SEED), Seed::new(&bump)];
    create_pda_account(admin, config, Config::LEN, program_id, &Signer::new(&seeds))?;

    // SAFETY: the config was just created by this instruction; the only other
    // account written (admin) is a different account (checked above), and no
    // other view of the config's data exists.
    let state = Config::init(unsafe { config.data_mut() })?;
    let keys = ConfigKeys {
        admin: admin.key(),
        router_authority,
        usdc_mint: usdc_mint.key(),
        vault: vault.key(),
        vault_authority: &vault_authority,
        fee_account: fee_account.key(),
        pyth_receiver,
    };
    state.set_up(&keys, funding_period_s, [config_bump, vault_authority_bump]);
    Ok(())
}
