//! `settle_funding`: accrued funding of many positions in one instruction.
//!
//! Only the positions are written: funding moves between a position's two
//! collaterals (`cr`, `cm`), which the position account itself holds, so no
//! collateral account is needed and ~30 positions fit one transaction.

use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::money::settle_funding;
use crate::state::position::OPEN;
use crate::state::{Config, Position, ProgramAccount};
use crate::syscalls::unix_timestamp;
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    if !data.is_empty() {
        return Err(EscrowError::InvalidInstruction);
    }
    let (config, positions) = match accounts {
        [config, positions @ ..] => (config, positions),
        _ => return Err(EscrowError::NotEnoughAccounts),
    };
    let period = Config::load(config, program_id)?.funding_period_s();
    let now = unix_timestamp()?;
    for position in positions {
        // SAFETY: each position's view ends with its iteration; a position passed
        // twice is simply settled twice (the second time moves nothing).
        let state = unsafe { Position::load_mut(position, program_id) }?;
        if state.status() != OPEN {
            continue;
        }
        let settled = settle_funding(&state.math(), now, period).ok_or(EscrowError::MathDomain)?;
        state.set_math(&settled.state);
    }
    Ok(())
}
