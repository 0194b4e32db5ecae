//! `withdraw_with_consent`: a withdrawal the router relays with the agent's
//! signed withdraw consent instead of the agent's transaction signature.

use super::withdraw::pay_out;
use crate::account::AccountView;
use crate::consent::{check_unexpired, is_withdrawal, ConsentCall, Withdrawal};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::Args;
use crate::state::{Collateral, Config, ProgramAccount};
use crate::syscalls::keys_eq;
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let mut args = Args::new(data);
    let (amount, withdrawals, expires_at) = (args.u64()?, args.u64()?, args.i64()?);
    args.finish()?;
    if amount == 0 {
        return Err(EscrowError::InvalidAmount);
    }
    let (collateral, vault, destination, vault_authority, config, token_program, instructions) =
        match accounts {
            [a, b, c, d, e, f, g, ..] => (a, b, c, d, e, f, g),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    let config_state = Config::load(config, program_id)?;
    // SAFETY: the collateral is the only account of this program written here; the
    // config (the only other one read) has another discriminator.
    let collateral_state = unsafe { Collateral::load_mut(collateral, program_id) }?;

    let call = ConsentCall::preceding(instructions)?;
    let (signer, message) = call.signer(0)?;
    if !keys_eq(signer, collateral_state.agent()) {
        return Err(EscrowError::ConsentWrongSigner);
    }
    if withdrawals != collateral_state.withdrawals() {
        return Err(EscrowError::WithdrawConsentReplayed);
    }
    let terms = Withdrawal {
        agent: collateral_state.agent(),
        destination: destination.key(),
        amount,
        withdrawals,
        expires_at,
    };
    if !is_withdrawal(message, program_id, &terms) {
        return Err(EscrowError::WithdrawConsentMismatch);
    }
    check_unexpired(crate::syscalls::unix_timestamp()?, expires_at)?;

    collateral_state.debit_free(amount)?;
    collateral_state.count_withdrawal()?;
    pay_out(
        config_state,
        [vault, destination, vault_authority, token_program],
        amount,
    )
}
