//! Test-only: exposes `money`, `pyth` and `ed25519` to a real SVM.
//!
//! `tests/chain/test_escrow_math_sbpf.py` copies the escrow program to a temporary
//! directory, adds this module and a call to `run` at the top of the entrypoint, builds
//! it with the project's own toolchain (rustc → llc-14 → sbpf_link.py) and runs it in
//! LiteSVM, so the modules' BPF code (not only their host build) is checked against the
//! shared vectors. Instruction data: `0xA5, op, args as 8-byte little-endian words`;
//! results go back as return data (8-byte words); a refusal is a custom error code.
//! It reads the loader's input itself so it depends on nothing but the SBPF ABI.

use crate::money::{self, FundingResult, PositionMath, Side};

const MAGIC: u8 = 0xA5;
/// A money function answered `None`.
const REFUSED: u64 = 1;
const MAX_DATA_INCREASE: usize = 10 * 1024;

extern "C" {
    fn sol_set_return_data(data: *const u8, len: u64);
}

/// The first account's data and the instruction data in the loader's input.
///
/// # Safety
/// `input` is the loader's serialised input (SBPF v0, aligned).
#[inline(always)]
unsafe fn parse<'a>(input: *const u8) -> (Option<&'a [u8]>, &'a [u8]) {
    let read = |at: usize| unsafe { core::ptr::read_unaligned(input.add(at) as *const u64) };
    let count = read(0) as usize;
    let mut at = 8;
    let mut first = None;
    for i in 0..count {
        if unsafe { *input.add(at) } != 0xff {
            at += 8; // a duplicate: index + padding
            continue;
        }
        let len = read(at + 8 + 64 + 8) as usize;
        let data_at = at + 8 + 64 + 8 + 8;
        if i == 0 {
            first = Some(unsafe { core::slice::from_raw_parts(input.add(data_at), len) });
        }
        at = (data_at + len + MAX_DATA_INCREASE + 7) / 8 * 8 + 8;
    }
    let len = read(at) as usize;
    (first, unsafe { core::slice::from_raw_parts(input.add(at + 8), len) })
}

struct Out {
    buf: [u8; 256],
    len: usize,
}

impl Out {
    fn word(&mut self, v: u64) {
        self.buf[self.len..self.len + 8].copy_from_slice(&v.to_le_bytes());
        self.len += 8;
    }
    fn state(&mut self, s: &PositionMath) {
        for v in [
            s.side as i64 as u64,
            s.notional,
            s.entry_price,
            s.cr,
            s.cm,
            s.imr,
            s.imm,
            s.rate_ppm as u64,
            s.t_base as u64,
            s.funding_paid as u64,
        ] {
            self.word(v);
        }
    }
    fn funding(&mut self, f: &FundingResult) {
        self.state(&f.state);
        self.word(f.transfer as u64);
        self.word(f.due as u64);
    }
}

fn side_code(s: Option<Side>) -> u64 {
    match s {
        None => 0,
        Some(Side::Requester) => 1,
        Some(Side::Maker) => 2,
    }
}

/// The `i`-th argument word.
#[inline(always)]
fn w(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&data[2 + 8 * i..10 + 8 * i]);
    u64::from_le_bytes(b)
}

#[inline(always)]
fn state(data: &[u8], i: usize) -> PositionMath {
    PositionMath {
        side: w(data, i) as i64 as i8,
        notional: w(data, i + 1),
        entry_price: w(data, i + 2),
        cr: w(data, i + 3),
        cm: w(data, i + 4),
        imr: w(data, i + 5),
        imm: w(data, i + 6),
        rate_ppm: w(data, i + 7) as i64,
        t_base: w(data, i + 8) as i64,
        funding_paid: w(data, i + 9) as i64,
    }
}

/// Sends `out` back as return data: 0, or `REFUSED` if the function said `None`.
#[inline(always)]
fn reply(out: &Out, ok: Option<()>) -> u64 {
    if ok.is_none() {
        return REFUSED;
    }
    // SAFETY: the syscall copies `len` bytes out of `out.buf`.
    unsafe { sol_set_return_data(out.buf.as_ptr(), out.len as u64) };
    0
}

// One function per operation keeps each stack frame under LLVM's 512-byte limit.

#[inline(never)]
fn scalar(data: &[u8]) -> u64 {
    let mut out = Out { buf: [0; 256], len: 0 };
    let d = data;
    let ok = match data[1] {
        1 => money::initial_margin(w(d, 0), w(d, 1)).map(|v| out.word(v)),
        2 => money::open_fee(w(d, 0)).map(|v| out.word(v)),
        3 => money::pnl(w(d, 0) as i64 as i8, w(d, 1), w(d, 2), w(d, 3)).map(|v| out.word(v as u64)),
        4 => money::funding_due(w(d, 0), w(d, 1) as i64, w(d, 2) as i64, w(d, 3) as i64)
            .map(|v| out.word(v as u64)),
        _ => money::liquidatable_side(&state(d, 0), w(d, 10)).map(|s| out.word(side_code(s))),
    };
    reply(&out, ok)
}

#[inline(never)]
fn settle(data: &[u8]) -> u64 {
    let mut out = Out { buf: [0; 256], len: 0 };
    let mut f = FundingResult { state: state(data, 0), transfer: 0, due: 0 };
    if !money::settle_funding_into(&state(data, 0), w(data, 10) as i64, w(data, 11) as i64, &mut f) {
        return REFUSED;
    }
    out.funding(&f);
    reply(&out, Some(()))
}

// close_position and liquidate through their `_into` forms, as a processor with a
// tight frame would call them: inlined into one frame with a reply buffer, the
// `Option`-returning forms exceed LLVM's 512-byte BPF limit.

#[inline(never)]
fn close_into(data: &[u8], out: &mut Out) -> u64 {
    let d = data;
    let mut c = money::CloseResult {
        funding: FundingResult { state: state(d, 0), transfer: 0, due: 0 },
        pct: 0,
        closed_notional: 0,
        pnl: 0,
        requester_release: 0,
        maker_release: 0,
        remaining: None,
    };
    let args = money::CloseArgs {
        pct: w(d, 10) as u8,
        price: w(d, 11),
        now: w(d, 12) as i64,
        period_s: w(d, 13) as i64,
    };
    if !money::close_position_into(&state(d, 0), &args, &mut c) {
        return REFUSED;
    }
    out.funding(&c.funding);
    for v in [c.pct as u64, c.closed_notional, c.pnl as u64, c.requester_release, c.maker_release] {
        out.word(v);
    }
    out.word(c.remaining.is_some() as u64);
    if let Some(rem) = &c.remaining {
        out.state(rem);
    }
    0
}

#[inline(never)]
fn liquidate_into(data: &[u8], out: &mut Out) -> u64 {
    let d = data;
    let mut l = money::LiquidationResult {
        funding: FundingResult { state: state(d, 0), transfer: 0, due: 0 },
        side: Side::Requester,
        pnl: 0,
        transfer: 0,
        reward: 0,
        requester_release: 0,
        maker_release: 0,
    };
    if !money::liquidate_into(&state(d, 0), w(d, 10), w(d, 11) as i64, w(d, 12) as i64, &mut l) {
        return REFUSED;
    }
    out.funding(&l.funding);
    out.word(side_code(Some(l.side)));
    for v in [l.pnl as u64, l.transfer as u64, l.reward, l.requester_release, l.maker_release] {
        out.word(v);
    }
    0
}

/// Runs `f` with a fresh reply buffer and sends the buffer back if it succeeded.
#[inline(always)]
fn with_reply(data: &[u8], f: fn(&[u8], &mut Out) -> u64) -> u64 {
    let mut out = Out { buf: [0; 256], len: 0 };
    let code = f(data, &mut out);
    reply(&out, if code == 0 { Some(()) } else { None })
}

#[inline(never)]
fn price(account: &[u8], data: &[u8]) -> u64 {
    let mut out = Out { buf: [0; 256], len: 0 };
    let mut feed = [0u8; 32];
    feed.copy_from_slice(&data[10..42]);
    match crate::pyth::read_price(account, &feed, w(data, 0) as i64) {
        Ok(p) => {
            out.word(p.price);
            out.word(p.conf);
            out.word(p.publish_time as u64);
            reply(&out, Some(()))
        }
        Err(e) => 100 + e as u64,
    }
}

/// Signature `data[3]` of the instruction `data[2]` places before this one: its
/// message as return data, if its public key is `data[4..36]` (error 97 if not).
/// (No copy: LLVM's BPF backend refuses a variable-length `memcpy`.)
#[inline(never)]
fn signature(sysvar: &[u8], data: &[u8]) -> u64 {
    let index = match crate::ed25519::current_index(sysvar) {
        Ok(i) => i,
        Err(e) => return 200 + e as u64,
    };
    let mut key = [0u8; 32];
    key.copy_from_slice(&data[4..36]);
    match crate::ed25519::ed25519_signature(sysvar, index.wrapping_sub(data[2] as u16), data[3]) {
        Ok(m) if crate::syscalls::keys_eq(m.pubkey, &key) => {
            // SAFETY: the syscall copies `len` bytes out of the sysvar's data.
            unsafe { sol_set_return_data(m.message.as_ptr(), m.message.len() as u64) };
            0
        }
        Ok(_) => 97,
        Err(e) => 200 + e as u64,
    }
}

/// `u64::MAX` if this is not a harness call, else the program's return code.
///
/// # Safety
/// `input` is the loader's serialised input.
#[inline(never)]
pub unsafe fn run(input: *const u8) -> u64 {
    let (account, data) = unsafe { parse(input) };
    if data.len() < 2 || data[0] != MAGIC {
        return u64::MAX;
    }
    let account = account.unwrap_or(&[]);
    match data[1] {
        1..=4 | 6 => scalar(data),
        5 => settle(data),
        7 => with_reply(data, close_into),
        8 => with_reply(data, liquidate_into),
        9 => price(account, data),
        0xED => signature(account, data),
        _ => 99,
    }
}
