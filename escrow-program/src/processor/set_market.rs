//! `set_market`: the admin lists a market (feed id, maximum leverage), or closes
//! it to new positions with a maximum leverage of 0.

use super::{check_key, check_signer};
use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::Args;
use crate::state::{Config, ProgramAccount};
use crate::Pubkey;

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let mut args = Args::new(data);
    let (market, feed_id, max_leverage) = (args.u8()?, args.key()?, args.u8()?);
    args.finish()?;
    let (admin, config) = match accounts {
        [a, b, ..] => (a, b),
        _ => return Err(EscrowError::NotEnoughAccounts),
    };
    check_signer(admin)?;
    // SAFETY: the config is the only account of this program in the instruction.
    let state = unsafe { Config::load_mut(config, program_id) }?;
    check_key(admin, state.admin(), EscrowError::NotAdmin)?;
    state.set_market(market, feed_id, max_leverage)
}
