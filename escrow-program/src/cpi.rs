//! Cross-program invocation through `sol_invoke_signed_c`, and the few System
//! Program and SPL Token instructions this program sends.
//!
//! The structs are the C ABI the runtime reads (`SolInstruction`,
//! `SolAccountMeta`, `SolAccountInfo`, `SolSignerSeeds`); lifetimes tie them to
//! the accounts and bytes they point into.

use core::marker::PhantomData;

use crate::account::AccountView;
use crate::error::{EscrowError, ProgramResult};
use crate::rent::rent_exempt_lamports;
use crate::state::token::TOKEN_PROGRAM_ID;
use crate::syscalls::{keys_eq, Seed};
use crate::Pubkey;

/// The System Program's address (all zeros).
pub const SYSTEM_PROGRAM_ID: Pubkey = [0; 32];

/// `SolAccountMeta`.
#[repr(C)]
pub struct AccountMeta<'a> {
    pubkey: *const Pubkey,
    is_writable: bool,
    is_signer: bool,
    _account: PhantomData<&'a Pubkey>,
}

impl<'a> AccountMeta<'a> {
    #[inline(always)]
    pub fn new(account: &'a AccountView, is_writable: bool, is_signer: bool) -> Self {
        Self { pubkey: account.key(), is_writable, is_signer, _account: PhantomData }
    }
}

/// `SolAccountInfo`: the runtime reads the caller's account through it and
/// writes the callee's changes back through its pointers.
#[repr(C)]
pub struct AccountInfo<'a> {
    key: *const Pubkey,
    lamports: *mut u64,
    data_len: u64,
    data: *mut u8,
    owner: *const Pubkey,
    rent_epoch: u64,
    is_signer: bool,
    is_writable: bool,
    executable: bool,
    _account: PhantomData<&'a AccountView>,
}

impl<'a> AccountInfo<'a> {
    #[inline(always)]
    pub fn new(account: &'a AccountView) -> Self {
        Self {
            key: account.key(),
            lamports: account.lamports_ptr(),
            data_len: account.data_len() as u64,
            data: account.data_ptr(),
            owner: account.owner(),
            rent_epoch: account.rent_epoch(),
            is_signer: account.is_signer(),
            is_writable: account.is_writable(),
            executable: account.is_executable(),
            _account: PhantomData,
        }
    }
}

/// `SolInstruction`.
#[repr(C)]
pub struct Instruction<'a> {
    program_id: *const Pubkey,
    accounts: *const AccountMeta<'a>,
    accounts_len: u64,
    data: *const u8,
    data_len: u64,
    _borrows: PhantomData<(&'a Pubkey, &'a [AccountMeta<'a>], &'a [u8])>,
}

impl<'a> Instruction<'a> {
    #[inline(always)]
    pub fn new(program_id: &'a Pubkey, accounts: &'a [AccountMeta<'a>], data: &'a [u8]) -> Self {
        Self {
            program_id,
            accounts: accounts.as_ptr(),
            accounts_len: accounts.len() as u64,
            data: data.as_ptr(),
            data_len: data.len() as u64,
            _borrows: PhantomData,
        }
    }
}

/// `SolSignerSeeds`: the seeds of one PDA this program signs for.
#[repr(C)]
pub struct Signer<'a> {
    seeds: *const Seed,
    len: u64,
    _seeds: PhantomData<&'a [Seed]>,
}

impl<'a> Signer<'a> {
    #[inline(always)]
    pub fn new(seeds: &'a [Seed]) -> Self {
        Self { seeds: seeds.as_ptr(), len: seeds.len() as u64, _seeds: PhantomData }
    }
}

/// Invokes `instruction`, signing for the PDAs of `signers`. A failing callee
/// aborts the whole transaction, so an error here never returns.
#[inline(never)]
pub fn invoke_signed(
    instruction: &Instruction,
    infos: &[AccountInfo],
    signers: &[Signer],
) -> ProgramResult {
    #[cfg(target_arch = "bpf")]
    {
        // SAFETY: every pointer in the three structures comes from a live borrow
        // (their lifetimes), laid out in the C ABI the syscall reads.
        let status = unsafe {
            crate::syscalls::sol_invoke_signed_c(
                instruction as *const Instruction as *const u8,
                infos.as_ptr() as *const u8,
                infos.len() as u64,
                signers.as_ptr() as *const u8,
                signers.len() as u64,
            )
        };
        if status == 0 {
            Ok(())
        } else {
            Err(EscrowError::InvalidInstruction)
        }
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        let _ = (instruction, infos, signers);
        unreachable!("cross-program invocation needs the runtime")
    }
}

/// SPL Token `Transfer` (instruction 3): `amount` from `from` to `to`,
/// authorised by `authority`.
pub struct Transfer<'a> {
    pub from: &'a AccountView,
    pub to: &'a AccountView,
    pub authority: &'a AccountView,
    pub amount: u64,
}

impl Transfer<'_> {
    /// Sends the transfer; `signers` holds the seeds of `authority` when it is a PDA.
    #[inline(never)]
    pub fn invoke_signed(&self, signers: &[Signer]) -> ProgramResult {
        let metas = [
            AccountMeta::new(self.from, true, false),
            AccountMeta::new(self.to, true, false),
            AccountMeta::new(self.authority, false, true),
        ];
        let infos = [
            AccountInfo::new(self.from),
            AccountInfo::new(self.to),
            AccountInfo::new(self.authority),
        ];
        let mut data = [3u8; 9];
        data[1..].copy_from_slice(&self.amount.to_le_bytes());
        invoke_signed(&Instruction::new(&TOKEN_PROGRAM_ID, &metas, &data), &infos, signers)
    }
}

/// Creates `account` (a PDA signed for by `signer`) with `space` bytes owned by
/// `owner`, rent-exempt, paid by `payer`.
///
/// Works even when someone has already sent lamports to the address (which
/// makes the System Program's `CreateAccount` fail): it then tops the balance
/// up, allocates and assigns, as Anchor's `init` does.
#[inline(never)]
pub fn create_pda_account(
    payer: &AccountView,
    account: &AccountView,
    space: usize,
    owner: &Pubkey,
    signer: &Signer,
) -> ProgramResult {
    if !keys_eq(account.owner(), &SYSTEM_PROGRAM_ID) || account.data_len() != 0 {
        return Err(EscrowError::AlreadyInitialized);
    }
    let required = rent_exempt_lamports(space)?;
    let current = account.lamports();
    let signers = core::slice::from_ref(signer);
    let metas = [AccountMeta::new(payer, true, true), AccountMeta::new(account, true, true)];
    let infos = [AccountInfo::new(payer), AccountInfo::new(account)];
    if current == 0 {
        // CreateAccount { lamports, space, owner }
        let mut data = [0u8; 52];
        data[4..12].copy_from_slice(&required.to_le_bytes());
        data[12..20].copy_from_slice(&(space as u64).to_le_bytes());
        data[20..52].copy_from_slice(owner);
        return invoke_signed(&Instruction::new(&SYSTEM_PROGRAM_ID, &metas, &data), &infos, signers);
    }
    if current < required {
        // Transfer { lamports }
        let mut data = [0u8; 12];
        data[0] = 2;
        data[4..12].copy_from_slice(&(required - current).to_le_bytes());
        let metas = [AccountMeta::new(payer, true, true), AccountMeta::new(account, true, false)];
        invoke_signed(&Instruction::new(&SYSTEM_PROGRAM_ID, &metas, &data), &infos, &[])?;
    }
    let own = &metas[1..];
    let own_info = &infos[1..];
    // Allocate { space }
    let mut data = [0u8; 12];
    data[0] = 8;
    data[4..12].copy_from_slice(&(space as u64).to_le_bytes());
    invoke_signed(&Instruction::new(&SYSTEM_PROGRAM_ID, own, &data), own_info, signers)?;
    // Assign { owner }
    let mut data = [0u8; 36];
    data[0] = 1;
    data[4..36].copy_from_slice(owner);
    invoke_signed(&Instruction::new(&SYSTEM_PROGRAM_ID, own, &data), own_info, signers)
}
