//! Rent-exempt minimum balances, in integers.
//!
//! The runtime computes `((128 + len) * lamports_per_byte_year) as f64 *
//! exemption_threshold`; SBPF has no floating point (and this build has no
//! soft-float library), so the threshold is accepted when it is an exact small
//! integer (2.0 on every cluster today, 1.0 after SIMD-0194), which makes the
//! integer product exactly the runtime's value.

use crate::error::EscrowError;
use crate::math::checked_mul;

/// Bytes of account metadata rent is also charged for.
pub const ACCOUNT_STORAGE_OVERHEAD: u64 = 128;

/// The rent sysvar as the runtime writes it.
#[repr(C)]
#[derive(Default)]
struct Rent {
    lamports_per_byte_year: u64,
    exemption_threshold_bits: u64,
    burn_percent: u64,
}

/// The value of the IEEE-754 double `bits` if it is an integer in `1..2^32`.
pub fn exact_small_integer(bits: u64) -> Option<u64> {
    let exponent = (bits >> 52) & 0x7ff;
    let fraction = bits & ((1 << 52) - 1);
    if bits >> 63 != 0 || !(1023..1023 + 32).contains(&exponent) {
        return None;
    }
    let shift = 52 - (exponent - 1023);
    if fraction & ((1 << shift) - 1) != 0 {
        return None;
    }
    Some((fraction | 1 << 52) >> shift)
}

/// Lamports that make an account of `data_len` bytes rent-exempt.
pub fn minimum_balance(
    lamports_per_byte_year: u64,
    threshold_bits: u64,
    data_len: u64,
) -> Option<u64> {
    let threshold = exact_small_integer(threshold_bits)?;
    let bytes = ACCOUNT_STORAGE_OVERHEAD.checked_add(data_len)?;
    checked_mul(checked_mul(bytes, lamports_per_byte_year)?, threshold)
}

/// Lamports that make an account of `data_len` bytes rent-exempt now
/// (reads the rent sysvar), or `u64::MAX` if they cannot be computed.
#[inline(never)]
pub fn minimum_balance_now(data_len: u64) -> u64 {
    #[cfg_attr(not(target_arch = "bpf"), allow(unused_mut))]
    let mut rent = Rent::default();
    #[cfg(target_arch = "bpf")]
    // SAFETY: `rent` is a valid, writable, 8-aligned buffer of the sysvar's size.
    let status = unsafe { crate::syscalls::sol_get_rent_sysvar(&mut rent as *mut Rent as *mut u8) };
    #[cfg(not(target_arch = "bpf"))]
    let status = 1;
    if status != 0 {
        return u64::MAX;
    }
    minimum_balance(rent.lamports_per_byte_year, rent.exemption_threshold_bits, data_len)
        .unwrap_or(u64::MAX)
}

/// [`minimum_balance_now`] as a result.
#[inline(always)]
pub fn rent_exempt_lamports(data_len: usize) -> Result<u64, EscrowError> {
    match minimum_balance_now(data_len as u64) {
        u64::MAX => Err(EscrowError::RentUnavailable),
        lamports => Ok(lamports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_thresholds_are_exact() {
        assert_eq!(exact_small_integer(2.0f64.to_bits()), Some(2));
        assert_eq!(exact_small_integer(1.0f64.to_bits()), Some(1));
        assert_eq!(exact_small_integer(3.0f64.to_bits()), Some(3));
        assert_eq!(exact_small_integer(2.5f64.to_bits()), None);
        assert_eq!(exact_small_integer(0.5f64.to_bits()), None);
        assert_eq!(exact_small_integer((-2.0f64).to_bits()), None);
        assert_eq!(exact_small_integer(0.0f64.to_bits()), None);
    }

    #[test]
    fn matches_the_runtime_formula() {
        // Default rent: 3,480 lamports per byte-year, threshold 2.0.
        for len in [0u64, 72, 165, 976] {
            let runtime = (((128 + len) * 3_480) as f64 * 2.0) as u64;
            assert_eq!(minimum_balance(3_480, 2.0f64.to_bits(), len), Some(runtime));
        }
    }
}
