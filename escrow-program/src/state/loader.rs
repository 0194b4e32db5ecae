//! The BPF Loader Upgradeable's accounts, read by `initialize` to find the
//! program's upgrade authority.
//!
//! Both are bincode `UpgradeableLoaderState` values (a u32 variant tag, then
//! the fields; `Option<Pubkey>` is a one-byte tag then the key):
//!
//! ```text
//! Program     = 2u32 | programdata_address[32]                       (36 bytes)
//! ProgramData = 3u32 | slot u64 | Some = 1u8 | upgrade_authority[32] (45 bytes, then the ELF)
//! ```

use crate::account::AccountView;
use crate::error::EscrowError;
use crate::syscalls::keys_eq;
use crate::Pubkey;

/// `BPFLoaderUpgradeab1e11111111111111111111111`.
pub const UPGRADEABLE_LOADER_ID: Pubkey = [
    2, 168, 246, 145, 78, 136, 161, 176, 226, 16, 21, 62, 247, 99, 174, 43, 0, 194, 185, 61, 22,
    193, 36, 210, 192, 83, 122, 16, 4, 128, 0, 0,
];

const PROGRAM_TAG: [u8; 4] = [2, 0, 0, 0];
const PROGRAM_DATA_TAG: [u8; 4] = [3, 0, 0, 0];
/// Bytes of `ProgramData` metadata before the ELF.
pub const PROGRAM_DATA_METADATA_LEN: usize = 45;

/// The ProgramData address a Program account names: `program` must be
/// `program_id` itself, executable, owned by the upgradeable loader.
#[inline(always)]
pub fn programdata_address<'a>(
    program: &'a AccountView,
    program_id: &Pubkey,
) -> Result<&'a Pubkey, EscrowError> {
    let data = program.data();
    if !keys_eq(program.key(), program_id)
        || !keys_eq(program.owner(), &UPGRADEABLE_LOADER_ID)
        || !program.is_executable()
        || data.len() != 36
        || data[..4] != PROGRAM_TAG
    {
        return Err(EscrowError::InvalidProgramAccount);
    }
    // SAFETY: the length is checked: bytes 4..36 are a 32-byte key.
    Ok(unsafe { &*(data.as_ptr().add(4) as *const Pubkey) })
}

/// The upgrade authority recorded in `programdata`, which must be at `address`
/// and owned by the upgradeable loader; a program made immutable has none.
#[inline(always)]
pub fn upgrade_authority<'a>(
    programdata: &'a AccountView,
    address: &Pubkey,
) -> Result<&'a Pubkey, EscrowError> {
    let data = programdata.data();
    if !keys_eq(programdata.key(), address)
        || !keys_eq(programdata.owner(), &UPGRADEABLE_LOADER_ID)
        || data.len() < PROGRAM_DATA_METADATA_LEN
        || data[..4] != PROGRAM_DATA_TAG
        || data[12] != 1
    {
        return Err(EscrowError::InvalidProgramData);
    }
    // SAFETY: the length is checked: bytes 13..45 are a 32-byte key.
    Ok(unsafe { &*(data.as_ptr().add(13) as *const Pubkey) })
}
