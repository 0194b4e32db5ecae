//! The instructions of the escrow program: discriminators, accounts and data.
//!
//! Instruction data is Anchor's: an 8-byte discriminator
//! `sha256("global:<name>")[..8]`, then the Borsh encoding of the arguments
//! (exactly: trailing bytes are refused). `idl/escrow.json` describes the same
//! interface for `anchorpy` and other Anchor clients.

use crate::error::EscrowError;
use crate::Pubkey;

/// `initialize`: creates the config. Only the program's upgrade authority may
/// call it (read from the ProgramData account of the upgradeable loader), so a
/// stranger cannot take over a freshly deployed program.
///
/// Accounts expected:
/// 0. `[writable, signer]` admin: the upgrade authority; pays for the config, recorded as its admin.
/// 1. `[writable]` config: the PDA `["config"]`, not yet created.
/// 2. `[]` vault: SPL Token account of the USDC mint whose token owner is the
///    PDA `["vault"]`, with no delegate and no close authority.
/// 3. `[]` usdc_mint: the USDC mint (6 decimals).
/// 4. `[]` fee_account: SPL Token account of the USDC mint.
/// 5. `[]` token_program: SPL Token.
/// 6. `[]` system_program.
/// 7. `[]` program: this program's account (BPF Loader Upgradeable `Program`).
/// 8. `[]` program_data: its `ProgramData` account, naming the upgrade authority.
///
/// Data expected: `router_authority: Pubkey`, `pyth_receiver: Pubkey`, `funding_period_s: i64`.
pub const INITIALIZE: [u8; 8] = [175, 175, 109, 31, 13, 152, 155, 237];

/// `deposit`: moves USDC from the depositor's token account into the vault and
/// credits `amount` to the free collateral of `agent` (anyone may fund any
/// agent: a deposit for someone else is a gift). Creates the agent's collateral
/// account on its first deposit, paid by the depositor.
///
/// Accounts expected:
/// 0. `[writable, signer]` depositor: token owner of `source`; pays for a new
///    collateral account.
/// 1. `[writable]` source: the depositor's USDC token account.
/// 2. `[writable]` vault: the configured vault.
/// 3. `[writable]` collateral: the PDA `["collateral", agent]`.
/// 4. `[]` agent: the agent credited.
/// 5. `[]` config.
/// 6. `[]` token_program: SPL Token.
/// 7. `[]` system_program.
///
/// Data expected: `amount: u64` (micro-USDC, > 0).
pub const DEPOSIT: [u8; 8] = [242, 35, 198, 137, 82, 225, 242, 182];

/// `withdraw`: takes `amount` from the agent's free collateral and moves it
/// from the vault to `destination`, the vault PDA signing.
///
/// Accounts expected:
/// 0. `[signer]` agent: the collateral's owner; only it may withdraw.
/// 1. `[writable]` collateral: the agent's PDA `["collateral", agent]`.
/// 2. `[writable]` vault: the configured vault.
/// 3. `[writable]` destination: any USDC token account other than the vault.
/// 4. `[]` vault_authority: the PDA `["vault"]`.
/// 5. `[]` config.
/// 6. `[]` token_program: SPL Token.
///
/// Data expected: `amount: u64` (micro-USDC, > 0, at most the free balance).
pub const WITHDRAW: [u8; 8] = [183, 18, 70, 156, 148, 109, 161, 34];

/// `set_market`: lists (or re-lists, or closes to new positions) market
/// `market`: its Pyth feed id and maximum leverage (0 = no new positions; open
/// ones still settle, close and liquidate). Admin only.
///
/// Accounts expected:
/// 0. `[signer]` admin: the config's admin.
/// 1. `[writable]` config.
///
/// Data expected: `market: u8`, `feed_id: [u8; 32]`, `max_leverage: u8`.
pub const SET_MARKET: [u8; 8] = [24, 133, 119, 187, 28, 115, 163, 81];

/// `lock_position`: opens a position from the requester's request consent and
/// the maker's quote consent (signatures 0 and 1 of the Ed25519 call right
/// before this instruction). Moves `Cr + fee` of the requester and `Cm` of the
/// maker from free to the position (the fee to the config's accrued fees) at
/// the Pyth price, and creates the position at `["position", requester, nonce]`.
/// The router signs: it relays the requester's choice of quote.
///
/// Accounts expected:
/// 0. `[writable, signer]` router: the config's router authority; pays for the position account.
/// 1. `[writable]` config.
/// 2. `[writable]` position: the PDA `["position", requester, nonce]`, not yet created.
/// 3. `[writable]` requester_collateral: the requester's collateral account.
/// 4. `[writable]` maker_collateral: the maker's collateral account.
/// 5. `[]` price_update: a Pyth `PriceUpdateV2` of the market's feed.
/// 6. `[]` instructions: the Instructions sysvar.
/// 7. `[]` system_program.
///
/// Data expected: `nonce: u64`, `market: u8`, `side: u8`, `size: u64`, `leverage: u8`,
/// `max_rate: i64`, `duration: u32`, `expires_at: i64`, `rate: i64`, `collateral: u64`,
/// `valid_until: i64`, `position_bump: u8` (the canonical bump of the position's
/// address, which the client finds off chain).
pub const LOCK_POSITION: [u8; 8] = [227, 62, 2, 252, 247, 10, 171, 185];

/// `settle_funding`: settles accrued funding (SPEC §4) of every position passed
/// after the config, as many as fit a transaction. Anyone may call it; closed
/// positions are skipped, so a batch is never refused because one of them closed.
///
/// Accounts expected:
/// 0. `[]` config.
///
/// Then each position, writable, as remaining accounts.
///
/// Data expected: nothing.
pub const SETTLE_FUNDING: [u8; 8] = [11, 251, 12, 161, 199, 228, 133, 87];

/// `close_position`: closes `size_percent` of the position, relayed with the
/// requester's close consent (signature 0 of the Ed25519 call right before this
/// instruction), or in full by anyone once a term position's term has ended.
/// Settles funding first, then PnL on the closed fraction at the Pyth price;
/// releases to both agents' free balances; `closes` advances.
///
/// Accounts expected:
/// 0. `[]` config.
/// 1. `[writable]` position.
/// 2. `[writable]` requester_collateral: the position's requester's collateral account.
/// 3. `[writable]` maker_collateral: the position's maker's collateral account.
/// 4. `[]` price_update: a Pyth `PriceUpdateV2` of the market's feed.
/// 5. `[]` instructions: the Instructions sysvar.
///
/// Data expected: `size_percent: u8`, `closes: u32`, `expires_at: i64` (the consent's;
/// ignored after the term's end).
pub const CLOSE_POSITION: [u8; 8] = [123, 134, 81, 0, 49, 68, 98, 98];

/// `liquidate`: closes a position one side of which is under maintenance, in
/// full at the Pyth price, with SPEC §4's split. Anyone may call it; the reward
/// goes to `reward_account`: any agent's collateral account but the liquidated
/// side's, or the config itself for the protocol's accrued fees (the router's
/// keeper names it).
///
/// Accounts expected:
/// 0. `[signer]` liquidator.
/// 1. `[]` config.
/// 2. `[writable]` position.
/// 3. `[writable]` requester_collateral: the position's requester's collateral account.
/// 4. `[writable]` maker_collateral: the position's maker's collateral account.
/// 5. `[writable]` reward_account: a collateral account, or the config (fees).
/// 6. `[]` price_update: a Pyth `PriceUpdateV2` of the market's feed.
///
/// Data expected: nothing.
pub const LIQUIDATE: [u8; 8] = [223, 179, 226, 125, 48, 46, 39, 74];

/// `withdraw_with_consent`: `withdraw` relayed with the agent's withdraw consent
/// (signature 0 of the Ed25519 call right before this instruction) instead of
/// its signature; `withdrawals` advances.
///
/// Accounts expected:
/// 0. `[writable]` collateral: the agent's collateral account.
/// 1. `[writable]` vault: the configured vault.
/// 2. `[writable]` destination: the USDC token account the consent names.
/// 3. `[]` vault_authority: the PDA `["vault"]`.
/// 4. `[]` config.
/// 5. `[]` token_program: SPL Token.
/// 6. `[]` instructions: the Instructions sysvar.
///
/// Data expected: `amount: u64`, `withdrawals: u64`, `expires_at: i64`.
pub const WITHDRAW_WITH_CONSENT: [u8; 8] = [133, 201, 64, 83, 79, 91, 207, 212];

/// `collect_fees`: pays the protocol's accrued fees (open fees, keeper
/// liquidation rewards) out of the vault to the configured fee account. Admin only.
///
/// Accounts expected:
/// 0. `[signer]` admin: the config's admin.
/// 1. `[writable]` config.
/// 2. `[writable]` vault: the configured vault.
/// 3. `[writable]` fee_account: the configured fee account.
/// 4. `[]` vault_authority: the PDA `["vault"]`.
/// 5. `[]` token_program: SPL Token.
///
/// Data expected: nothing.
pub const COLLECT_FEES: [u8; 8] = [164, 152, 207, 99, 30, 186, 19, 182];

/// Reads Borsh arguments front to back; trailing bytes are refused by `finish`.
pub struct Args<'a> {
    data: &'a [u8],
}

impl<'a> Args<'a> {
    #[inline(always)]
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    #[inline(always)]
    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], EscrowError> {
        if self.data.len() < N {
            return Err(EscrowError::InvalidInstruction);
        }
        let (head, rest) = self.data.split_at(N);
        self.data = rest;
        // SAFETY: `head` is exactly N bytes; [u8; N] has alignment 1.
        Ok(unsafe { &*(head.as_ptr() as *const [u8; N]) })
    }

    #[inline(always)]
    pub fn u8(&mut self) -> Result<u8, EscrowError> {
        Ok(self.take::<1>()?[0])
    }

    #[inline(always)]
    pub fn u32(&mut self) -> Result<u32, EscrowError> {
        Ok(u32::from_le_bytes(*self.take::<4>()?))
    }

    #[inline(always)]
    pub fn u64(&mut self) -> Result<u64, EscrowError> {
        Ok(u64::from_le_bytes(*self.take::<8>()?))
    }

    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, EscrowError> {
        Ok(i64::from_le_bytes(*self.take::<8>()?))
    }

    #[inline(always)]
    pub fn key(&mut self) -> Result<&'a Pubkey, EscrowError> {
        self.take::<32>()
    }

    /// Refuses bytes after the last argument.
    #[inline(always)]
    pub fn finish(&self) -> Result<(), EscrowError> {
        if self.data.is_empty() {
            Ok(())
        } else {
            Err(EscrowError::InvalidInstruction)
        }
    }
}

/// The arguments of `deposit` and `withdraw`.
pub struct AmountArgs {
    pub amount: u64,
}

impl AmountArgs {
    /// Decodes the arguments (the data after the discriminator); refuses zero.
    #[inline(always)]
    pub fn unpack(data: &[u8]) -> Result<Self, EscrowError> {
        let bytes: [u8; 8] = data.try_into().map_err(|_| EscrowError::InvalidInstruction)?;
        match u64::from_le_bytes(bytes) {
            0 => Err(EscrowError::InvalidAmount),
            amount => Ok(Self { amount }),
        }
    }
}

/// Splits instruction data into its discriminator and arguments.
#[inline(always)]
pub fn split_discriminator(data: &[u8]) -> Result<([u8; 8], &[u8]), EscrowError> {
    if data.len() < 8 {
        return Err(EscrowError::InvalidInstruction);
    }
    let (head, args) = data.split_at(8);
    let mut discriminator = [0u8; 8];
    discriminator.copy_from_slice(head);
    Ok((discriminator, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_borsh_u64_and_never_zero() {
        assert_eq!(AmountArgs::unpack(&7u64.to_le_bytes()).unwrap().amount, 7);
        assert_eq!(AmountArgs::unpack(&0u64.to_le_bytes()).err(), Some(EscrowError::InvalidAmount));
        assert_eq!(AmountArgs::unpack(&[1, 2, 3]).err(), Some(EscrowError::InvalidInstruction));
        assert_eq!(AmountArgs::unpack(&[0; 9]).err(), Some(EscrowError::InvalidInstruction));
    }

    #[test]
    fn args_read_borsh_in_order_and_refuse_trailing_bytes() {
        let mut data = vec![7u8];
        data.extend(3u32.to_le_bytes());
        data.extend((-2i64).to_le_bytes());
        data.extend([9; 32]);
        let mut args = Args::new(&data);
        assert_eq!(args.u8(), Ok(7));
        assert_eq!(args.u32(), Ok(3));
        assert_eq!(args.i64(), Ok(-2));
        assert_eq!(args.key(), Ok(&[9; 32]));
        assert_eq!(args.finish(), Ok(()));
        assert_eq!(args.u8(), Err(EscrowError::InvalidInstruction));
        let mut long = Args::new(&[1, 2]);
        assert_eq!(long.u8(), Ok(1));
        assert_eq!(long.finish(), Err(EscrowError::InvalidInstruction));
    }

    #[test]
    fn discriminators_are_distinct_and_split() {
        assert_ne!(INITIALIZE, DEPOSIT);
        assert_ne!(DEPOSIT, WITHDRAW);
        let mut data = WITHDRAW.to_vec();
        data.extend(5u64.to_le_bytes());
        let (discriminator, args) = split_discriminator(&data).unwrap();
        assert_eq!(discriminator, WITHDRAW);
        assert_eq!(args, &5u64.to_le_bytes());
        assert!(split_discriminator(&[1, 2]).is_err());
    }
}
