//! `lock_position`: a position opened from both agents' consents (SPEC §7).

use super::{check_signer, check_system_program, check_writable, is_unallocated, read_price};
use crate::account::AccountView;
use crate::consent::{check_unexpired, is_quote, is_request, ConsentCall, Quote, Request};
use crate::cpi::{create_pda_account, Signer};
use crate::error::{EscrowError, ProgramResult};
use crate::instruction::Args;
use crate::math::checked_mul;
use crate::money::{open_position, LONG, SHORT};
use crate::state::position::{Parties, POSITION_SEED};
use crate::state::{Collateral, Config, Position, ProgramAccount};
use crate::syscalls::{is_program_address, keys_eq, sha256, unix_timestamp, Seed, PDA_MARKER};
use crate::Pubkey;
use core::cell::Cell;

/// Any rate, quoted or maximum, lies within ±5 % per period (SPEC §3).
pub const MAX_RATE_PPM: i64 = 50_000;
/// No amount above 1,000,000,000 USDC (SPEC §2).
pub const MAX_SIZE: u64 = 1_000_000_000 * 1_000_000;

/// The instruction's arguments: the request's terms, then the quote's.
struct LockArgs {
    nonce: u64,
    market: u8,
    side: u8,
    size: u64,
    leverage: u8,
    max_rate: i64,
    duration: u32,
    expires_at: i64,
    rate: i64,
    collateral: u64,
    valid_until: i64,
    position_bump: u8,
}

impl LockArgs {
    #[inline(always)]
    fn unpack(data: &[u8]) -> Result<Self, EscrowError> {
        let mut a = Args::new(data);
        let args = Self {
            nonce: a.u64()?,
            market: a.u8()?,
            side: a.u8()?,
            size: a.u64()?,
            leverage: a.u8()?,
            max_rate: a.i64()?,
            duration: a.u32()?,
            expires_at: a.i64()?,
            rate: a.i64()?,
            collateral: a.u64()?,
            valid_until: a.i64()?,
            position_bump: a.u8()?,
        };
        a.finish()?;
        Ok(args)
    }
}

#[inline(never)]
pub fn process(program_id: &Pubkey, accounts: &[AccountView], data: &[u8]) -> ProgramResult {
    let args = LockArgs::unpack(data)?;
    let (
        router,
        config,
        position,
        requester_collateral,
        maker_collateral,
        price_update,
        instructions,
        system_program,
    ) = match accounts {
        [a, b, c, d, e, f, g, h, ..] => (a, b, c, d, e, f, g, h),
        _ => return Err(EscrowError::NotEnoughAccounts),
    };
    check_signer(router)?;
    check_writable(router)?;
    check_system_program(system_program)?;
    check_writable(position)?;
    // A consent is good once: its position's address is taken for good.
    if !is_unallocated(position) {
        return Err(EscrowError::PositionExists);
    }
    // SAFETY (all three): the config and the two collateral accounts are the only
    // accounts of this program viewed; different discriminators keep the config
    // apart from the collaterals, and the two collaterals are checked distinct
    // before the second is loaded. The position is created below (it is owned by
    // the System Program until then, so it is none of them).
    let config_state = unsafe { Config::load_mut(config, program_id) }?;
    if !keys_eq(router.key(), config_state.router_authority()) {
        return Err(EscrowError::NotRouter);
    }
    if requester_collateral.is(maker_collateral) {
        return Err(EscrowError::SelfTrade);
    }
    let requester_state = unsafe { Collateral::load_mut(requester_collateral, program_id) }?;
    let maker_state = unsafe { Collateral::load_mut(maker_collateral, program_id) }?;
    if keys_eq(requester_state.agent(), maker_state.agent()) {
        return Err(EscrowError::SelfTrade);
    }

    verify_consents(
        program_id,
        instructions,
        &args,
        requester_state.agent(),
        maker_state.agent(),
    )?;

    let now = unix_timestamp()?;
    check_unexpired(now, args.expires_at)?;
    check_unexpired(now, args.valid_until)?;
    let market = config_state.market(args.market)?;
    check_terms(&args, market.max_leverage)?;
    let entry = read_price(price_update, config_state, args.market, now)?;

    let side = if args.side == 0 { LONG } else { SHORT };
    let (state, fee) = open_position(
        side,
        args.size,
        entry,
        args.leverage as u64,
        args.collateral,
        args.rate,
        now,
    )
    .ok_or(EscrowError::MathDomain)?;
    let requester_debit = state
        .cr
        .checked_add(fee)
        .ok_or(EscrowError::ArithmeticOverflow)?;
    requester_state.lock(requester_debit, state.imr)?;
    maker_state.lock(state.cm, state.imm)?;
    config_state.credit_fees(fee)?;

    create_position(program_id, router, position, requester_state.agent(), &args)?;
    // SAFETY: just created by this instruction; no other view of its data exists.
    let position_state = Position::init(unsafe { position.data_mut() })?;
    let term_end = if args.duration == 0 {
        0
    } else {
        now + args.duration as i64
    };
    let parties = Parties {
        requester: requester_state.agent(),
        maker: maker_state.agent(),
        nonce: args.nonce,
        market: args.market,
        side: args.side,
        leverage: args.leverage,
        bump: args.position_bump,
        opened_at: now,
        term_end,
    };
    position_state.set_up(&parties, &state);
    Ok(())
}

/// The request (signature 0, by the requester) and the quote on it (signature
/// 1, by the maker) say exactly what the arguments say.
#[inline(never)]
fn verify_consents(
    program_id: &Pubkey,
    instructions: &AccountView,
    args: &LockArgs,
    requester: &Pubkey,
    maker: &Pubkey,
) -> ProgramResult {
    let call = ConsentCall::preceding(instructions)?;
    let request = Request {
        requester,
        nonce: args.nonce,
        market: args.market,
        side: args.side,
        size: args.size,
        leverage: args.leverage,
        max_rate: args.max_rate,
        duration: args.duration,
        expires_at: args.expires_at,
    };
    let request_message = call.signed_by(0, requester)?;
    if !is_request(request_message, program_id, &request) {
        return Err(EscrowError::RequestConsentMismatch);
    }
    let request_hash = sha256(request_message);
    let quote = Quote {
        maker,
        request_hash: &request_hash,
        rate: args.rate,
        collateral: args.collateral,
        valid_until: args.valid_until,
    };
    if is_quote(call.signed_by(1, maker)?, program_id, &quote) {
        Ok(())
    } else {
        Err(EscrowError::QuoteConsentMismatch)
    }
}

/// SPEC §3's terms: market listed, side, size, leverage, rates, maker collateral.
#[inline(always)]
fn check_terms(args: &LockArgs, max_leverage: u8) -> ProgramResult {
    if max_leverage == 0 {
        return Err(EscrowError::MarketNotListed);
    }
    if args.side > 1 {
        return Err(EscrowError::InvalidSide);
    }
    if args.size == 0 || args.size > MAX_SIZE {
        return Err(EscrowError::InvalidSize);
    }
    if args.leverage == 0 || args.leverage > max_leverage {
        return Err(EscrowError::InvalidLeverage);
    }
    let in_range = |rate: i64| (-MAX_RATE_PPM..=MAX_RATE_PPM).contains(&rate);
    if !in_range(args.rate) || !in_range(args.max_rate) {
        return Err(EscrowError::RateOutOfRange);
    }
    if args.rate > args.max_rate {
        return Err(EscrowError::RateAboveMax);
    }
    match checked_mul(args.collateral, max_leverage as u64) {
        Some(cover) if cover < args.size => Err(EscrowError::MakerCollateralTooLow),
        _ => Ok(()),
    }
}

/// Creates the position at `["position", requester, nonce]` with the canonical
/// bump (one address per request consent), paid by the router.
///
/// The runtime derives the address from the signer seeds when it runs the
/// System Program's `CreateAccount` (which needs the new account's signature),
/// so a wrong address or bump fails there at no extra cost; what is left to
/// check here is that no higher bump gives an address: the runtime's own test
/// (hash, then "off the curve") for each higher bump, ~323 CU each (none for
/// the half of all (requester, nonce) pairs whose bump is 255).
#[inline(never)]
fn create_position(
    program_id: &Pubkey,
    payer: &AccountView,
    position: &AccountView,
    requester: &Pubkey,
    args: &LockArgs,
) -> ProgramResult {
    let nonce_bytes = args.nonce.to_le_bytes();
    let mut higher = args.position_bump;
    if higher < u8::MAX {
        // The nonce and the bump tried, one slice (10 CU of hashing less than two).
        let mut nonce_and_bump = [0u8; 9];
        nonce_and_bump[..8].copy_from_slice(&nonce_bytes);
        let nonce_and_bump = Cell::from_mut(&mut nonce_and_bump[..]).as_slice_of_cells();
        let preimage = [
            Seed::new(POSITION_SEED),
            Seed::new(requester),
            Seed::cells(nonce_and_bump),
            Seed::new(program_id),
            Seed::new(PDA_MARKER),
        ];
        while higher < u8::MAX {
            higher += 1;
            nonce_and_bump[8].set(higher);
            if is_program_address(&preimage) {
                return Err(EscrowError::InvalidPda);
            }
        }
    }
    let bump_seed = [args.position_bump];
    let signer_seeds = [
        Seed::new(POSITION_SEED),
        Seed::new(requester),
        Seed::new(&nonce_bytes),
        Seed::new(&bump_seed),
    ];
    create_pda_account(
        payer,
        position,
        Position::LEN,
        program_id,
        &Signer::new(&signer_seeds),
    )
}
