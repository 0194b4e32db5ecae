//! The runtime's syscalls, and thin safe wrappers used by the rest of the crate.
//!
//! On the host (unit tests) the wrappers that touch the chain are unreachable;
//! the pure ones (`keys_eq`) fall back to plain Rust.

use crate::Pubkey;

#[cfg(target_arch = "bpf")]
extern "C" {
    pub fn sol_log_(message: *const u8, len: u64);
    pub fn sol_panic_(file: *const u8, len: u64, line: u64, column: u64) -> !;
    pub fn sol_memcpy_(dst: *mut u8, src: *const u8, n: u64);
    pub fn sol_memmove_(dst: *mut u8, src: *const u8, n: u64);
    pub fn sol_memset_(dst: *mut u8, value: u8, n: u64);
    pub fn sol_memcmp_(a: *const u8, b: *const u8, n: u64, result: *mut i32);
    pub fn sol_get_rent_sysvar(out: *mut u8) -> u64;
    pub fn sol_get_clock_sysvar(out: *mut u8) -> u64;
    pub fn sol_sha256(slices: *const u8, slices_len: u64, out: *mut u8) -> u64;
    pub fn sol_curve_validate_point(curve_id: u64, point: *const u8, result: *mut u8) -> u64;
    pub fn sol_try_find_program_address(
        seeds: *const u8,
        seeds_len: u64,
        program_id: *const u8,
        address: *mut u8,
        bump: *mut u8,
    ) -> u64;
    pub fn sol_invoke_signed_c(
        instruction: *const u8,
        account_infos: *const u8,
        account_infos_len: u64,
        signers_seeds: *const u8,
        signers_seeds_len: u64,
    ) -> u64;
}

/// Writes `message` to the program log.
#[inline(always)]
pub fn log(message: &[u8]) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: the syscall only reads `len` bytes from a valid slice.
    unsafe {
        sol_log_(message.as_ptr(), message.len() as u64)
    };
    #[cfg(not(target_arch = "bpf"))]
    let _ = message;
}

/// Whether two addresses are equal (one `sol_memcmp_`: cheaper on SBPF than
/// comparing unaligned 8-byte words, which LLVM splits into byte loads).
#[inline(always)]
pub fn keys_eq(a: &Pubkey, b: &Pubkey) -> bool {
    #[cfg(target_arch = "bpf")]
    {
        let mut result: i32 = 0;
        // SAFETY: both pointers address 32 readable bytes; `result` is a valid out-pointer.
        unsafe { sol_memcmp_(a.as_ptr(), b.as_ptr(), 32, &mut result) };
        result == 0
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        a == b
    }
}

/// The Clock sysvar's `unix_timestamp` (the cluster's time, unix seconds).
#[inline(never)]
pub fn unix_timestamp() -> Result<i64, crate::error::EscrowError> {
    // slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix_timestamp
    #[cfg_attr(not(target_arch = "bpf"), allow(unused_mut))]
    let mut clock = [0i64; 5];
    #[cfg(target_arch = "bpf")]
    // SAFETY: `clock` is a writable, 8-aligned 40-byte buffer, the sysvar's size.
    let status = unsafe { sol_get_clock_sysvar(clock.as_mut_ptr() as *mut u8) };
    #[cfg(not(target_arch = "bpf"))]
    let status = 1;
    if status == 0 {
        Ok(clock[4])
    } else {
        Err(crate::error::EscrowError::ClockUnavailable)
    }
}

/// SHA-256 of `bytes` (one syscall on chain; the host tests have no use for it).
#[inline(always)]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    #[cfg(target_arch = "bpf")]
    let mut out = [0u8; 32];
    #[cfg(target_arch = "bpf")]
    {
        let slices = [Seed::new(bytes)];
        // SAFETY: one (pointer, length) slice descriptor over a live slice; `out` is 32 bytes.
        unsafe { sol_sha256(slices.as_ptr() as *const u8, 1, out.as_mut_ptr()) };
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        let _ = bytes;
        unreachable!("hashing is the runtime's syscall")
    }
    #[cfg(target_arch = "bpf")]
    out
}

/// One seed of a program-derived address: `(pointer, length)` as the runtime reads it.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Seed {
    addr: *const u8,
    len: u64,
}

impl Seed {
    #[inline(always)]
    pub fn new(bytes: &[u8]) -> Self {
        Self { addr: bytes.as_ptr(), len: bytes.len() as u64 }
    }

    /// A seed over bytes that may change between two calls on one seed array
    /// (a bump tried after another): the runtime reads them as they are then.
    #[inline(always)]
    pub fn cells(bytes: &[core::cell::Cell<u8>]) -> Self {
        // `Cell<u8>` has the layout of `u8`.
        Self { addr: bytes.as_ptr() as *const u8, len: bytes.len() as u64 }
    }
}

/// Finds the canonical program-derived address of `seeds` (highest bump off
/// the curve), writing it to `address`; returns the bump, or `None` when no
/// bump gives an address off the curve.
///
/// Costs 1,500 CU per bump tried: used only when an account is created.
#[inline(always)]
pub fn find_program_address(seeds: &[Seed], program_id: &Pubkey, address: &mut Pubkey) -> Option<u8> {
    #[cfg(target_arch = "bpf")]
    {
        let mut bump: u8 = 0;
        // SAFETY: `seeds` is a valid array of `Seed` (the C `SolSignerSeed` layout), the
        // program id is 32 readable bytes, `address` and `bump` are valid out-pointers.
        let status = unsafe {
            sol_try_find_program_address(
                seeds.as_ptr() as *const u8,
                seeds.len() as u64,
                program_id.as_ptr(),
                address.as_mut_ptr(),
                &mut bump,
            )
        };
        if status == 0 {
            Some(bump)
        } else {
            None
        }
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        let _ = (seeds, program_id, address);
        unreachable!("program-derived addresses are computed by the runtime")
    }
}

/// What `create_program_address` hashes after the seeds and the program id.
pub const PDA_MARKER: &[u8] = b"ProgramDerivedAddress";

/// `sol_curve_validate_point`'s curve id for Edwards25519 (Solana's addresses).
#[cfg(target_arch = "bpf")]
const CURVE25519_EDWARDS: u64 = 0;

/// Whether `preimage` (the seeds with their bump, then the program id, then
/// [`PDA_MARKER`]: exactly what `create_program_address` hashes) gives a
/// program-derived address, i.e. its SHA-256 is not a point of Edwards25519.
///
/// The runtime's own test in two syscalls, `sol_sha256` (85 CU + 1 per 2 bytes
/// of each slice, at least 10 a slice: 147 for a position's five) and
/// `sol_curve_validate_point` (159 CU), where `create_program_address` costs
/// 1,500. Like it, the seeds must be at most 16 of at most 32 bytes each (the
/// caller's are fixed).
#[inline(always)]
pub fn is_program_address(preimage: &[Seed]) -> bool {
    #[cfg(target_arch = "bpf")]
    {
        let mut hash = core::mem::MaybeUninit::<[u8; 32]>::uninit();
        // SAFETY: `preimage` is a valid array of (pointer, length) descriptors over
        // live slices and `hash` is 32 writable bytes, which `sol_sha256` fills
        // (or the program aborts) before the point validation reads them; that
        // syscall never writes through its third argument.
        let on_curve = unsafe {
            let hash = hash.as_mut_ptr() as *mut u8;
            sol_sha256(preimage.as_ptr() as *const u8, preimage.len() as u64, hash);
            sol_curve_validate_point(CURVE25519_EDWARDS, hash, core::ptr::null_mut())
        };
        // 0: a point of the curve (no address for these seeds); 1: off the curve.
        on_curve != 0
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        let _ = preimage;
        unreachable!("program-derived addresses are computed by the runtime")
    }
}

/// Copies an address (one `sol_memcpy_`, ~15 CU, where LLVM's inline copy of
/// 32 unaligned bytes is 64 byte loads and stores).
#[inline(always)]
pub fn copy_key(dst: &mut Pubkey, src: &Pubkey) {
    #[cfg(target_arch = "bpf")]
    // SAFETY: both are 32 valid bytes; `&mut` and `&` cannot overlap.
    unsafe {
        sol_memcpy_(dst.as_mut_ptr(), src.as_ptr(), 32)
    };
    #[cfg(not(target_arch = "bpf"))]
    {
        *dst = *src;
    }
}
