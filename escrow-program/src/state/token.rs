//! Read-only views of SPL Token accounts (the program at
//! `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`; Token-2022 is not accepted).

use super::read_u64;
use crate::account::AccountView;
use crate::error::EscrowError;
use crate::syscalls::keys_eq;
use crate::Pubkey;

/// `TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA`.
pub const TOKEN_PROGRAM_ID: Pubkey = [
    6, 221, 246, 225, 215, 101, 161, 147, 217, 203, 225, 70, 206, 235, 121, 172, 28, 180, 133,
    237, 95, 91, 55, 145, 58, 140, 245, 133, 126, 255, 0, 169,
];

/// `AccountState::Initialized` of SPL Token (0 uninitialized, 2 frozen).
const INITIALIZED: u8 = 1;

/// An SPL Token account (165 bytes).
#[repr(C)]
pub struct TokenAccount {
    mint: Pubkey,
    owner: Pubkey,
    amount: [u8; 8],
    delegate_tag: [u8; 4],
    delegate: Pubkey,
    state: u8,
    is_native_tag: [u8; 4],
    is_native: [u8; 8],
    delegated_amount: [u8; 8],
    close_authority_tag: [u8; 4],
    close_authority: Pubkey,
}

const _: () = assert!(core::mem::size_of::<TokenAccount>() == 165);
const _: () = assert!(core::mem::align_of::<TokenAccount>() == 1);

impl TokenAccount {
    pub const LEN: usize = 165;

    /// A view of `data` if it is an initialized (not frozen) token account.
    #[inline(always)]
    pub fn from_bytes(data: &[u8]) -> Result<&Self, EscrowError> {
        if data.len() != Self::LEN {
            return Err(EscrowError::InvalidTokenAccount);
        }
        // SAFETY: length checked; byte-array struct, alignment 1, every bit pattern valid.
        let account = unsafe { &*(data.as_ptr() as *const Self) };
        if account.state != INITIALIZED {
            return Err(EscrowError::InvalidTokenAccount);
        }
        Ok(account)
    }

    /// A view of `account`: owned by SPL Token, initialized, not frozen.
    #[inline(always)]
    pub fn load(account: &AccountView) -> Result<&Self, EscrowError> {
        if !keys_eq(account.owner(), &TOKEN_PROGRAM_ID) {
            return Err(EscrowError::InvalidTokenAccount);
        }
        Self::from_bytes(account.data())
    }

    #[inline(always)]
    pub fn mint(&self) -> &Pubkey {
        &self.mint
    }

    /// The token authority (not the Solana account owner, which is SPL Token).
    #[inline(always)]
    pub fn owner(&self) -> &Pubkey {
        &self.owner
    }

    #[inline(always)]
    pub fn amount(&self) -> u64 {
        read_u64(&self.amount)
    }

    #[inline(always)]
    pub fn has_delegate(&self) -> bool {
        self.delegate_tag != [0; 4]
    }

    #[inline(always)]
    pub fn has_close_authority(&self) -> bool {
        self.close_authority_tag != [0; 4]
    }

    #[inline(always)]
    pub fn is_native(&self) -> bool {
        self.is_native_tag != [0; 4]
    }
}

/// An SPL Token mint (82 bytes).
#[repr(C)]
pub struct Mint {
    mint_authority_tag: [u8; 4],
    mint_authority: Pubkey,
    supply: [u8; 8],
    decimals: u8,
    is_initialized: u8,
    freeze_authority_tag: [u8; 4],
    freeze_authority: Pubkey,
}

const _: () = assert!(core::mem::size_of::<Mint>() == 82);

impl Mint {
    pub const LEN: usize = 82;

    /// A view of `data` if it is an initialized mint.
    #[inline(always)]
    pub fn from_bytes(data: &[u8]) -> Result<&Self, EscrowError> {
        if data.len() != Self::LEN {
            return Err(EscrowError::InvalidMint);
        }
        // SAFETY: length checked; byte-array struct, alignment 1, every bit pattern valid.
        let mint = unsafe { &*(data.as_ptr() as *const Self) };
        if mint.is_initialized != 1 {
            return Err(EscrowError::InvalidMint);
        }
        Ok(mint)
    }

    /// A view of `account`: owned by SPL Token, an initialized mint.
    #[inline(always)]
    pub fn load(account: &AccountView) -> Result<&Self, EscrowError> {
        if !keys_eq(account.owner(), &TOKEN_PROGRAM_ID) {
            return Err(EscrowError::InvalidMint);
        }
        Self::from_bytes(account.data())
    }

    #[inline(always)]
    pub fn decimals(&self) -> u8 {
        self.decimals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_account(state: u8) -> Vec<u8> {
        let mut data = vec![0u8; 165];
        data[..32].copy_from_slice(&[1; 32]);
        data[32..64].copy_from_slice(&[2; 32]);
        data[64..72].copy_from_slice(&500u64.to_le_bytes());
        data[108] = state;
        data
    }

    #[test]
    fn reads_the_spl_token_account_layout() {
        let data = token_account(1);
        let account = TokenAccount::from_bytes(&data).unwrap();
        assert_eq!(account.mint(), &[1; 32]);
        assert_eq!(account.owner(), &[2; 32]);
        assert_eq!(account.amount(), 500);
        assert!(!account.has_delegate() && !account.has_close_authority() && !account.is_native());
    }

    #[test]
    fn refuses_uninitialized_frozen_and_short_accounts() {
        for state in [0, 2] {
            let data = token_account(state);
            assert_eq!(TokenAccount::from_bytes(&data).err(), Some(EscrowError::InvalidTokenAccount));
        }
        assert_eq!(TokenAccount::from_bytes(&[0; 82]).err(), Some(EscrowError::InvalidTokenAccount));
    }

    #[test]
    fn reads_mint_decimals() {
        let mut data = vec![0u8; 82];
        data[44] = 6;
        data[45] = 1;
        assert_eq!(Mint::from_bytes(&data).unwrap().decimals(), 6);
        data[45] = 0;
        assert_eq!(Mint::from_bytes(&data).err(), Some(EscrowError::InvalidMint));
    }
}
