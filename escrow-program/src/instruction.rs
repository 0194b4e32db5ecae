//! The instructions of the escrow program: discriminators, accounts and data.
//!
//! Instruction data is Anchor's: an 8-byte discriminator
//! `sha256("global:<name>")[..8]`, then the Borsh encoding of the arguments
//! (exactly: trailing bytes are refused). `idl/escrow.json` describes the same
//! interface for `anchorpy` and other Anchor clients.

use crate::error::EscrowError;
use crate::Pubkey;

/// `initialize`: creates the config.
///
/// Accounts expected:
/// 0. `[writable, signer]` admin: pays for the config, recorded as its admin.
/// 1. `[writable]` config: the PDA `["config"]`, not yet created.
/// 2. `[]` vault: SPL Token account of the USDC mint whose token owner is the
///    PDA `["vault"]`, with no delegate and no close authority.
/// 3. `[]` usdc_mint: the USDC mint (6 decimals).
/// 4. `[]` fee_account: SPL Token account of the USDC mint.
/// 5. `[]` token_program: SPL Token.
/// 6. `[]` system_program.
///
/// Data expected: `router_authority: Pubkey`.
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

/// The arguments of `initialize`.
pub struct InitializeArgs<'a> {
    pub router_authority: &'a Pubkey,
}

impl<'a> InitializeArgs<'a> {
    /// Decodes the arguments (the data after the discriminator).
    #[inline(always)]
    pub fn unpack(data: &'a [u8]) -> Result<Self, EscrowError> {
        match data.try_into() {
            Ok(router_authority) => Ok(Self { router_authority }),
            Err(_) => Err(EscrowError::InvalidInstruction),
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
    fn initialize_takes_exactly_one_key() {
        assert_eq!(InitializeArgs::unpack(&[9; 32]).unwrap().router_authority, &[9; 32]);
        assert!(InitializeArgs::unpack(&[9; 33]).is_err());
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
