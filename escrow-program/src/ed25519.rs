//! Reading an Ed25519 signature-verify precompile call from the Instructions sysvar.
//!
//! A relayed instruction (SPEC §7 "Consent on chain") is preceded in its transaction
//! by a call of the Ed25519 precompile over the agent's consent bytes. The runtime
//! has verified that call's signatures before the program runs (a bad signature
//! fails the whole transaction); what the program must still check is *what* was
//! verified: the public key and the message. The precompile can take each of the
//! signature, the key and the message from any instruction of the transaction, so
//! we accept only offsets that point inside the call itself (instruction index
//! `u16::MAX`, "this instruction", or the call's own index); otherwise a call
//! could verify a signature over bytes that merely *look* like a consent elsewhere.
//!
//! Instructions sysvar data, as agave's `construct_instructions_data` /
//! `serialize_instructions` write it (solana-sdk `instructions-sysvar/src/lib.rs`,
//! checked with the code search; `deserialize_instruction` there reads it back the
//! same way), all integers little-endian:
//!
//! ```text
//! u16 num_instructions | u16 offset[num_instructions]   (from the start of the data)
//! per instruction, at its offset:
//!   u16 num_accounts | (u8 flags (bit 0 signer, bit 1 writable), [u8; 32] key)[num_accounts]
//!   [u8; 32] program_id | u16 data_len | [u8; data_len] data
//! u16 current instruction index                          (the last two bytes)
//! ```
//!
//! Ed25519 precompile data (agave `ed25519-program`: `SIGNATURE_OFFSETS_START` = 2,
//! `SIGNATURE_OFFSETS_SERIALIZED_SIZE` = 14, `Ed25519SignatureOffsets` field order):
//!
//! ```text
//! u8 num_signatures | u8 padding
//! per signature, 14 bytes: u16 signature_offset, u16 signature_instruction_index,
//!   u16 public_key_offset, u16 public_key_instruction_index, u16 message_data_offset,
//!   u16 message_data_size, u16 message_instruction_index
//! then (usually) the signatures, keys and messages the offsets point at
//! ```
//!
//! Everything here is bounds-checked with `get` (no panics, no syscalls).

/// `Ed25519SigVerify111111111111111111111111111`.
pub const ED25519_PROGRAM_ID: [u8; 32] = [
    3, 125, 70, 214, 124, 147, 251, 190, 18, 249, 66, 143, 131, 141, 64, 255, 5, 112, 116, 73, 39, 244, 138,
    100, 252, 202, 112, 68, 128, 0, 0, 0,
];
/// `Sysvar1nstructions1111111111111111111111111`.
pub const INSTRUCTIONS_SYSVAR_ID: [u8; 32] = [
    6, 167, 213, 23, 24, 123, 209, 102, 53, 218, 212, 4, 85, 253, 194, 192, 193, 36, 198, 143, 33, 86, 117,
    165, 219, 186, 203, 95, 8, 0, 0, 0,
];

/// An instruction-index field meaning "the instruction being verified".
pub const THIS_INSTRUCTION: u16 = u16::MAX;
const SIGNATURE_LEN: usize = 64;
const PUBKEY_LEN: usize = 32;
const OFFSETS_START: usize = 2;
const OFFSETS_LEN: usize = 14;
/// Bytes of one account entry in a serialised instruction: flags + key.
const ACCOUNT_META_LEN: usize = 33;

/// Why no signed message could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectionError {
    /// The sysvar data does not have the layout above (too short, an offset or a
    /// length running past its end, a current index beyond the instructions).
    BadSysvar,
    /// No instruction of the transaction has that index.
    IndexOutOfRange,
    /// The instruction at that index is not a call of the Ed25519 precompile.
    NotEd25519,
    /// The precompile's data is too short for its header or offset table.
    BadEd25519Data,
    /// An instruction-index field names another instruction, or an offset/size runs
    /// past the call's data.
    OffsetOutsideInstruction,
    /// The call carries fewer signatures than the one asked for.
    NoSuchSignature,
}

/// A public key and the message the precompile verified a signature of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedMessage<'a> {
    pub pubkey: &'a [u8; 32],
    pub message: &'a [u8],
}

#[inline(always)]
fn read_u16(data: &[u8], at: usize) -> Option<u16> {
    match data.get(at..at.checked_add(2)?) {
        Some(&[lo, hi]) => Some(u16::from_le_bytes([lo, hi])),
        _ => None,
    }
}

#[inline(always)]
fn slice(data: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    data.get(at..at.checked_add(len)?)
}

/// The index, in its transaction, of the instruction being executed (the sysvar's
/// last two bytes); `BadSysvar` if it is not below the number of instructions.
#[inline(always)]
pub fn current_index(sysvar_data: &[u8]) -> Result<u16, IntrospectionError> {
    let len = sysvar_data.len();
    let at = len.checked_sub(2).ok_or(IntrospectionError::BadSysvar)?;
    let num = read_u16(sysvar_data, 0).ok_or(IntrospectionError::BadSysvar)?;
    let index = read_u16(sysvar_data, at).ok_or(IntrospectionError::BadSysvar)?;
    if at < 2 || index >= num {
        return Err(IntrospectionError::BadSysvar);
    }
    Ok(index)
}

/// The program id and data of instruction `index` of the transaction.
#[inline(always)]
fn instruction(sysvar_data: &[u8], index: u16) -> Result<(&[u8], &[u8]), IntrospectionError> {
    use IntrospectionError::BadSysvar;
    // The instructions proper end where the trailing current index begins.
    let body = sysvar_data.get(..sysvar_data.len().checked_sub(2).ok_or(BadSysvar)?).ok_or(BadSysvar)?;
    let num = read_u16(body, 0).ok_or(BadSysvar)?;
    if index >= num {
        return Err(IntrospectionError::IndexOutOfRange);
    }
    let start = read_u16(body, 2 + 2 * index as usize).ok_or(BadSysvar)? as usize;
    let num_accounts = read_u16(body, start).ok_or(BadSysvar)? as usize;
    let program_at = start + 2 + ACCOUNT_META_LEN * num_accounts;
    let program_id = slice(body, program_at, 32).ok_or(BadSysvar)?;
    let data_len = read_u16(body, program_at + 32).ok_or(BadSysvar)? as usize;
    let data = slice(body, program_at + 34, data_len).ok_or(BadSysvar)?;
    Ok((program_id, data))
}

/// The `n`-th signature of the Ed25519 precompile call at instruction `index` of this
/// transaction: requires that instruction's program id to be Ed25519's, and every
/// instruction-index field of that signature (signature, public key, message) to be
/// `u16::MAX` or `index` itself ("pointing inside that same call"), and every
/// offset/size to lie inside that instruction's data.
#[inline(always)]
pub fn ed25519_signature<'a>(
    sysvar_data: &'a [u8],
    index: u16,
    n: u8,
) -> Result<SignedMessage<'a>, IntrospectionError> {
    use IntrospectionError::{BadEd25519Data, OffsetOutsideInstruction};
    let (program_id, data) = instruction(sysvar_data, index)?;
    if program_id != ED25519_PROGRAM_ID {
        return Err(IntrospectionError::NotEd25519);
    }
    let count = *data.first().ok_or(BadEd25519Data)?;
    if OFFSETS_START + OFFSETS_LEN * count as usize > data.len() {
        return Err(BadEd25519Data);
    }
    if n >= count {
        return Err(IntrospectionError::NoSuchSignature);
    }
    let at = OFFSETS_START + OFFSETS_LEN * n as usize;
    let field = |i: usize| read_u16(data, at + 2 * i).ok_or(BadEd25519Data);
    let (sig_offset, sig_ix) = (field(0)?, field(1)?);
    let (key_offset, key_ix) = (field(2)?, field(3)?);
    let (msg_offset, msg_size, msg_ix) = (field(4)?, field(5)?, field(6)?);
    for ix in [sig_ix, key_ix, msg_ix] {
        if ix != THIS_INSTRUCTION && ix != index {
            return Err(OffsetOutsideInstruction);
        }
    }
    slice(data, sig_offset as usize, SIGNATURE_LEN).ok_or(OffsetOutsideInstruction)?;
    let key = slice(data, key_offset as usize, PUBKEY_LEN).ok_or(OffsetOutsideInstruction)?;
    let message = slice(data, msg_offset as usize, msg_size as usize).ok_or(OffsetOutsideInstruction)?;
    let pubkey = <&[u8; 32]>::try_from(key).map_err(|_| OffsetOutsideInstruction)?;
    Ok(SignedMessage { pubkey, message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::sysvar::{ed25519_call, instructions_sysvar, Ix, Sig};
    use IntrospectionError::*;

    const PROGRAM: [u8; 32] = [9; 32];
    const KEY: [u8; 32] = [0xa1; 32];
    const OTHER_KEY: [u8; 32] = [0xb2; 32];

    fn consent_call(message: &[u8]) -> Ix {
        ed25519_call(&[Sig::inline(&KEY, message)])
    }

    fn escrow_ix() -> Ix {
        Ix {
            program_id: PROGRAM,
            accounts: vec![(1, KEY), (2, OTHER_KEY), (3, INSTRUCTIONS_SYSVAR_ID)],
            data: vec![7; 40],
        }
    }

    #[test]
    fn reads_the_signed_key_and_message() {
        // Given a transaction [compute budget-like ix, Ed25519 call, escrow ix]
        let other = Ix { program_id: [4; 32], accounts: vec![], data: vec![1, 2, 3] };
        let sysvar = instructions_sysvar(&[other, consent_call(b"perpd:close:v1 hello"), escrow_ix()], 2);
        // When the program reads signature 0 of instruction 1
        let got = ed25519_signature(&sysvar, 1, 0).unwrap();
        // Then it sees exactly what was signed
        assert_eq!(got.pubkey, &KEY);
        assert_eq!(got.message, b"perpd:close:v1 hello");
        assert_eq!(current_index(&sysvar), Ok(2));
    }

    #[test]
    fn several_signatures_and_the_own_index_as_pointer() {
        // Given one call carrying two signatures, the second naming its own index (1)
        let mut second = Sig::inline(&OTHER_KEY, b"quote");
        second.ix = [1, 1, 1];
        let call = ed25519_call(&[Sig::inline(&KEY, b"request"), second]);
        let sysvar = instructions_sysvar(&[escrow_ix(), call, escrow_ix()], 2);
        let first = ed25519_signature(&sysvar, 1, 0).unwrap();
        let second = ed25519_signature(&sysvar, 1, 1).unwrap();
        assert_eq!((first.pubkey, first.message), (&KEY, &b"request"[..]));
        assert_eq!((second.pubkey, second.message), (&OTHER_KEY, &b"quote"[..]));
        assert_eq!(ed25519_signature(&sysvar, 1, 2), Err(NoSuchSignature));
    }

    #[test]
    fn each_index_field_pointing_elsewhere_is_refused() {
        for field in 0..3 {
            let mut sig = Sig::inline(&KEY, b"consent");
            sig.ix[field] = 0; // instruction 0: the other instruction of the transaction
            let sysvar = instructions_sysvar(&[escrow_ix(), ed25519_call(&[sig.clone()])], 1);
            assert_eq!(ed25519_signature(&sysvar, 1, 0), Err(OffsetOutsideInstruction), "field {field}");
            sig.ix[field] = 2; // an index past the transaction
            let sysvar = instructions_sysvar(&[escrow_ix(), ed25519_call(&[sig.clone()])], 1);
            assert_eq!(ed25519_signature(&sysvar, 1, 0), Err(OffsetOutsideInstruction), "field {field}");
        }
    }

    #[test]
    fn offsets_and_sizes_past_the_data_are_refused() {
        let base = consent_call(b"consent");
        let len = base.data.len() as u16;
        // (byte position of the u16 in the offsets table, value just past the data)
        let cases = [(2, len - 63), (6, len - 31), (10, len - 6), (12, 8)];
        for (pos, value) in cases {
            let mut call = base.clone();
            call.data[pos..pos + 2].copy_from_slice(&value.to_le_bytes());
            let sysvar = instructions_sysvar(&[call.clone(), escrow_ix()], 1);
            assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(OffsetOutsideInstruction), "byte {pos}");
            // one less fits (the message then spans to the very end)
            call.data[pos..pos + 2].copy_from_slice(&(value - 1).to_le_bytes());
            let sysvar = instructions_sysvar(&[call, escrow_ix()], 1);
            assert!(ed25519_signature(&sysvar, 0, 0).is_ok(), "byte {pos}");
        }
        // the largest offsets wrap nothing: u16::MAX + 64 is simply out of range
        let mut call = base;
        call.data[2..4].copy_from_slice(&u16::MAX.to_le_bytes());
        let sysvar = instructions_sysvar(&[call, escrow_ix()], 1);
        assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(OffsetOutsideInstruction));
    }

    #[test]
    fn not_the_ed25519_program() {
        let sysvar = instructions_sysvar(&[escrow_ix(), escrow_ix()], 1);
        assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(NotEd25519));
        let mut call = consent_call(b"x");
        call.program_id[31] = 1;
        let sysvar = instructions_sysvar(&[call, escrow_ix()], 1);
        assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(NotEd25519));
    }

    #[test]
    fn short_precompile_data() {
        for data in [vec![], vec![1], vec![1, 0, 0], vec![2; 16 + 13]] {
            let call = Ix { program_id: ED25519_PROGRAM_ID, accounts: vec![], data };
            let sysvar = instructions_sysvar(&[call, escrow_ix()], 1);
            assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(BadEd25519Data));
        }
        let call = Ix { program_id: ED25519_PROGRAM_ID, accounts: vec![], data: vec![0, 0] };
        let sysvar = instructions_sysvar(&[call, escrow_ix()], 1);
        assert_eq!(ed25519_signature(&sysvar, 0, 0), Err(NoSuchSignature));
    }

    #[test]
    fn index_out_of_range() {
        let sysvar = instructions_sysvar(&[consent_call(b"x"), escrow_ix()], 1);
        assert_eq!(ed25519_signature(&sysvar, 2, 0), Err(IndexOutOfRange));
        assert_eq!(ed25519_signature(&sysvar, u16::MAX, 0), Err(IndexOutOfRange));
    }

    #[test]
    fn bad_sysvar_lengths() {
        let sysvar = instructions_sysvar(&[consent_call(b"consent"), escrow_ix()], 1);
        let second_starts = u16::from_le_bytes([sysvar[4], sysvar[5]]) as usize;
        // Every truncation is refused as BadSysvar until instruction 0 is whole again
        // (the last two bytes are always read as the current index, never as data).
        for cut in 0..sysvar.len() {
            let got = ed25519_signature(&sysvar[..cut], 0, 0);
            if cut < second_starts + 2 {
                assert_eq!(got, Err(BadSysvar), "cut {cut}");
            } else {
                assert!(got.is_ok(), "cut {cut}");
            }
            let _ = current_index(&sysvar[..cut]); // never panics
        }
        assert_eq!(current_index(&[]), Err(BadSysvar));
        assert_eq!(current_index(&[1, 0]), Err(BadSysvar));
        assert_eq!(current_index(&[1, 0, 4, 0, 0, 0]), Ok(0));
        assert_eq!(current_index(&[1, 0, 4, 0, 1, 0]), Err(BadSysvar));
        // an instruction offset pointing past the data
        let mut bad = sysvar.clone();
        bad[2..4].copy_from_slice(&(sysvar.len() as u16).to_le_bytes());
        assert_eq!(ed25519_signature(&bad, 0, 0), Err(BadSysvar));
        // an account count running past the data
        let mut bad = sysvar.clone();
        let start = u16::from_le_bytes([sysvar[2], sysvar[3]]) as usize;
        bad[start..start + 2].copy_from_slice(&1000u16.to_le_bytes());
        assert_eq!(ed25519_signature(&bad, 0, 0), Err(BadSysvar));
        // a data length running past the data
        let mut bad = sysvar;
        let len_at = start + 2 + 32;
        bad[len_at..len_at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(ed25519_signature(&bad, 0, 0), Err(BadSysvar));
    }

    #[test]
    fn program_ids_decode_from_base58() {
        assert_eq!(
            crate::testing::sysvar::base58(&ED25519_PROGRAM_ID),
            "Ed25519SigVerify111111111111111111111111111"
        );
        assert_eq!(
            crate::testing::sysvar::base58(&INSTRUCTIONS_SYSVAR_ID),
            "Sysvar1nstructions1111111111111111111111111"
        );
    }
}
