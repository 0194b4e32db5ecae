//! Instruction dispatch and the account checks every instruction shares.

pub mod deposit;
pub mod initialize;
pub mod withdraw;

use crate::account::AccountView;
use crate::cpi::SYSTEM_PROGRAM_ID;
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::{split_discriminator, DEPOSIT, INITIALIZE, WITHDRAW};
use crate::state::token::TOKEN_PROGRAM_ID;
use crate::syscalls::keys_eq;
use crate::Pubkey;

/// Runs the instruction named by the first 8 bytes of `data`.
#[inline(always)]
pub fn process_instruction(
    program_id: &Pubkey,
    accounts: &[AccountView],
    data: &[u8],
) -> ProgramResult {
    let (discriminator, args) = split_discriminator(data)?;
    match discriminator {
        DEPOSIT => deposit::process(program_id, accounts, args),
        WITHDRAW => withdraw::process(program_id, accounts, args),
        INITIALIZE => initialize::process(program_id, accounts, args),
        _ => Err(EscrowError::InvalidInstruction),
    }
}

/// The account signed the transaction.
#[inline(always)]
pub fn check_signer(account: &AccountView) -> ProgramResult {
    if account.is_signer() {
        Ok(())
    } else {
        Err(EscrowError::MissingSigner)
    }
}

/// The account was passed writable.
#[inline(always)]
pub fn check_writable(account: &AccountView) -> ProgramResult {
    if account.is_writable() {
        Ok(())
    } else {
        Err(EscrowError::NotWritable)
    }
}

/// The account is SPL Token.
#[inline(always)]
pub fn check_token_program(account: &AccountView) -> ProgramResult {
    if keys_eq(account.key(), &TOKEN_PROGRAM_ID) {
        Ok(())
    } else {
        Err(EscrowError::InvalidTokenProgram)
    }
}

/// The account is the System Program.
#[inline(always)]
pub fn check_system_program(account: &AccountView) -> ProgramResult {
    if keys_eq(account.key(), &SYSTEM_PROGRAM_ID) {
        Ok(())
    } else {
        Err(EscrowError::InvalidSystemProgram)
    }
}

/// The account's address is `expected`; `error` otherwise.
#[inline(always)]
pub fn check_key(account: &AccountView, expected: &Pubkey, error: EscrowError) -> ProgramResult {
    if keys_eq(account.key(), expected) {
        Ok(())
    } else {
        Err(error)
    }
}

/// The two accounts are different accounts.
///
/// The runtime serialises an account passed under several indices once (the
/// later indices name the first), so two views of one account share a header:
/// comparing headers catches every duplicate, whatever the indices.
#[inline(always)]
pub fn check_distinct(a: &AccountView, b: &AccountView) -> ProgramResult {
    if a.is(b) {
        Err(EscrowError::DuplicateAccount)
    } else {
        Ok(())
    }
}

/// The account does not exist yet: owned by the System Program, no data.
#[inline(always)]
pub fn is_unallocated(account: &AccountView) -> bool {
    account.data_len() == 0 && keys_eq(account.owner(), &SYSTEM_PROGRAM_ID)
}
