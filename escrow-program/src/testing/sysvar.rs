//! Builds Instructions-sysvar data and Ed25519 precompile data the way the runtime
//! and `solana-ed25519-program`'s helpers lay them out (see `crate::ed25519`).

/// One instruction of a transaction: program id, (flags, key) per account, data.
#[derive(Clone, Debug)]
pub struct Ix {
    pub program_id: [u8; 32],
    pub accounts: Vec<(u8, [u8; 32])>,
    pub data: Vec<u8>,
}

/// The Instructions sysvar's data for `ixs`, executing instruction `current`.
pub fn instructions_sysvar(ixs: &[Ix], current: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(ixs.len() as u16).to_le_bytes());
    out.resize(2 + 2 * ixs.len(), 0);
    for (i, ix) in ixs.iter().enumerate() {
        let start = out.len() as u16;
        out[2 + 2 * i..4 + 2 * i].copy_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&(ix.accounts.len() as u16).to_le_bytes());
        for (flags, key) in &ix.accounts {
            out.push(*flags);
            out.extend_from_slice(key);
        }
        out.extend_from_slice(&ix.program_id);
        out.extend_from_slice(&(ix.data.len() as u16).to_le_bytes());
        out.extend_from_slice(&ix.data);
    }
    out.extend_from_slice(&current.to_le_bytes());
    out
}

/// One signature of a precompile call; `ix` holds its three instruction-index
/// fields (signature, public key, message).
#[derive(Clone, Debug)]
pub struct Sig {
    pub signature: [u8; 64],
    pub pubkey: [u8; 32],
    pub message: Vec<u8>,
    pub ix: [u16; 3],
}

impl Sig {
    /// Everything inside the call itself (`u16::MAX`), as solders/agave build it.
    pub fn inline(pubkey: &[u8; 32], message: &[u8]) -> Self {
        Sig { signature: [0x5a; 64], pubkey: *pubkey, message: message.to_vec(), ix: [u16::MAX; 3] }
    }
}

/// An Ed25519 precompile call: header, offsets table, then per signature its
/// signature, key and message. (The signatures are not real: the runtime verifies
/// them before the program runs; these tests are about what the program reads.)
pub fn ed25519_call(sigs: &[Sig]) -> Ix {
    let mut data = vec![sigs.len() as u8, 0];
    let mut at = 2 + 14 * sigs.len();
    let mut tail = Vec::new();
    for s in sigs {
        let (sig_at, key_at, msg_at) = (at, at + 64, at + 96);
        at += 96 + s.message.len();
        for v in
            [sig_at, s.ix[0] as usize, key_at, s.ix[1] as usize, msg_at, s.message.len(), s.ix[2] as usize]
        {
            data.extend_from_slice(&(v as u16).to_le_bytes());
        }
        tail.extend_from_slice(&s.signature);
        tail.extend_from_slice(&s.pubkey);
        tail.extend_from_slice(&s.message);
    }
    data.extend_from_slice(&tail);
    Ix { program_id: crate::ed25519::ED25519_PROGRAM_ID, accounts: vec![], data }
}

/// Base58 (Bitcoin alphabet) of `bytes`, to check address constants by their names.
pub fn base58(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut digits: Vec<u8> = Vec::new(); // little-endian base-58 digits
    for &b in bytes {
        let mut carry = b as u32;
        for d in digits.iter_mut() {
            carry += (*d as u32) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    let mut out = "1".repeat(zeros);
    out.extend(digits.iter().rev().map(|&d| ALPHABET[d as usize] as char));
    out
}
