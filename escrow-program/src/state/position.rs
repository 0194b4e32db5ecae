//! `Position`: one per locked trade, at the PDA `["position", requester, nonce]`.

use super::{read_u64, ProgramAccount};
use crate::error::EscrowError;
use crate::money::{PositionMath, LONG, SHORT};
use crate::syscalls::copy_key;
use crate::Pubkey;

/// Seed prefix of a position account.
pub const POSITION_SEED: &[u8] = b"position";

/// `status` of a position that still holds money.
pub const OPEN: u8 = 0;
/// `status` after a full close (by consent or at term end).
pub const CLOSED: u8 = 1;
/// `status` after a liquidation.
pub const LIQUIDATED: u8 = 2;

/// The SPEC §4 state of one position, and who is on each side.
///
/// Invariant: only `lock_position` creates it, at `["position", requester,
/// nonce]` with the canonical bump, and `requester`, `maker` and `nonce` never
/// change: an account owned by the program with this discriminator is a real
/// position (no derivation after creation). It is never closed (its address
/// stays taken), so a request consent cannot lock a second position.
///
/// Money: while `status` is `OPEN` the vault holds `cr + cm` for it (the
/// agents' collaterals after settled funding); nothing once it is not.
#[repr(C)]
pub struct Position {
    discriminator: [u8; 8],
    requester: Pubkey,
    maker: Pubkey,
    nonce: [u8; 8],
    /// `N`, micro-USDC at entry (what remains after partial closes).
    notional: [u8; 8],
    /// `P0`, exponent -8.
    entry_price: [u8; 8],
    cr: [u8; 8],
    cm: [u8; 8],
    imr: [u8; 8],
    imm: [u8; 8],
    /// `f`, ppm per funding period; > 0: the requester pays the maker.
    rate_ppm: [u8; 8],
    /// Funding base: the opening, or the last partial close.
    t_base: [u8; 8],
    /// Funding collected since `t_base`; > 0: the requester has paid.
    funding_paid: [u8; 8],
    opened_at: [u8; 8],
    /// When a term position may be closed by anyone; 0 for a perpetual.
    term_end: [u8; 8],
    /// Closes so far (the close consent's counter).
    closes: [u8; 4],
    market: u8,
    /// The requester's side, as on the wire: 0 long, 1 short.
    side: u8,
    leverage: u8,
    status: u8,
    bump: u8,
    reserved: [u8; 7],
}

const _: () = assert!(core::mem::align_of::<Position>() == 1);
const _: () = assert!(core::mem::size_of::<Position>() == 184);

impl ProgramAccount for Position {
    const DISCRIMINATOR: [u8; 8] = [170, 188, 143, 228, 122, 64, 247, 208];
}

/// Who and what a new position is, apart from its money.
pub struct Parties<'a> {
    pub requester: &'a Pubkey,
    pub maker: &'a Pubkey,
    pub nonce: u64,
    pub market: u8,
    pub side: u8,
    pub leverage: u8,
    pub bump: u8,
    pub opened_at: i64,
    pub term_end: i64,
}

impl Position {
    /// Fills a freshly created position.
    #[inline(always)]
    pub fn set_up(&mut self, parties: &Parties, state: &PositionMath) {
        copy_key(&mut self.requester, parties.requester);
        copy_key(&mut self.maker, parties.maker);
        self.nonce = parties.nonce.to_le_bytes();
        self.market = parties.market;
        self.side = parties.side;
        self.leverage = parties.leverage;
        self.bump = parties.bump;
        self.opened_at = parties.opened_at.to_le_bytes();
        self.term_end = parties.term_end.to_le_bytes();
        self.status = OPEN;
        self.set_math(state);
    }

    #[inline(always)]
    pub fn requester(&self) -> &Pubkey {
        &self.requester
    }

    #[inline(always)]
    pub fn maker(&self) -> &Pubkey {
        &self.maker
    }

    #[inline(always)]
    pub fn market(&self) -> u8 {
        self.market
    }

    #[inline(always)]
    pub fn status(&self) -> u8 {
        self.status
    }

    #[inline(always)]
    pub fn closes(&self) -> u32 {
        u32::from_le_bytes(self.closes)
    }

    #[inline(always)]
    pub fn term_end(&self) -> i64 {
        i64::from_le_bytes(self.term_end)
    }

    /// Refuses anything but an open position.
    #[inline(always)]
    pub fn require_open(&self) -> Result<(), EscrowError> {
        if self.status == OPEN {
            Ok(())
        } else {
            Err(EscrowError::PositionNotOpen)
        }
    }

    /// The SPEC §4 state (`side` +1 when the requester is long, −1 short).
    #[inline(always)]
    pub fn math(&self) -> PositionMath {
        PositionMath {
            side: if self.side == 0 { LONG } else { SHORT },
            notional: read_u64(&self.notional),
            entry_price: read_u64(&self.entry_price),
            cr: read_u64(&self.cr),
            cm: read_u64(&self.cm),
            imr: read_u64(&self.imr),
            imm: read_u64(&self.imm),
            rate_ppm: i64::from_le_bytes(self.rate_ppm),
            t_base: i64::from_le_bytes(self.t_base),
            funding_paid: i64::from_le_bytes(self.funding_paid),
        }
    }

    /// Stores the money fields of `terms` (the side never changes).
    #[inline(always)]
    pub fn set_math(&mut self, terms: &PositionMath) {
        self.notional = terms.notional.to_le_bytes();
        self.entry_price = terms.entry_price.to_le_bytes();
        self.cr = terms.cr.to_le_bytes();
        self.cm = terms.cm.to_le_bytes();
        self.imr = terms.imr.to_le_bytes();
        self.imm = terms.imm.to_le_bytes();
        self.rate_ppm = terms.rate_ppm.to_le_bytes();
        self.t_base = terms.t_base.to_le_bytes();
        self.funding_paid = terms.funding_paid.to_le_bytes();
    }

    /// Ends the position (`CLOSED` or `LIQUIDATED`): its money has been released.
    #[inline(always)]
    pub fn finish(&mut self, status: u8) {
        self.status = status;
        self.cr = [0; 8];
        self.cm = [0; 8];
    }

    /// Counts one more close.
    #[inline(always)]
    pub fn count_close(&mut self) -> Result<(), EscrowError> {
        let n = self
            .closes()
            .checked_add(1)
            .ok_or(EscrowError::ArithmeticOverflow)?;
        self.closes = n.to_le_bytes();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_discriminator_then_borsh_fields() {
        let mut data = vec![0u8; Position::LEN];
        let position = Position::init(&mut data).unwrap();
        let parties = Parties {
            requester: &[1; 32],
            maker: &[2; 32],
            nonce: 3,
            market: 2,
            side: 1,
            leverage: 20,
            bump: 250,
            opened_at: 1_700_000_000,
            term_end: 0,
        };
        let terms = PositionMath {
            side: SHORT,
            notional: 4,
            entry_price: 5,
            cr: 6,
            cm: 7,
            imr: 8,
            imm: 9,
            rate_ppm: -10,
            t_base: 11,
            funding_paid: -12,
        };
        position.set_up(&parties, &terms);
        assert_eq!(position.math(), terms);
        position.count_close().unwrap();
        assert_eq!(&data[..8], &Position::DISCRIMINATOR);
        assert_eq!(&data[8..40], &[1; 32]);
        assert_eq!(&data[40..72], &[2; 32]);
        assert_eq!(&data[72..80], &3u64.to_le_bytes());
        assert_eq!(&data[80..88], &4u64.to_le_bytes());
        assert_eq!(&data[128..136], &(-10i64).to_le_bytes());
        assert_eq!(&data[168..172], &1u32.to_le_bytes());
        assert_eq!(&data[172..177], &[2, 1, 20, OPEN, 250]);
    }
}
