//! `Config`: the program's single configuration account, at the PDA `["config"]`.

use super::ProgramAccount;
use crate::Pubkey;

/// Seed of the config PDA.
pub const CONFIG_SEED: &[u8] = b"config";
/// Seed of the PDA that owns (is the token authority of) the vault.
pub const VAULT_AUTHORITY_SEED: &[u8] = b"vault";
/// Market slots reserved in the config (BTC-PERP = 0, ETH-PERP = 1, SOL-PERP = 2, …).
pub const MAX_MARKETS: usize = 8;

/// One market slot, filled by a later instruction (part 2); zero until then.
#[repr(C)]
pub struct Market {
    /// The Pyth price account read for this market.
    pub pyth_price_account: Pubkey,
    /// The Pyth feed id the price account must carry.
    pub feed_id: [u8; 32],
    /// Maximum leverage (50, 50, 20 for BTC, ETH, SOL).
    pub max_leverage: u8,
    /// Non-zero once the market is open for trading.
    pub active: u8,
    pub reserved: [u8; 30],
}

/// The escrow's configuration, written once by `initialize`.
///
/// Invariant: only `initialize` creates it, and only at the `["config"]` PDA, so
/// an account owned by the program with this discriminator is *the* config.
#[repr(C)]
pub struct Config {
    discriminator: [u8; 8],
    /// Who initialized the program (the future admin instructions' signer).
    admin: Pubkey,
    /// The perpd router's signing key (signs `lock_position`, … in part 2).
    router_authority: Pubkey,
    /// The USDC mint every token account of the escrow must use.
    usdc_mint: Pubkey,
    /// The token account holding every agent's collateral.
    vault: Pubkey,
    /// The PDA `["vault"]` that is the vault's token authority.
    vault_authority: Pubkey,
    /// The protocol's fee token account (USDC).
    fee_account: Pubkey,
    bump: u8,
    vault_authority_bump: u8,
    market_count: u8,
    reserved: [u8; 5],
    markets: [Market; MAX_MARKETS],
}

const _: () = assert!(core::mem::align_of::<Config>() == 1);
const _: () = assert!(core::mem::size_of::<Market>() == 96);
const _: () = assert!(core::mem::size_of::<Config>() == 8 + 6 * 32 + 8 + 8 * 96);

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
}

impl Config {
    /// Fills a freshly created config.
    #[inline(always)]
    pub fn set_up(&mut self, keys: &ConfigKeys, bump: u8, vault_authority_bump: u8) {
        self.admin = *keys.admin;
        self.router_authority = *keys.router_authority;
        self.usdc_mint = *keys.usdc_mint;
        self.vault = *keys.vault;
        self.vault_authority = *keys.vault_authority;
        self.fee_account = *keys.fee_account;
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
    pub fn market_count(&self) -> u8 {
        self.market_count
    }

    #[inline(always)]
    pub fn markets(&self) -> &[Market; MAX_MARKETS] {
        &self.markets
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
        };
        config.set_up(&keys, 254, 253);
        assert_eq!(config.vault(), &[4; 32]);
        assert_eq!(&data[..8], &Config::DISCRIMINATOR);
        for (i, key) in data[8..8 + 6 * 32].chunks(32).enumerate() {
            assert_eq!(key, &[i as u8 + 1; 32]);
        }
        assert_eq!(&data[200..203], &[254, 253, 0]);
        assert_eq!(data.len(), 976);
    }
}
