//! `liquidate`: anyone closes a position one side of which is under
//! maintenance, in full, at the Pyth price (SPEC §4's split); the reward goes
//! where the signer says, except to the liquidated side.

use super::{check_signer, position_collaterals, read_price};
use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::money::{liquidatable_side, liquidate, Side};
use crate::state::position::LIQUIDATED;
use crate::state::{Collateral, Config, Position, ProgramAccount};
use crate::syscalls::unix_timestamp;
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    if !data.is_empty() {
        return Err(EscrowError::InvalidInstruction);
    }
    let (liquidator, config, position, requester_collateral, maker_collateral, reward_account, price_update) =
        match accounts {
            [a, b, c, d, e, f, g, ..] => (a, b, c, d, e, f, g),
            _ => return Err(EscrowError::NotEnoughAccounts),
        };
    check_signer(liquidator)?;
    let config_state = Config::load(config, program_id)?;
    // SAFETY: the position, the collaterals and (for fees) the config are the only
    // accounts of this program viewed; discriminators keep them apart, the two
    // collaterals are checked distinct, the reward account is compared by header
    // with each of them before it is viewed on its own, and the config's shared
    // view is not used once its writable one exists.
    let state = unsafe { Position::load_mut(position, program_id) }?;
    state.require_open()?;
    let now = unix_timestamp()?;
    let price = read_price(price_update, config_state, state.market(), now)?;
    let period = config_state.funding_period_s();
    let before = state.math();
    let side = match liquidatable_side(&before, price) {
        Some(Some(side)) => side,
        Some(None) => return Err(EscrowError::NotLiquidatable),
        None => return Err(EscrowError::MathDomain),
    };
    let liquidated = match side {
        Side::Requester => requester_collateral,
        Side::Maker => maker_collateral,
    };
    if reward_account.is(liquidated) {
        return Err(EscrowError::RewardToLiquidatedSide);
    }
    let (requester, maker) =
        unsafe { position_collaterals(program_id, state, requester_collateral, maker_collateral) }?;
    let result = liquidate(&before, price, now, period).ok_or(EscrowError::MathDomain)?;
    requester.release(before.imr, result.requester_release)?;
    maker.release(before.imm, result.maker_release)?;
    if reward_account.is(requester_collateral) {
        requester.credit_free(result.reward)?;
    } else if reward_account.is(maker_collateral) {
        maker.credit_free(result.reward)?;
    } else if reward_account.is(config) {
        // The router's keeper: the reward is the protocol's.
        unsafe { Config::load_mut(config, program_id) }?.credit_fees(result.reward)?;
    } else {
        unsafe { Collateral::load_mut(reward_account, program_id) }?.credit_free(result.reward)?;
    }
    state.finish(LIQUIDATED);
    Ok(())
}
