//! `deposit`: USDC from the depositor's token account into the vault, credited
//! to the free collateral of any agent (a gift when it is not the depositor's).

use super::{
    check_distinct, check_key, check_signer, check_system_program, check_token_program,
    check_writable, is_unallocated,
};
use crate::account::AccountView;
use crate::cpi::{create_pda_account, Signer, Transfer};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::AmountArgs;
use crate::state::collateral::COLLATERAL_SEED;
use crate::state::{Collateral, Config, ProgramAccount, TokenAccount};
use crate::syscalls::{find_program_address, keys_eq, Seed};
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let amount = AmountArgs::unpack(data)?.amount;
    let (depositor, source, vault, collateral, agent, config, token_program, system_program) =
        match accounts {
            [a, b, c, d, e, f, g, h, ..] => (a, b, c, d, e, f, g, h),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    check_signer(depositor)?;
    check_token_program(token_program)?;

    let config_state = Config::load(config, program_id)?;
    check_key(vault, config_state.vault(), EscrowError::InvalidVault)?;
    check_writable(vault)?;

    let source_state = TokenAccount::load(source)?;
    if !keys_eq(source_state.mint(), config_state.usdc_mint()) {
        return Err(EscrowError::InvalidMint);
    }
    if !keys_eq(source_state.owner(), depositor.key()) {
        return Err(EscrowError::SourceOwnerMismatch);
    }
    check_writable(source)?;
    check_distinct(source, vault)?;

    check_writable(collateral)?;
    check_distinct(collateral, config)?;
    if is_unallocated(collateral) {
        open_collateral(program_id, depositor, collateral, agent, system_program)?;
    }
    // SAFETY: the collateral is the only account of this program written here,
    // and it is not the config (checked above), the only other account of this
    // program that is read; SPL Token's CPI below does not receive it.
    let collateral_state = unsafe { Collateral::load_mut(collateral, program_id) }?;
    if !keys_eq(collateral_state.agent(), agent.key()) {
        return Err(EscrowError::CollateralMismatch);
    }
    collateral_state.credit_free(amount)?;

    Transfer { from: source, to: vault, authority: depositor, amount }.invoke_signed(&[])
}

/// Creates `agent`'s collateral account at its PDA, paid by `payer`.
#[inline(never)]
fn open_collateral(
    program_id: &Pubkey,
    payer: &AccountView,
    collateral: &AccountView,
    agent: &AccountView,
    system_program: &AccountView,
) -> ProgramResult {
    check_writable(payer)?;
    check_system_program(system_program)?;
    let mut expected = [0u8; 32];
    let seeds = [Seed::new(COLLATERAL_SEED), Seed::new(agent.key())];
    let bump =
        find_program_address(&seeds, program_id, &mut expected).ok_or(EscrowError::InvalidPda)?;
    check_key(collateral, &expected, EscrowError::InvalidPda)?;

    let bump_seed = [bump];
    let signer_seeds = [Seed::new(COLLATERAL_SEED), Seed::new(agent.key()), Seed::new(&bump_seed)];
    create_pda_account(payer, collateral, Collateral::LEN, program_id, &Signer::new(&signer_seeds))?;
    // SAFETY: just created by this instruction; no other view of its data exists.
    let state = Collateral::init(unsafe { collateral.data_mut() })?;
    state.set_up(agent.key(), bump);
    Ok(())
}
