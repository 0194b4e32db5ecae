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
use crate::ed25519::{current_index, ed25519_signature, IntrospectionError, INSTRUCTIONS_SYSVAR_ID};
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

/// A consent being written: fixed capacity, filled front to back.
pub struct Bytes<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Bytes<N> {
    #[inline(always)]
    pub fn new() -> Self {
        Self { buf: [0; N], len: 0 }
    }

    /// Appends `bytes` (the lengths above are exact: a short or long write is a bug
    /// the host tests catch, and `as_slice` refuses an incomplete consent).
    #[inline(always)]
    pub fn put(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        self
    }

    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        assert!(self.len == N, "consent written incompletely");
        &self.buf
    }
}

impl<const N: usize> Default for Bytes<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// The request terms a requester signs.
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

#[inline(always)]
pub fn request_consent(program: &Pubkey, r: &Request) -> Bytes<REQUEST_LEN> {
    let mut bytes = Bytes::new();
    bytes
        .put(REQUEST_PREFIX)
        .put(program)
        .put(r.requester)
        .put(&r.nonce.to_le_bytes())
        .put(&[r.market, r.side])
        .put(&r.size.to_le_bytes())
        .put(&[r.leverage])
        .put(&r.max_rate.to_le_bytes())
        .put(&r.duration.to_le_bytes())
        .put(&r.expires_at.to_le_bytes());
    bytes
}

/// The quote terms a maker signs.
pub struct Quote<'a> {
    pub maker: &'a Pubkey,
    pub request_hash: &'a [u8; 32],
    pub rate: i64,
    pub collateral: u64,
    pub valid_until: i64,
}

#[inline(always)]
pub fn quote_consent(program: &Pubkey, q: &Quote) -> Bytes<QUOTE_LEN> {
    let mut bytes = Bytes::new();
    bytes
        .put(QUOTE_PREFIX)
        .put(program)
        .put(q.maker)
        .put(q.request_hash)
        .put(&q.rate.to_le_bytes())
        .put(&q.collateral.to_le_bytes())
        .put(&q.valid_until.to_le_bytes());
    bytes
}

#[inline(always)]
pub fn close_consent(
    program: &Pubkey,
    position: &Pubkey,
    size_percent: u8,
    closes: u32,
    expires_at: i64,
) -> Bytes<CLOSE_LEN> {
    let mut bytes = Bytes::new();
    bytes
        .put(CLOSE_PREFIX)
        .put(program)
        .put(position)
        .put(&[size_percent])
        .put(&closes.to_le_bytes())
        .put(&expires_at.to_le_bytes());
    bytes
}

/// The withdrawal terms an agent signs.
pub struct Withdrawal<'a> {
    pub agent: &'a Pubkey,
    pub destination: &'a Pubkey,
    pub amount: u64,
    pub withdrawals: u64,
    pub expires_at: i64,
}

#[inline(always)]
pub fn withdraw_consent(program: &Pubkey, w: &Withdrawal) -> Bytes<WITHDRAW_LEN> {
    let mut bytes = Bytes::new();
    bytes
        .put(WITHDRAW_PREFIX)
        .put(program)
        .put(w.agent)
        .put(w.destination)
        .put(&w.amount.to_le_bytes())
        .put(&w.withdrawals.to_le_bytes())
        .put(&w.expires_at.to_le_bytes());
    bytes
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

    /// Signature `n` of the call: signed by `signer`, over exactly `expected`.
    /// A different key is `ConsentWrongSigner`; other bytes are `mismatch`.
    #[inline(always)]
    pub fn verify(&self, n: u8, signer: &Pubkey, expected: &[u8], mismatch: EscrowError) -> ProgramResult {
        let signed = self.signer(n)?;
        if !keys_eq(signed.0, signer) {
            return Err(EscrowError::ConsentWrongSigner);
        }
        if signed.1 != expected {
            return Err(mismatch);
        }
        Ok(())
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

    #[test]
    fn lengths_are_the_spec_layouts() {
        let request = Request {
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
        let bytes = request_consent(&[1; 32], &request);
        let b = bytes.as_slice();
        assert_eq!(&b[..16], b"perpd:request:v1");
        assert_eq!(&b[16..48], &[1; 32]);
        assert_eq!(&b[48..80], &[2; 32]);
        assert_eq!(&b[80..88], &0x0102u64.to_le_bytes());
        assert_eq!(&b[88..90], &[1, 1]);
        assert_eq!(b[98], 10);
        assert_eq!(&b[99..107], &(-7i64).to_le_bytes());
        assert_eq!(&b[107..111], &3_600u32.to_le_bytes());
        assert_eq!(&b[111..], &99i64.to_le_bytes());
        let close = close_consent(&[1; 32], &[3; 32], 50, 2, 77);
        assert_eq!(&close.as_slice()[78..83], &[50, 2, 0, 0, 0]);
        let w = Withdrawal { agent: &[4; 32], destination: &[5; 32], amount: 6, withdrawals: 7, expires_at: 8 };
        assert_eq!(&withdraw_consent(&[1; 32], &w).as_slice()[113..121], &6u64.to_le_bytes());
        let q = Quote { maker: &[6; 32], request_hash: &[7; 32], rate: -1, collateral: 2, valid_until: 3 };
        assert_eq!(&quote_consent(&[1; 32], &q).as_slice()[110..118], &(-1i64).to_le_bytes());
    }

    #[test]
    fn deadlines_are_exclusive() {
        assert_eq!(check_unexpired(99, 100), Ok(()));
        assert_eq!(check_unexpired(100, 100), Err(EscrowError::ConsentExpired));
    }
}
