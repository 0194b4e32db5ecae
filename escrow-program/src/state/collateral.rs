//! `Collateral`: one per agent, at the PDA `["collateral", agent]`.

use super::{read_u64, ProgramAccount};
use crate::error::EscrowError;
use crate::Pubkey;

/// Seed prefix of an agent's collateral account.
pub const COLLATERAL_SEED: &[u8] = b"collateral";

/// An agent's USDC held by the escrow, in micro-USDC: `free` may be withdrawn
/// or locked into a position. The money of an open position lives in the
/// position account (its `cr` and `cm`, which funding moves between without
/// touching this account); `locked` is the initial margin the agent has
/// committed to its open positions (Σ `imr` as requester + Σ `imm` as maker),
/// shown to the agent and checked by the tests, not itself money.
///
/// Invariant: only this program creates it, at `["collateral", agent]`, and
/// `agent` never changes; so an account owned by the program with this
/// discriminator and `agent == A` *is* A's collateral PDA (no 1,500-CU
/// derivation needed after creation).
#[repr(C)]
pub struct Collateral {
    discriminator: [u8; 8],
    agent: Pubkey,
    free: [u8; 8],
    locked: [u8; 8],
    /// Consented withdrawals made so far (the withdraw consent's counter).
    withdrawals: [u8; 8],
    bump: u8,
    reserved: [u8; 7],
}

const _: () = assert!(core::mem::align_of::<Collateral>() == 1);
const _: () = assert!(core::mem::size_of::<Collateral>() == 72);

impl ProgramAccount for Collateral {
    const DISCRIMINATOR: [u8; 8] = [123, 130, 234, 63, 255, 240, 255, 92];
}

impl Collateral {
    #[inline(always)]
    pub fn agent(&self) -> &Pubkey {
        &self.agent
    }

    #[inline(always)]
    pub fn free(&self) -> u64 {
        read_u64(&self.free)
    }

    #[inline(always)]
    pub fn locked(&self) -> u64 {
        read_u64(&self.locked)
    }

    #[inline(always)]
    pub fn withdrawals(&self) -> u64 {
        read_u64(&self.withdrawals)
    }

    /// Counts one more consented withdrawal.
    #[inline(always)]
    pub fn count_withdrawal(&mut self) -> Result<(), EscrowError> {
        let n = self.withdrawals().checked_add(1).ok_or(EscrowError::ArithmeticOverflow)?;
        self.withdrawals = n.to_le_bytes();
        Ok(())
    }

    /// Opening a position: `debit` (margin, plus the fee for a requester) leaves
    /// the free balance and `margin` is counted as committed.
    #[inline(always)]
    pub fn lock(&mut self, debit: u64, margin: u64) -> Result<(), EscrowError> {
        let locked = self.locked().checked_add(margin).ok_or(EscrowError::ArithmeticOverflow)?;
        self.debit_free(debit)?;
        self.locked = locked.to_le_bytes();
        Ok(())
    }

    /// Closing (part of) a position: `margin` is no longer committed and
    /// `amount` is credited to the free balance.
    #[inline(always)]
    pub fn release(&mut self, margin: u64, amount: u64) -> Result<(), EscrowError> {
        let locked = self.locked().checked_sub(margin).ok_or(EscrowError::ArithmeticOverflow)?;
        self.locked = locked.to_le_bytes();
        self.credit_free(amount)
    }

    #[inline(always)]
    pub fn bump(&self) -> u8 {
        self.bump
    }

    /// Sets the owner fields of a freshly created account.
    #[inline(always)]
    pub fn set_up(&mut self, agent: &Pubkey, bump: u8) {
        self.agent = *agent;
        self.bump = bump;
    }

    /// Adds `amount` to the free balance.
    #[inline(always)]
    pub fn credit_free(&mut self, amount: u64) -> Result<(), EscrowError> {
        let free = self.free().checked_add(amount).ok_or(EscrowError::ArithmeticOverflow)?;
        // free + locked is what the vault owes this agent: it must stay representable.
        free.checked_add(self.locked()).ok_or(EscrowError::ArithmeticOverflow)?;
        self.free = free.to_le_bytes();
        Ok(())
    }

    /// Takes `amount` from the free balance; refuses more than is free.
    #[inline(always)]
    pub fn debit_free(&mut self, amount: u64) -> Result<(), EscrowError> {
        let free = self.free().checked_sub(amount).ok_or(EscrowError::InsufficientFreeCollateral)?;
        self.free = free.to_le_bytes();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Vec<u8> {
        let mut data = vec![0u8; Collateral::LEN];
        Collateral::init(&mut data).unwrap().set_up(&[4; 32], 254);
        data
    }

    #[test]
    fn layout_is_discriminator_then_borsh_fields() {
        let mut data = fresh();
        Collateral::from_bytes_mut(&mut data).unwrap().credit_free(0x0102).unwrap();
        assert_eq!(&data[..8], &Collateral::DISCRIMINATOR);
        assert_eq!(&data[8..40], &[4; 32]);
        assert_eq!(&data[40..48], &0x0102u64.to_le_bytes());
        assert_eq!(&data[48..56], &[0; 8]);
        assert_eq!(&data[56..64], &[0; 8]);
        assert_eq!(data[64], 254);
    }

    #[test]
    fn debit_refuses_more_than_free_and_changes_nothing() {
        let mut data = fresh();
        let c = Collateral::from_bytes_mut(&mut data).unwrap();
        c.credit_free(100).unwrap();
        assert_eq!(c.debit_free(101), Err(EscrowError::InsufficientFreeCollateral));
        assert_eq!(c.free(), 100);
        c.debit_free(100).unwrap();
        assert_eq!(c.free(), 0);
    }

    #[test]
    fn lock_and_release_move_free_and_committed_margin() {
        let mut data = fresh();
        let c = Collateral::from_bytes_mut(&mut data).unwrap();
        c.credit_free(1_000).unwrap();
        assert_eq!(c.lock(1_001, 900), Err(EscrowError::InsufficientFreeCollateral));
        assert_eq!((c.free(), c.locked()), (1_000, 0));
        c.lock(950, 900).unwrap();
        assert_eq!((c.free(), c.locked()), (50, 900));
        c.release(300, 400).unwrap();
        assert_eq!((c.free(), c.locked()), (450, 600));
        assert_eq!(c.release(601, 0), Err(EscrowError::ArithmeticOverflow));
        c.count_withdrawal().unwrap();
        assert_eq!(c.withdrawals(), 1);
    }

    #[test]
    fn credit_refuses_overflow() {
        let mut data = fresh();
        let c = Collateral::from_bytes_mut(&mut data).unwrap();
        c.credit_free(u64::MAX).unwrap();
        assert_eq!(c.credit_free(1), Err(EscrowError::ArithmeticOverflow));
        assert_eq!(c.free(), u64::MAX);
    }

    #[test]
    fn wrong_discriminator_or_length_is_refused() {
        let mut data = fresh();
        data[0] ^= 1;
        assert_eq!(Collateral::from_bytes(&data).err(), Some(EscrowError::InvalidAccountData));
        let short = vec![0u8; Collateral::LEN - 1];
        assert_eq!(Collateral::from_bytes(&short).err(), Some(EscrowError::InvalidAccountData));
    }
}
