//! `withdraw`: the agent takes USDC from its own free collateral; the vault
//! PDA signs the transfer out of the vault.

use super::{check_distinct, check_key, check_signer, check_token_program, check_writable};
use crate::account::AccountView;
use crate::cpi::{Signer, Transfer};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::AmountArgs;
use crate::state::config::VAULT_AUTHORITY_SEED;
use crate::state::{Collateral, Config, ProgramAccount, TokenAccount};
use crate::syscalls::{keys_eq, Seed};
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let amount = AmountArgs::unpack(data)?.amount;
    let (agent, collateral, vault, destination, vault_authority, config, token_program) =
        match accounts {
            [a, b, c, d, e, f, g, ..] => (a, b, c, d, e, f, g),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    check_signer(agent)?;
    let config_state = Config::load(config, program_id)?;
    check_distinct(collateral, config)?;
    // SAFETY: the collateral is the only account of this program written here,
    // and it is not the config (checked above), the only other one read.
    let collateral_state = unsafe { Collateral::load_mut(collateral, program_id) }?;
    if !keys_eq(collateral_state.agent(), agent.key()) {
        return Err(EscrowError::CollateralMismatch);
    }
    collateral_state.debit_free(amount)?;
    pay_out(config_state, [vault, destination, vault_authority, token_program], amount)
}

/// Moves `amount` from the vault to `destination` (any USDC account but the
/// vault), the vault PDA signing. Accounts: vault, destination, vault
/// authority, token program.
#[inline(always)]
pub fn pay_out(config: &Config, accounts: [&AccountView; 4], amount: u64) -> ProgramResult {
    let [vault, destination, vault_authority, token_program] = accounts;
    check_token_program(token_program)?;
    check_key(vault, config.vault(), EscrowError::InvalidVault)?;
    check_writable(vault)?;
    check_key(vault_authority, config.vault_authority(), EscrowError::InvalidVaultAuthority)?;
    let destination_state = TokenAccount::load(destination)?;
    if !keys_eq(destination_state.mint(), config.usdc_mint()) {
        return Err(EscrowError::InvalidMint);
    }
    check_writable(destination)?;
    // Withdrawing into the vault would debit the agent and move nothing.
    check_distinct(destination, vault)?;
    let bump = [config.vault_authority_bump()];
    let seeds = [Seed::new(VAULT_AUTHORITY_SEED), Seed::new(&bump)];
    Transfer { from: vault, to: destination, authority: vault_authority, amount }
        .invoke_signed(&[Signer::new(&seeds)])
}
