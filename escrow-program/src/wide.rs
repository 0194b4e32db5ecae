//! 128-bit unsigned integers on two `u64` limbs, for the money rules' intermediates.
//!
//! LLVM 14's BPF backend has no `u128` (a 128-bit multiply or divide becomes a call
//! to `__multi3`/`__udivti3`, which the loader does not provide), and SBPF v0 has no
//! signed division, so this module uses only 64-bit unsigned multiplies, divides,
//! shifts and compares. Signs are carried beside magnitudes by the callers.

/// An unsigned 128-bit integer `hi · 2^64 + lo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U128 {
    pub hi: u64,
    pub lo: u64,
}

const LOW32: u64 = 0xffff_ffff;

impl U128 {
    pub const ZERO: U128 = U128 { hi: 0, lo: 0 };

    #[inline(always)]
    pub fn from_u64(lo: u64) -> U128 {
        U128 { hi: 0, lo }
    }

    /// The full product `a × b` (never overflows).
    #[inline(always)]
    pub fn mul(a: u64, b: u64) -> U128 {
        let (a1, a0) = (a >> 32, a & LOW32);
        let (b1, b0) = (b >> 32, b & LOW32);
        let p00 = a0 * b0;
        let p01 = a0 * b1;
        let p10 = a1 * b0;
        let p11 = a1 * b1;
        // each term < 2^32, so the sum < 3 · 2^32
        let mid = (p00 >> 32) + (p01 & LOW32) + (p10 & LOW32);
        U128 { hi: p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), lo: (mid << 32) | (p00 & LOW32) }
    }

    /// `self × b`, or `None` if the product needs more than 128 bits.
    #[inline(always)]
    pub fn checked_mul_u64(self, b: u64) -> Option<U128> {
        let low = U128::mul(self.lo, b);
        let high = U128::mul(self.hi, b);
        if high.hi != 0 {
            return None;
        }
        Some(U128 { hi: low.hi.checked_add(high.lo)?, lo: low.lo })
    }

    #[inline(always)]
    pub fn checked_add(self, other: U128) -> Option<U128> {
        let (lo, carry) = self.lo.overflowing_add(other.lo);
        let hi = self.hi.checked_add(other.hi)?.checked_add(carry as u64)?;
        Some(U128 { hi, lo })
    }

    #[inline(always)]
    pub fn checked_sub(self, other: U128) -> Option<U128> {
        let (lo, borrow) = self.lo.overflowing_sub(other.lo);
        let hi = self.hi.checked_sub(other.hi)?.checked_sub(borrow as u64)?;
        Some(U128 { hi, lo })
    }

    #[inline(always)]
    pub fn is_zero(self) -> bool {
        self.hi == 0 && self.lo == 0
    }

    /// `self >= other`.
    #[inline(always)]
    pub fn ge(self, other: U128) -> bool {
        self.hi > other.hi || (self.hi == other.hi && self.lo >= other.lo)
    }

    /// The value if it fits in a `u64`.
    #[inline(always)]
    pub fn to_u64(self) -> Option<u64> {
        if self.hi == 0 {
            Some(self.lo)
        } else {
            None
        }
    }

    /// `(⌊self / d⌋, self mod d)` for `d > 0` (`None` for `d == 0`).
    #[inline(always)]
    pub fn div_rem(self, d: u64) -> Option<(U128, u64)> {
        if d == 0 {
            return None;
        }
        let q_hi = self.hi / d;
        let (q_lo, rem) = div_128_by_64(self.hi % d, self.lo, d);
        Some((U128 { hi: q_hi, lo: q_lo }, rem))
    }
}

/// Leading zero bits of `x > 0`, by binary search (no `ctlz` in SBPF v0).
#[inline(always)]
fn leading_zeros(mut x: u64) -> u32 {
    let mut n = 0;
    for shift in [32u32, 16, 8, 4, 2, 1] {
        if x >> (64 - shift) == 0 {
            n += shift;
            x <<= shift;
        }
    }
    n
}

/// `(u1 · 2^64 + u0) / v` and its remainder, for `u1 < v` (so the quotient fits in
/// 64 bits): long division in base 2^32 with the divisor normalised (Knuth's
/// algorithm D, two quotient digits; the estimate is corrected at most twice).
#[inline(always)]
fn div_128_by_64(u1: u64, u0: u64, v: u64) -> (u64, u64) {
    const B: u64 = 1 << 32;
    let s = leading_zeros(v);
    let v = v << s;
    let (vn1, vn0) = (v >> 32, v & LOW32);
    let un32 = if s == 0 { u1 } else { (u1 << s) | (u0 >> (64 - s)) };
    let un10 = u0 << s;
    let (un1, un0) = (un10 >> 32, un10 & LOW32);

    let mut q1 = un32 / vn1;
    let mut rhat = un32 - q1 * vn1;
    // `q1 >= B` is tested first, so `q1 * vn0` below never overflows
    while q1 >= B || q1 * vn0 > (rhat << 32) + un1 {
        q1 -= 1;
        rhat += vn1;
        if rhat >= B {
            break;
        }
    }
    let un21 = (un32 << 32).wrapping_add(un1).wrapping_sub(q1.wrapping_mul(v));

    let mut q0 = un21 / vn1;
    let mut rhat = un21 - q0 * vn1;
    while q0 >= B || q0 * vn0 > (rhat << 32) + un0 {
        q0 -= 1;
        rhat += vn1;
        if rhat >= B {
            break;
        }
    }
    let rem = (un21 << 32).wrapping_add(un0).wrapping_sub(q0.wrapping_mul(v)) >> s;
    ((q1 << 32) | q0, rem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(x: u128) -> U128 {
        U128 { hi: (x >> 64) as u64, lo: x as u64 }
    }

    fn native(x: U128) -> u128 {
        (x.hi as u128) << 64 | x.lo as u128
    }

    /// Values around every limb and digit boundary, plus a deterministic spread.
    fn samples() -> Vec<u64> {
        let mut v = vec![0, 1, 2, 3, 7, 10, 99, 100, 1_000_000];
        for bit in [31, 32, 33, 62, 63] {
            let p = 1u64 << bit;
            v.extend([p - 1, p, p + 1]);
        }
        v.extend([u64::MAX - 1, u64::MAX, u64::MAX / 3, 0x8000_0000_ffff_ffff, 0xffff_ffff_0000_0001]);
        let mut x = 0x5EED_u64;
        for _ in 0..40 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            v.push(x >> (x % 64));
        }
        v
    }

    #[test]
    fn mul_agrees_with_u128() {
        for &a in &samples() {
            for &b in &samples() {
                assert_eq!(native(U128::mul(a, b)), a as u128 * b as u128, "{a} * {b}");
            }
        }
    }

    #[test]
    fn checked_mul_and_add_agree_with_u128() {
        for &a in &samples() {
            for &b in &samples() {
                for &c in &[0u64, 1, 2, 100, 1 << 32, u64::MAX] {
                    let x = U128::mul(a, b);
                    assert_eq!(
                        x.checked_mul_u64(c).map(native),
                        native(x).checked_mul(c as u128),
                        "{a}*{b}*{c}"
                    );
                    let y = U128::mul(b, c);
                    assert_eq!(x.checked_add(y).map(native), native(x).checked_add(native(y)));
                    assert_eq!(x.checked_sub(y).map(native), native(x).checked_sub(native(y)));
                    assert_eq!(x.ge(y), native(x) >= native(y));
                }
            }
        }
    }

    #[test]
    fn div_rem_agrees_with_u128() {
        let s = samples();
        for &a in &s {
            for &b in &s {
                let n = U128::mul(a, b);
                for &extra in &[0u64, 1, u64::MAX] {
                    let n = n.checked_add(U128::from_u64(extra)).unwrap_or(n);
                    for &d in &s {
                        let got = n.div_rem(d);
                        if d == 0 {
                            assert_eq!(got, None);
                            continue;
                        }
                        let (q, r) = got.unwrap();
                        let (nq, nr) = (native(n) / d as u128, native(n) % d as u128);
                        assert_eq!((native(q), r as u128), (nq, nr), "{} / {d}", native(n));
                    }
                }
            }
        }
        assert_eq!(wide(u128::MAX).div_rem(1), Some((wide(u128::MAX), 0)));
        assert_eq!(
            wide(u128::MAX).div_rem(u64::MAX).map(|(q, r)| (native(q), r)),
            Some((u128::MAX / u64::MAX as u128, 0))
        );
    }

    #[test]
    fn leading_zeros_agrees() {
        for &x in &samples() {
            if x != 0 {
                assert_eq!(leading_zeros(x), x.leading_zeros(), "{x}");
            }
        }
    }
}
