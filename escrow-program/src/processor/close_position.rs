//! `close_position`: a (partial) close by the requester's consent, or a full
//! close by anyone once a term position's term has ended.

use super::{position_collaterals, read_price};
use crate::account::AccountView;
use crate::consent::{check_unexpired, is_close, ConsentCall};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::Args;
use crate::money::close_position;
use crate::state::position::CLOSED;
use crate::state::{Config, Position, ProgramAccount};
use crate::syscalls::{keys_eq, unix_timestamp};
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let mut args = Args::new(data);
    let (pct, closes, expires_at) = (args.u8()?, args.u32()?, args.i64()?);
    args.finish()?;
    let (config, position, requester_collateral, maker_collateral, price_update, instructions) =
        match accounts {
            [a, b, c, d, e, f, ..] => (a, b, c, d, e, f),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    let config_state = Config::load(config, program_id)?;
    // SAFETY: the position, the two collaterals and the config are the only
    // accounts of this program viewed; their discriminators keep them apart and
    // `position_collaterals` checks the two collaterals distinct.
    let state = unsafe { Position::load_mut(position, program_id) }?;
    state.require_open()?;
    if !(1..=100).contains(&pct) {
        return Err(EscrowError::InvalidSizePercent);
    }
    let now = unix_timestamp()?;
    let term_end = state.term_end();
    if term_end != 0 && now >= term_end {
        // Past its term anyone closes it, in full: no consent needed.
        if pct != 100 {
            return Err(EscrowError::TermCloseMustBeFull);
        }
    } else {
        let call = ConsentCall::preceding(instructions)?;
        let (signer, message) = call.signer(0)?;
        if keys_eq(signer, state.maker()) {
            return Err(EscrowError::MakerCannotClose);
        }
        if !keys_eq(signer, state.requester()) {
            return Err(EscrowError::ConsentWrongSigner);
        }
        if closes != state.closes() {
            return Err(EscrowError::CloseConsentReplayed);
        }
        if !is_close(
            message,
            program_id,
            position.key(),
            pct,
            (closes, expires_at),
        ) {
            return Err(EscrowError::CloseConsentMismatch);
        }
        check_unexpired(now, expires_at)?;
    }
    let price = read_price(price_update, config_state, state.market(), now)?;
    let (requester, maker) =
        unsafe { position_collaterals(program_id, state, requester_collateral, maker_collateral) }?;

    let before = state.math();
    let result = close_position(&before, pct, price, now, config_state.funding_period_s())
        .ok_or(EscrowError::MathDomain)?;
    let (imr_left, imm_left) = match &result.remaining {
        Some(rest) => (rest.imr, rest.imm),
        None => (0, 0),
    };
    requester.release(before.imr - imr_left, result.requester_release)?;
    maker.release(before.imm - imm_left, result.maker_release)?;
    match &result.remaining {
        Some(rest) => state.set_math(rest),
        None => state.finish(CLOSED),
    }
    state.count_close()
}
