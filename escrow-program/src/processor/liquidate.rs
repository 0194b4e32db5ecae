//! `liquidate`: anyone closes a position one side of which is under
//! maintenance, in full, at the Pyth price (SPEC §4's split); the reward goes
//! where the signer says, except to the liquidated side.

use super::{check_signer, position_collaterals, read_price};
use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::money::{liquidatable_side, liquidate, PositionMath, Side};
use crate::state::position::LIQUIDATED;
use crate::state::{Collateral, Config, Position, ProgramAccount};
use crate::syscalls::unix_timestamp;
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    if !data.is_empty() {
        return Err(EscrowError::InvalidInstruction);
    }
    let (
        liquidator,
        config,
        position,
        requester_collateral,
        maker_collateral,
        reward_account,
        price_update,
    ) = match accounts {
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
    let mut payout = Payout::default();
    split(&before, price, now, period, &mut payout)?;
    let side = payout.side;
    let liquidated = match side {
        Some(Side::Requester) => requester_collateral,
        _ => maker_collateral,
    };
    if reward_account.is(liquidated) {
        return Err(EscrowError::RewardToLiquidatedSide);
    }
    let (requester, maker) =
        unsafe { position_collaterals(program_id, state, requester_collateral, maker_collateral) }?;
    requester.release(before.imr, payout.requester_release)?;
    maker.release(before.imm, payout.maker_release)?;
    if reward_account.is(requester_collateral) {
        requester.credit_free(payout.reward)?;
    } else if reward_account.is(maker_collateral) {
        maker.credit_free(payout.reward)?;
    } else if reward_account.is(config) {
        // The router's keeper: the reward is the protocol's.
        unsafe { Config::load_mut(config, program_id) }?.credit_fees(payout.reward)?;
    } else {
        unsafe { Collateral::load_mut(reward_account, program_id) }?.credit_free(payout.reward)?;
    }
    state.finish(LIQUIDATED);
    Ok(())
}

/// Where a liquidation's money goes.
#[derive(Default)]
struct Payout {
    side: Option<Side>,
    requester_release: u64,
    maker_release: u64,
    reward: u64,
}

/// SPEC §4's liquidation of `before` at `price`, refused while both sides are
/// above maintenance (judged before funding is settled, as `perpd.money` does).
/// Its own frame: the math's intermediate results do not fit the caller's.
#[inline(never)]
fn split(
    before: &PositionMath,
    price: u64,
    now: i64,
    period: i64,
    out: &mut Payout,
) -> ProgramResult {
    match liquidatable_side(before, price) {
        Some(Some(_)) => {}
        Some(None) => return Err(EscrowError::NotLiquidatable),
        None => return Err(EscrowError::MathDomain),
    }
    let result = liquidate(before, price, now, period).ok_or(EscrowError::MathDomain)?;
    *out = Payout {
        side: Some(result.side),
        requester_release: result.requester_release,
        maker_release: result.maker_release,
        reward: result.reward,
    };
    Ok(())
}
