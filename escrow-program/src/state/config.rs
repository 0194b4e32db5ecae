//! `Config`: the program's single configuration account, at the PDA `["config"]`.

use super::{read_u64, ProgramAccount};
use crate::error::EscrowError;
use crate::Pubkey;

/// Seed of the config PDA.
pub const CONFIG_SEED: &[u8] = b"config";
/// Seed of the PDA that owns (is the token authority of) the vault.
pub const VAULT_AUTHORITY_SEED: &[u8] = b"vault";
/// Market slots in the config (BTC-PERP = 0, ETH-PERP = 1, SOL-PERP = 2, …).
pub const MAX_MARKETS: usize = 8;

/// One market slot, written by the admin's `set_market`; all zero (unlisted) until then.
#[repr(C)]
pub struct Market {
    /// The Pyth feed id every price account for this market must carry.
    pub feed_id: [u8; 32],
    /// Maximum leverage (50, 50, 20 for BTC, ETH, SOL); 0 = not listed for new
    /// positions (open ones still settle, close and liquidate on `feed_id`).
    pub max_leverage: u8,
    pub reserved: [u8; 7],
}

/// The escrow's configuration, created by `initialize`.
///
/// Invariant: only `initialize` creates it, and only at the `["config"]` PDA, so
/// an account owned by the program with this discriminator is *the* config.
#[repr(C)]
pub struct Config {
    discriminator: [u8; 8],
    /// The program's upgrade authority when it initialized; signs `set_market`.
    admin: Pubkey,
    /// The perpd router's signing key: signs `lock_position` (the requester's
    /// choice of quote is made off chain, through the router).
    router_authority: Pubkey,
    /// The USDC mint every token account of the escrow must use.
    usdc_mint: Pubkey,
    /// The token account holding every agent's collateral.
    vault: Pubkey,
    /// The PDA `["vault"]` that is the vault's token authority.
    vault_authority: Pubkey,
    /// The protocol's fee token account (USDC), where accrued fees are paid out.
    fee_account: Pubkey,
    /// The program that owns valid Pyth `PriceUpdateV2` accounts.
    pyth_receiver: Pubkey,
    /// Open fees and keeper liquidation rewards held in the vault for the protocol.
    accrued_fees: [u8; 8],
    /// Funding period `T` of SPEC §4, in seconds.
    funding_period_s: [u8; 8],
    bump: u8,
    vault_authority_bump: u8,
    reserved: [u8; 6],
    markets: [Market; MAX_MARKETS],
}

const _: () = assert!(core::mem::align_of::<Config>() == 1);
const _: () = assert!(core::mem::size_of::<Market>() == 40);
const _: () = assert!(core::mem::size_of::<Config>() == 8 + 7 * 32 + 24 + 8 * 40);

impl ProgramAccount for Config {
    const DISCRIMINATOR: [u8; 8] = [155, 12, 170, 224, 30, 250, 204, 130];
}

/// The addresses `initialize` records.
pub struct ConfigKeys<'a> {
    pub admin: &'a Pubkey,
    pub router_authority: &'a Pubkey,
    pub usdc_mint: &'a Pubkey,
    pub vault: &'a Pubkey,
    pub vault_authority: &'a Pubkey,
    pub fee_account: &'a Pubkey,
    pub pyth_receiver: &'a Pubkey,
}

impl Config {
    /// Fills a freshly created config.
    #[inline(always)]
    pub fn set_up(&mut self, keys: &ConfigKeys, funding_period_s: i64, bumps: [u8; 2]) {
        let [bump, vault_authority_bump] = bumps;
        self.funding_period_s = funding_period_s.to_le_bytes();
        self.admin = *keys.admin;
        self.router_authority = *keys.router_authority;
        self.usdc_mint = *keys.usdc_mint;
        self.vault = *keys.vault;
        self.vault_authority = *keys.vault_authority;
        self.fee_account = *keys.fee_account;
        self.pyth_receiver = *keys.pyth_receiver;
        self.bump = bump;
        self.vault_authority_bump = vault_authority_bump;
    }

    #[inline(always)]
    pub fn admin(&self) -> &Pubkey {
        &self.admin
    }

    #[inline(always)]
    pub fn router_authority(&self) -> &Pubkey {
        &self.router_authority
    }

    #[inline(always)]
    pub fn usdc_mint(&self) -> &Pubkey {
        &self.usdc_mint
    }

    #[inline(always)]
    pub fn vault(&self) -> &Pubkey {
        &self.vault
    }

    #[inline(always)]
    pub fn vault_authority(&self) -> &Pubkey {
        &self.vault_authority
    }

    #[inline(always)]
    pub fn fee_account(&self) -> &Pubkey {
        &self.fee_account
    }

    #[inline(always)]
    pub fn bump(&self) -> u8 {
        self.bump
    }

    #[inline(always)]
    pub fn vault_authority_bump(&self) -> u8 {
        self.vault_authority_bump
    }

    #[inline(always)]
    pub fn pyth_receiver(&self) -> &Pubkey {
        &self.pyth_receiver
    }

    #[inline(always)]
    pub fn accrued_fees(&self) -> u64 {
        read_u64(&self.accrued_fees)
    }

    /// Adds `amount` to the protocol's accrued fees.
    #[inline(always)]
    pub fn credit_fees(&mut self, amount: u64) -> Result<(), EscrowError> {
        let fees = self.accrued_fees().checked_add(amount).ok_or(EscrowError::ArithmeticOverflow)?;
        self.accrued_fees = fees.to_le_bytes();
        Ok(())
    }

    /// Empties the accrued fees, returning what they were.
    #[inline(always)]
    pub fn take_fees(&mut self) -> u64 {
        let fees = self.accrued_fees();
        self.accrued_fees = [0; 8];
        fees
    }

    #[inline(always)]
    pub fn funding_period_s(&self) -> i64 {
        i64::from_le_bytes(self.funding_period_s)
    }

    /// The market at `index`, listed or not; `InvalidMarket` past the table.
    #[inline(always)]
    pub fn market(&self, index: u8) -> Result<&Market, EscrowError> {
        self.markets.get(index as usize).ok_or(EscrowError::InvalidMarket)
    }

    /// Writes market `index` (admin only, checked by the caller).
    #[inline(always)]
    pub fn set_market(&mut self, index: u8, feed_id: &[u8; 32], max_leverage: u8) -> Result<(), EscrowError> {
        let market = self.markets.get_mut(index as usize).ok_or(EscrowError::InvalidMarket)?;
        market.feed_id = *feed_id;
        market.max_leverage = max_leverage;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_up_writes_fields_in_borsh_order() {
        let mut data = vec![0u8; Config::LEN];
        let config = Config::init(&mut data).unwrap();
        let keys = ConfigKeys {
            admin: &[1; 32],
            router_authority: &[2; 32],
            usdc_mint: &[3; 32],
            vault: &[4; 32],
            vault_authority: &[5; 32],
            fee_account: &[6; 32],
            pyth_receiver: &[7; 32],
        };
        config.set_up(&keys, 28_800, [254, 253]);
        assert_eq!(config.vault(), &[4; 32]);
        assert_eq!(&data[..8], &Config::DISCRIMINATOR);
        for (i, key) in data[8..8 + 7 * 32].chunks(32).enumerate() {
            assert_eq!(key, &[i as u8 + 1; 32]);
        }
        assert_eq!(&data[232..240], &[0; 8]);
        assert_eq!(&data[240..248], &28_800u64.to_le_bytes());
        assert_eq!(&data[248..250], &[254, 253]);
        assert_eq!(data.len(), 576);
    }
}
