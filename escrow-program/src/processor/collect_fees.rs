//! `collect_fees`: the admin pays the accrued fees out to the fee account.

use super::withdraw::pay_out;
use super::{check_key, check_signer};
use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::state::{Config, ProgramAccount};
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    if !data.is_empty() {
        return Err(EscrowError::InvalidInstruction);
    }
    let (admin, config, vault, fee_account, vault_authority, token_program) = match accounts {
        [a, b, c, d, e, f, ..] => (a, b, c, d, e, f),
        _ => return Err(EscrowError::NotEnoughAccounts),
    };
    check_signer(admin)?;
    // SAFETY: the config is the only account of this program in the instruction.
    let state = unsafe { Config::load_mut(config, program_id) }?;
    check_key(admin, state.admin(), EscrowError::NotAdmin)?;
    check_key(
        fee_account,
        state.fee_account(),
        EscrowError::InvalidFeeAccount,
    )?;
    match state.take_fees() {
        0 => Err(EscrowError::InvalidAmount),
        fees => pay_out(
            state,
            [vault, fee_account, vault_authority, token_program],
            fees,
        ),
    }
}
