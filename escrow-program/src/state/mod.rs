//! Account layouts: this program's own (Anchor discriminator first, then the
//! Borsh encoding of the fields, which for these fixed-size structs is their
//! `#[repr(C)]` byte layout), and the SPL Token accounts it reads.
//!
//! Every struct here is made only of byte arrays (alignment 1), so a view can
//! be laid over any data pointer; numbers are read and written by getters.

pub mod collateral;
pub mod config;
pub mod loader;
pub mod position;
pub mod token;

pub use collateral::Collateral;
pub use config::{Config, Market};
pub use position::Position;
pub use token::{Mint, TokenAccount};

use crate::account::AccountView;
use crate::error::EscrowError;
use crate::syscalls::keys_eq;
use crate::Pubkey;

/// An account owned by this program: fixed length, 8-byte discriminator
/// (`sha256("account:<Name>")[..8]`) first.
pub trait ProgramAccount: Sized {
    /// `sha256("account:<Name>")[..8]`.
    const DISCRIMINATOR: [u8; 8];
    /// Length of the account's data, discriminator included.
    const LEN: usize = core::mem::size_of::<Self>();

    /// A view of `data`, after checking its length and discriminator.
    #[inline(always)]
    fn from_bytes(data: &[u8]) -> Result<&Self, EscrowError> {
        if data.len() != Self::LEN || data[..8] != Self::DISCRIMINATOR {
            return Err(EscrowError::InvalidAccountData);
        }
        // SAFETY: the length is checked; `Self` is `repr(C)` of byte arrays, so any
        // pointer is aligned for it and any bytes are a valid value.
        Ok(unsafe { &*(data.as_ptr() as *const Self) })
    }

    /// A writable view of `data`, after checking its length and discriminator.
    #[inline(always)]
    fn from_bytes_mut(data: &mut [u8]) -> Result<&mut Self, EscrowError> {
        if data.len() != Self::LEN || data[..8] != Self::DISCRIMINATOR {
            return Err(EscrowError::InvalidAccountData);
        }
        // SAFETY: as in `from_bytes`; the exclusive borrow of `data` is carried over.
        Ok(unsafe { &mut *(data.as_mut_ptr() as *mut Self) })
    }

    /// Writes the discriminator into freshly allocated, zeroed `data` and
    /// returns a writable view.
    #[inline(always)]
    fn init(data: &mut [u8]) -> Result<&mut Self, EscrowError> {
        if data.len() != Self::LEN {
            return Err(EscrowError::InvalidAccountData);
        }
        data[..8].copy_from_slice(&Self::DISCRIMINATOR);
        Self::from_bytes_mut(data)
    }

    /// A view of `account`: owned by `program_id`, right length and discriminator.
    #[inline(always)]
    fn load<'a>(account: &'a AccountView, program_id: &Pubkey) -> Result<&'a Self, EscrowError> {
        if !keys_eq(account.owner(), program_id) {
            return Err(EscrowError::InvalidAccountOwner);
        }
        Self::from_bytes(account.data())
    }

    /// A writable view of `account`, with the checks of [`ProgramAccount::load`]
    /// and that the account is writable.
    ///
    /// # Safety
    /// No other view of this account's data may be live: the caller has checked
    /// that the account is not passed twice.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    unsafe fn load_mut<'a>(
        account: &'a AccountView,
        program_id: &Pubkey,
    ) -> Result<&'a mut Self, EscrowError> {
        if !keys_eq(account.owner(), program_id) {
            return Err(EscrowError::InvalidAccountOwner);
        }
        if !account.is_writable() {
            return Err(EscrowError::NotWritable);
        }
        // SAFETY: exclusivity is the caller's contract.
        Self::from_bytes_mut(unsafe { account.data_mut() })
    }
}

#[inline(always)]
pub(crate) fn read_u64(bytes: &[u8; 8]) -> u64 {
    u64::from_le_bytes(*bytes)
}
