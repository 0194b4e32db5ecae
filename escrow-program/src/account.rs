//! Zero-copy views of the accounts the loader serialises into the program's input.
//!
//! The input (SBPF v0, aligned loader) is, for each account, either a one-byte
//! index of an earlier duplicate plus 7 bytes of padding, or:
//!
//! ```text
//! u8 0xff | u8 is_signer | u8 is_writable | u8 executable | [u8; 4] padding
//! [u8; 32] key | [u8; 32] owner | u64 lamports | u64 data_len
//! [u8; data_len] data | [u8; 10_240] realloc room | padding to 8 | u64 rent_epoch
//! ```
//!
//! followed by `u64 len | [u8; len] instruction data | [u8; 32] program id`.

use core::mem::{size_of, MaybeUninit};

use crate::Pubkey;

/// Marker in the first byte of an account that is not a duplicate.
pub const NON_DUP_MARKER: u8 = 0xff;
/// Room the loader leaves after each account's data for `realloc`.
pub const MAX_PERMITTED_DATA_INCREASE: usize = 10 * 1024;
/// The most accounts the entrypoint exposes; any further account is ignored.
/// (A transaction locks at most 64 accounts; `settle_funding` takes as many
/// positions as fit one.)
pub const MAX_ACCOUNTS: usize = 64;

/// The fixed-size header the loader writes before each account's data.
#[repr(C)]
pub struct RawAccount {
    pub dup_marker: u8,
    pub is_signer: u8,
    pub is_writable: u8,
    pub executable: u8,
    pub original_data_len: [u8; 4],
    pub key: Pubkey,
    pub owner: Pubkey,
    pub lamports: u64,
    pub data_len: u64,
}

/// A view of one serialised account. Two views of a duplicated account point
/// at the same header, which is why processors check that the accounts they
/// write are distinct before taking mutable views.
#[derive(Clone, Copy)]
pub struct AccountView {
    raw: *mut RawAccount,
}

impl AccountView {
    /// # Safety
    /// `raw` must point at a serialised account header followed by its data,
    /// valid for the whole instruction.
    #[inline(always)]
    pub unsafe fn new(raw: *mut RawAccount) -> Self {
        Self { raw }
    }

    #[inline(always)]
    fn header(&self) -> &RawAccount {
        // SAFETY: `new` requires a valid header for the life of the instruction.
        unsafe { &*self.raw }
    }

    #[inline(always)]
    pub fn key(&self) -> &Pubkey {
        &self.header().key
    }

    /// The program that owns the account.
    #[inline(always)]
    pub fn owner(&self) -> &Pubkey {
        &self.header().owner
    }

    #[inline(always)]
    pub fn is_signer(&self) -> bool {
        self.header().is_signer != 0
    }

    #[inline(always)]
    pub fn is_writable(&self) -> bool {
        self.header().is_writable != 0
    }

    #[inline(always)]
    pub fn is_executable(&self) -> bool {
        self.header().executable != 0
    }

    #[inline(always)]
    pub fn lamports(&self) -> u64 {
        self.header().lamports
    }

    #[inline(always)]
    pub fn data_len(&self) -> usize {
        self.header().data_len as usize
    }

    /// Whether both views are of the same account (the runtime serialises a
    /// duplicated account once, so they share the header).
    #[inline(always)]
    pub fn is(&self, other: &AccountView) -> bool {
        core::ptr::eq(self.raw, other.raw)
    }

    /// The account's data.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        // SAFETY: the loader writes `data_len` bytes of data right after the header.
        unsafe { core::slice::from_raw_parts(self.data_ptr(), self.data_len()) }
    }

    /// The account's data, writable.
    ///
    /// # Safety
    /// No other reference to this account's data may be live while the result
    /// is: the caller checks the account is not also passed under another index.
    #[inline(always)]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn data_mut(&self) -> &mut [u8] {
        // SAFETY: the loader writes `data_len` bytes of data right after the header;
        // exclusivity is the caller's contract.
        unsafe { core::slice::from_raw_parts_mut(self.data_ptr(), self.data_len()) }
    }

    /// Pointer to the first data byte.
    #[inline(always)]
    pub fn data_ptr(&self) -> *mut u8 {
        // SAFETY: the data starts right after the header, inside the same input region.
        unsafe { (self.raw as *mut u8).add(size_of::<RawAccount>()) }
    }

    /// Pointer to the lamports field (for CPI account infos).
    #[inline(always)]
    pub fn lamports_ptr(&self) -> *mut u64 {
        // SAFETY: projecting a field of a valid header does not read it.
        unsafe { core::ptr::addr_of_mut!((*self.raw).lamports) }
    }

    /// The account's rent epoch, stored after its data and realloc room.
    #[inline(always)]
    pub fn rent_epoch(&self) -> u64 {
        let offset = align8(self.data_len() + MAX_PERMITTED_DATA_INCREASE);
        // SAFETY: the loader writes an aligned u64 rent epoch at this offset after the data.
        unsafe { *(self.data_ptr().add(offset) as *const u64) }
    }
}

#[inline(always)]
const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// What [`deserialize`] found in the input.
pub struct Input<'a> {
    pub accounts: &'a [AccountView],
    pub data: &'a [u8],
    pub program_id: &'a Pubkey,
}

/// Reads the loader's input: up to [`MAX_ACCOUNTS`] account views (into
/// `accounts`), the instruction data and the program id.
///
/// # Safety
/// `input` must be the pointer the loader passes to the entrypoint (or a
/// buffer laid out and aligned the same way), valid for `'a`.
#[inline(always)]
pub unsafe fn deserialize<'a>(
    input: *mut u8,
    accounts: &'a mut [MaybeUninit<AccountView>; MAX_ACCOUNTS],
) -> Input<'a> {
    // SAFETY (whole function): the loader's layout, documented above, guarantees every
    // offset read below lies inside the input and every u64 is 8-byte aligned.
    unsafe {
        let count = *(input as *const u64) as usize;
        let mut offset = size_of::<u64>();
        let mut stored = 0;
        let mut index = 0;
        while index < count {
            let raw = input.add(offset) as *mut RawAccount;
            let view = if (*raw).dup_marker == NON_DUP_MARKER {
                let data_len = (*raw).data_len as usize;
                offset += size_of::<RawAccount>() + align8(data_len + MAX_PERMITTED_DATA_INCREASE);
                offset += size_of::<u64>(); // rent epoch
                Some(AccountView::new(raw))
            } else {
                offset += size_of::<u64>();
                // A duplicate names an earlier index; past MAX_ACCOUNTS it is not kept.
                let original = (*raw).dup_marker as usize;
                if original < stored {
                    Some(accounts[original].assume_init())
                } else {
                    None
                }
            };
            if stored < MAX_ACCOUNTS && stored == index {
                if let Some(view) = view {
                    accounts[stored] = MaybeUninit::new(view);
                    stored += 1;
                }
            }
            index += 1;
        }
        let data_len = *(input.add(offset) as *const u64) as usize;
        offset += size_of::<u64>();
        let data = core::slice::from_raw_parts(input.add(offset), data_len);
        offset += data_len;
        let program_id = &*(input.add(offset) as *const Pubkey);
        let accounts = core::slice::from_raw_parts(accounts.as_ptr() as *const AccountView, stored);
        Input { accounts, data, program_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lays out an input buffer the way the aligned loader does.
    pub(crate) struct InputBuilder {
        bytes: Vec<u8>,
        count: u64,
    }

    impl InputBuilder {
        pub(crate) fn new() -> Self {
            Self { bytes: vec![0; 8], count: 0 }
        }

        pub(crate) fn account(mut self, key: u8, signer: bool, writable: bool, data: &[u8]) -> Self {
            self.bytes.extend([NON_DUP_MARKER, signer as u8, writable as u8, 0, 0, 0, 0, 0]);
            self.bytes.extend([key; 32]);
            self.bytes.extend([7u8; 32]); // owner
            self.bytes.extend(1_000u64.to_le_bytes());
            self.bytes.extend((data.len() as u64).to_le_bytes());
            self.bytes.extend(data);
            self.bytes.extend(vec![0; align8(data.len() + MAX_PERMITTED_DATA_INCREASE) - data.len()]);
            self.bytes.extend(42u64.to_le_bytes()); // rent epoch
            self.count += 1;
            self
        }

        pub(crate) fn duplicate(mut self, of: u8) -> Self {
            self.bytes.extend([of, 0, 0, 0, 0, 0, 0, 0]);
            self.count += 1;
            self
        }

        /// Returns the buffer as u64 words so that it is 8-byte aligned.
        pub(crate) fn finish(mut self, data: &[u8], program_id: u8) -> Vec<u64> {
            self.bytes[..8].copy_from_slice(&self.count.to_le_bytes());
            self.bytes.extend((data.len() as u64).to_le_bytes());
            self.bytes.extend(data);
            self.bytes.extend([program_id; 32]);
            self.bytes.resize(align8(self.bytes.len()), 0);
            self.bytes.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap())).collect()
        }
    }

    #[test]
    fn reads_accounts_duplicates_data_and_program_id() {
        let mut words = InputBuilder::new()
            .account(1, true, false, &[])
            .account(2, false, true, &[9, 8, 7])
            .duplicate(1)
            .finish(&[0xaa, 0xbb], 5);
        let mut slots = [MaybeUninit::uninit(); MAX_ACCOUNTS];
        // SAFETY: the builder lays the buffer out like the loader, 8-byte aligned.
        let input = unsafe { deserialize(words.as_mut_ptr() as *mut u8, &mut slots) };
        assert_eq!(input.accounts.len(), 3);
        assert_eq!(input.accounts[0].key(), &[1; 32]);
        assert!(input.accounts[0].is_signer() && !input.accounts[0].is_writable());
        assert_eq!(input.accounts[1].data(), &[9, 8, 7]);
        assert_eq!(input.accounts[1].rent_epoch(), 42);
        assert_eq!(input.accounts[1].lamports(), 1_000);
        assert_eq!(input.accounts[2].key(), &[2; 32]);
        assert_eq!(input.data, &[0xaa, 0xbb]);
        assert_eq!(input.program_id, &[5; 32]);
    }

    #[test]
    fn keeps_at_most_max_accounts() {
        let mut builder = InputBuilder::new();
        for key in 0..(MAX_ACCOUNTS as u8 + 4) {
            builder = builder.account(key, false, false, &[key]);
        }
        let mut words = builder.finish(&[1], 3);
        let mut slots = [MaybeUninit::uninit(); MAX_ACCOUNTS];
        // SAFETY: as above.
        let input = unsafe { deserialize(words.as_mut_ptr() as *mut u8, &mut slots) };
        assert_eq!(input.accounts.len(), MAX_ACCOUNTS);
        assert_eq!(input.data, &[1]);
        assert_eq!(input.program_id, &[3; 32]);
    }
}
