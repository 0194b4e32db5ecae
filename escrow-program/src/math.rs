//! Checked integer arithmetic the LLVM 14 BPF backend can compile.
//!
//! `u64::checked_mul` lowers to a 128-bit multiply (`__multi3`), which that
//! backend does not support; these helpers use only 64-bit operations.

/// `a * b`, or `None` on overflow.
///
/// Works on 32-bit halves: the obvious `(a * b) / a == b` check is folded by
/// LLVM back into a 128-bit multiply.
#[inline(always)]
pub fn checked_mul(a: u64, b: u64) -> Option<u64> {
    const LOW: u64 = 0xffff_ffff;
    let (a_high, a_low) = (a >> 32, a & LOW);
    let (b_high, b_low) = (b >> 32, b & LOW);
    if a_high != 0 && b_high != 0 {
        return None;
    }
    // At most one of the two cross products is non-zero; each fits in 64 bits.
    let cross = a_high * b_low + a_low * b_high;
    if cross > LOW {
        return None;
    }
    (cross << 32).checked_add(a_low * b_low)
}

#[cfg(test)]
mod tests {
    use super::checked_mul;

    #[test]
    fn agrees_with_the_standard_library() {
        let samples = [0, 1, 2, 3, 7, 0xffff_ffff, 0x1_0000_0000, u64::MAX / 3, u64::MAX - 1, u64::MAX];
        for a in samples {
            for b in samples {
                assert_eq!(checked_mul(a, b), a.checked_mul(b), "{a} * {b}");
            }
        }
    }
}
