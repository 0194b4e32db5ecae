//! The agents' consents on chain (SPEC §6 bytes, §7 checks).
//!
//! A relayed instruction is preceded, immediately, by one call of the Ed25519
//! signature-verify precompile holding its consents in a fixed order
//! (`lock_position`: the request as signature 0, the quote as 1; `close_position`
//! and `withdraw_with_consent`: the one consent as signature 0). The runtime has
//! verified every signature of that call before the transaction runs; this module
//! reads the call back from the Instructions sysvar (through [`crate::ed25519`],
//! which requires every offset to point inside that call) and compares its
//! public key and message, byte for byte, with what the program rebuilds from
//! its own arguments and accounts.

use crate::account::AccountView;
use crate::ed25519::{
    current_index, ed25519_signature, IntrospectionError, INSTRUCTIONS_SYSVAR_ID,
};
use crate::error::{EscrowError, ProgramResult};
use crate::syscalls::keys_eq;
use crate::Pubkey;

/// SPEC §6 prefixes.
pub const REQUEST_PREFIX: &[u8; 16] = b"perpd:request:v1";
pub const QUOTE_PREFIX: &[u8; 14] = b"perpd:quote:v1";
pub const CLOSE_PREFIX: &[u8; 14] = b"perpd:close:v1";
pub const WITHDRAW_PREFIX: &[u8; 17] = b"perpd:withdraw:v1";

/// Byte lengths of the four consents.
pub const REQUEST_LEN: usize = 16 + 32 + 32 + 8 + 1 + 1 + 8 + 1 + 8 + 4 + 8;
pub const QUOTE_LEN: usize = 14 + 32 + 32 + 32 + 8 + 8 + 8;
pub const CLOSE_LEN: usize = 14 + 32 + 32 + 1 + 4 + 8;
pub const WITHDRAW_LEN: usize = 17 + 32 + 32 + 32 + 8 + 8 + 8;

/// Reads a signed message front to back, checking each field against what
/// the program expects; `matches` is true only if every field was equal and
/// nothing is left over. No bytes are built: the message is compared in place
/// (and, for a request, hashed in place once it is known to be the terms).
pub struct Expect<'a> {
    rest: &'a [u8],
    ok: bool,
}

impl<'a> Expect<'a> {
    #[inline(always)]
    pub fn new(message: &'a [u8], len: usize) -> Self {
        Self {
            rest: message,
            ok: message.len() == len,
        }
    }

    #[inline(always)]
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if self.ok && self.rest.len() >= N {
            out.copy_from_slice(&self.rest[..N]);
            self.rest = &self.rest[N..];
        } else {
            self.ok = false;
        }
        out
    }

    #[inline(always)]
    pub fn bytes<const N: usize>(mut self, expected: &[u8; N]) -> Self {
        let got = self.take::<N>();
        self.ok &= &got == expected;
        self
    }

    #[inline(always)]
    pub fn key(mut self, expected: &Pubkey) -> Self {
        if self.ok && self.rest.len() >= 32 {
            // SAFETY: at least 32 bytes remain; [u8; 32] has alignment 1.
            let got = unsafe { &*(self.rest.as_ptr() as *const Pubkey) };
            self.ok = keys_eq(got, expected);
            self.rest = &self.rest[32..];
        } else {
            self.ok = false;
        }
        self
    }

    #[inline(always)]
    pub fn u8(mut self, expected: u8) -> Self {
        let got = self.take::<1>();
        self.ok &= got[0] == expected;
        self
    }

    #[inline(always)]
    pub fn u32(mut self, expected: u32) -> Self {
        let got = self.take::<4>();
        self.ok &= u32::from_le_bytes(got) == expected;
        self
    }

    #[inline(always)]
    pub fn u64(mut self, expected: u64) -> Self {
        let got = self.take::<8>();
        self.ok &= u64::from_le_bytes(got) == expected;
        self
    }

    #[inline(always)]
    pub fn i64(self, expected: i64) -> Self {
        self.u64(expected as u64)
    }

    #[inline(always)]
    pub fn matches(&self) -> bool {
        self.ok && self.rest.is_empty()
    }
}

/// What a request consent says.
pub struct Request<'a> {
    pub requester: &'a Pubkey,
    pub nonce: u64,
    pub market: u8,
    pub side: u8,
    pub size: u64,
    pub leverage: u8,
    pub max_rate: i64,
    pub duration: u32,
    pub expires_at: i64,
}

/// `message` is the request consent of `r` for `program` (SPEC §6).
#[inline(always)]
pub fn is_request(message: &[u8], program: &Pubkey, r: &Request) -> bool {
    Expect::new(message, REQUEST_LEN)
        .bytes(REQUEST_PREFIX)
        .key(program)
        .key(r.requester)
        .u64(r.nonce)
        .u8(r.market)
        .u8(r.side)
        .u64(r.size)
        .u8(r.leverage)
        .i64(r.max_rate)
        .u32(r.duration)
        .i64(r.expires_at)
        .matches()
}

/// What a quote consent says.
pub struct Quote<'a> {
    pub maker: &'a Pubkey,
    pub request_hash: &'a [u8; 32],
    pub rate: i64,
    pub collateral: u64,
    pub valid_until: i64,
}

/// `message` is the quote consent of `q` for `program`.
#[inline(always)]
pub fn is_quote(message: &[u8], program: &Pubkey, q: &Quote) -> bool {
    Expect::new(message, QUOTE_LEN)
        .bytes(QUOTE_PREFIX)
        .key(program)
        .key(q.maker)
        .key(q.request_hash)
        .i64(q.rate)
        .u64(q.collateral)
        .i64(q.valid_until)
        .matches()
}

/// `message` is the close consent for `size_percent` % of `position`.
#[inline(always)]
pub fn is_close(
    message: &[u8],
    program: &Pubkey,
    position: &Pubkey,
    size_percent: u8,
    (closes, expires_at): (u32, i64),
) -> bool {
    Expect::new(message, CLOSE_LEN)
        .bytes(CLOSE_PREFIX)
        .key(program)
        .key(position)
        .u8(size_percent)
        .u32(closes)
        .i64(expires_at)
        .matches()
}

/// What a withdraw consent says.
pub struct Withdrawal<'a> {
    pub agent: &'a Pubkey,
    pub destination: &'a Pubkey,
    pub amount: u64,
    pub withdrawals: u64,
    pub expires_at: i64,
}

/// `message` is the withdraw consent of `w` for `program`.
#[inline(always)]
pub fn is_withdrawal(message: &[u8], program: &Pubkey, w: &Withdrawal) -> bool {
    Expect::new(message, WITHDRAW_LEN)
        .bytes(WITHDRAW_PREFIX)
        .key(program)
        .key(w.agent)
        .key(w.destination)
        .u64(w.amount)
        .u64(w.withdrawals)
        .i64(w.expires_at)
        .matches()
}

/// Every way reading a consent call fails has its own code.
#[inline(always)]
pub fn introspection_error(error: IntrospectionError) -> EscrowError {
    match error {
        IntrospectionError::BadSysvar => EscrowError::InvalidInstructionsSysvar,
        IntrospectionError::IndexOutOfRange => EscrowError::MissingConsentSignature,
        IntrospectionError::NotEd25519 => EscrowError::NotEd25519Call,
        IntrospectionError::BadEd25519Data => EscrowError::MalformedEd25519Call,
        IntrospectionError::OffsetOutsideInstruction => EscrowError::ConsentOutsideCall,
        IntrospectionError::NoSuchSignature => EscrowError::ConsentSignatureMissing,
    }
}

/// The Ed25519 call right before the running instruction.
pub struct ConsentCall<'a> {
    sysvar: &'a [u8],
    index: u16,
}

impl<'a> ConsentCall<'a> {
    /// Locates the call through the Instructions sysvar account.
    #[inline(always)]
    pub fn preceding(instructions: &'a AccountView) -> Result<Self, EscrowError> {
        if !keys_eq(instructions.key(), &INSTRUCTIONS_SYSVAR_ID) {
            return Err(EscrowError::InvalidInstructionsSysvar);
        }
        let sysvar = instructions.data();
        let current = current_index(sysvar).map_err(introspection_error)?;
        match current.checked_sub(1) {
            Some(index) => Ok(Self { sysvar, index }),
            None => Err(EscrowError::MissingConsentSignature),
        }
    }

    /// The message of signature `n` of the call, which `signer` must have signed
    /// (`ConsentWrongSigner` otherwise).
    #[inline(always)]
    pub fn signed_by(&self, n: u8, signer: &Pubkey) -> Result<&'a [u8], EscrowError> {
        let (key, message) = self.signer(n)?;
        if keys_eq(key, signer) {
            Ok(message)
        } else {
            Err(EscrowError::ConsentWrongSigner)
        }
    }

    /// The key and the message of signature `n`.
    #[inline(always)]
    pub fn signer(&self, n: u8) -> Result<(&'a Pubkey, &'a [u8]), EscrowError> {
        let signed = ed25519_signature(self.sysvar, self.index, n).map_err(introspection_error)?;
        Ok((signed.pubkey, signed.message))
    }
}

/// Refuses a consent at or past its deadline (the daemon's rule: live while `now < deadline`).
#[inline(always)]
pub fn check_unexpired(now: i64, deadline: i64) -> ProgramResult {
    if now < deadline {
        Ok(())
    } else {
        Err(EscrowError::ConsentExpired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_bytes() -> Vec<u8> {
        let mut b = b"perpd:request:v1".to_vec();
        b.extend([1; 32]);
        b.extend([2; 32]);
        b.extend(0x0102u64.to_le_bytes());
        b.extend([1, 1]);
        b.extend(5u64.to_le_bytes());
        b.push(10);
        b.extend((-7i64).to_le_bytes());
        b.extend(3_600u32.to_le_bytes());
        b.extend(99i64.to_le_bytes());
        b
    }

    const REQUEST: Request = Request {
        requester: &[2; 32],
        nonce: 0x0102,
        market: 1,
        side: 1,
        size: 5,
        leverage: 10,
        max_rate: -7,
        duration: 3_600,
        expires_at: 99,
    };

    #[test]
    fn a_request_matches_its_spec_bytes_and_no_other() {
        let bytes = request_bytes();
        assert_eq!(bytes.len(), REQUEST_LEN);
        assert!(is_request(&bytes, &[1; 32], &REQUEST));
        assert!(!is_request(&bytes, &[3; 32], &REQUEST));
        for at in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[at] ^= 1;
            assert!(!is_request(&changed, &[1; 32], &REQUEST), "byte {at}");
        }
        assert!(!is_request(&bytes[..REQUEST_LEN - 1], &[1; 32], &REQUEST));
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(!is_request(&longer, &[1; 32], &REQUEST));
    }

    #[test]
    fn quote_close_and_withdraw_layouts() {
        let mut quote = b"perpd:quote:v1".to_vec();
        for part in [[1u8; 32], [6; 32], [7; 32]] {
            quote.extend(part);
        }
        quote.extend((-1i64).to_le_bytes());
        quote.extend(2u64.to_le_bytes());
        quote.extend(3i64.to_le_bytes());
        let q = Quote {
            maker: &[6; 32],
            request_hash: &[7; 32],
            rate: -1,
            collateral: 2,
            valid_until: 3,
        };
        assert!(is_quote(&quote, &[1; 32], &q));
        assert!(!is_quote(&quote, &[1; 32], &Quote { rate: 1, ..q }));

        let mut close = b"perpd:close:v1".to_vec();
        close.extend([1; 32]);
        close.extend([3; 32]);
        close.push(50);
        close.extend(2u32.to_le_bytes());
        close.extend(77i64.to_le_bytes());
        assert_eq!(close.len(), CLOSE_LEN);
        assert!(is_close(&close, &[1; 32], &[3; 32], 50, (2, 77)));
        assert!(!is_close(&close, &[1; 32], &[3; 32], 50, (1, 77)));

        let mut withdraw = b"perpd:withdraw:v1".to_vec();
        for part in [[1u8; 32], [4; 32], [5; 32]] {
            withdraw.extend(part);
        }
        for n in [6u64, 7, 8] {
            withdraw.extend(n.to_le_bytes());
        }
        let w = Withdrawal {
            agent: &[4; 32],
            destination: &[5; 32],
            amount: 6,
            withdrawals: 7,
            expires_at: 8,
        };
        assert!(is_withdrawal(&withdraw, &[1; 32], &w));
        assert!(!is_withdrawal(
            &withdraw,
            &[1; 32],
            &Withdrawal { amount: 5, ..w }
        ));
    }

    #[test]
    fn deadlines_are_exclusive() {
        assert_eq!(check_unexpired(99, 100), Ok(()));
        assert_eq!(check_unexpired(100, 100), Err(EscrowError::ConsentExpired));
    }
}
