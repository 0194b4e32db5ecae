//! Instruction dispatch and the account checks every instruction shares.

pub mod close_position;
pub mod collect_fees;
pub mod deposit;
pub mod initialize;
pub mod liquidate;
pub mod lock_position;
pub mod set_market;
pub mod settle_funding;
pub mod withdraw;
pub mod withdraw_with_consent;

use crate::account::AccountView;
use crate::cpi::SYSTEM_PROGRAM_ID;
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::{
    split_discriminator, CLOSE_POSITION, COLLECT_FEES, DEPOSIT, INITIALIZE, LIQUIDATE, LOCK_POSITION, SET_MARKET,
    SETTLE_FUNDING, WITHDRAW, WITHDRAW_WITH_CONSENT,
};
use crate::pyth::PythError;
use crate::state::token::TOKEN_PROGRAM_ID;
use crate::state::Config;
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
        SETTLE_FUNDING => settle_funding::process(program_id, accounts, args),
        LIQUIDATE => liquidate::process(program_id, accounts, args),
        CLOSE_POSITION => close_position::process(program_id, accounts, args),
        LOCK_POSITION => lock_position::process(program_id, accounts, args),
        WITHDRAW_WITH_CONSENT => withdraw_with_consent::process(program_id, accounts, args),
        SET_MARKET => set_market::process(program_id, accounts, args),
        COLLECT_FEES => collect_fees::process(program_id, accounts, args),
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

/// The price of `market` now (exponent -8), from a Pyth `PriceUpdateV2`
/// account owned by the configured receiver (SPEC §7).
#[inline(never)]
pub fn read_price(price_update: &AccountView, config: &Config, market: u8, now: i64) -> Result<u64, EscrowError> {
    if !keys_eq(price_update.owner(), config.pyth_receiver()) {
        return Err(EscrowError::PriceAccountOwner);
    }
    let feed_id = &config.market(market)?.feed_id;
    match crate::pyth::read_price(price_update.data(), feed_id, now) {
        Ok(price) => Ok(price.price),
        Err(error) => Err(pyth_error(error)),
    }
}

/// Every way a price is unusable has its own code.
#[inline(always)]
pub fn pyth_error(error: PythError) -> EscrowError {
    match error {
        PythError::BadLayout => EscrowError::PriceLayout,
        PythError::WrongFeed => EscrowError::PriceWrongFeed,
        PythError::Stale => EscrowError::PriceStale,
        PythError::WideConfidence => EscrowError::PriceConfidenceTooWide,
        PythError::NonPositive => EscrowError::PriceNotPositive,
        PythError::OutOfRange => EscrowError::PriceOutOfRange,
        PythError::NotFullyVerified => EscrowError::PriceNotFullyVerified,
        PythError::Overflow => EscrowError::PriceOverflow,
    }
}

/// The two collateral accounts of `position`, writable and distinct, each
/// checked against the agent the position records (owner + discriminator +
/// `agent`: no derivation).
///
/// # Safety
/// No other view of either account's data may be live; the caller passes no
/// other account of this program that could alias them (a position or the
/// config cannot: their discriminators differ).
#[inline(always)]
#[allow(clippy::mut_from_ref)]
pub unsafe fn position_collaterals<'a>(
    program_id: &Pubkey,
    position: &crate::state::Position,
    requester: &'a AccountView,
    maker: &'a AccountView,
) -> Result<(&'a mut crate::state::Collateral, &'a mut crate::state::Collateral), EscrowError> {
    use crate::state::{Collateral, ProgramAccount};
    check_distinct(requester, maker)?;
    // SAFETY: the caller's contract; the two accounts are distinct (checked above).
    let (r, m) = unsafe {
        (Collateral::load_mut(requester, program_id)?, Collateral::load_mut(maker, program_id)?)
    };
    if !keys_eq(r.agent(), position.requester()) || !keys_eq(m.agent(), position.maker()) {
        return Err(EscrowError::PositionMismatch);
    }
    Ok((r, m))
}
