//! perpd escrow program: agent collateral and every position, each signed by both agents.
//!
//! An Anchor-compatible Solana program (8-byte discriminators, Borsh layouts,
//! `idl/escrow.json`) written without dependencies for SBPF v0. Built for the
//! chain by `make` (Debian rustc 1.63 → llc-14 → `tools/sbpf_link.py`); built on
//! the host by cargo for unit tests.
//!
//! Layout: [`entrypoint`] reads the loader's input, [`processor`] dispatches to
//! one file per instruction, [`state`] holds zero-copy account views,
//! [`instruction`] documents every instruction's accounts and data, [`error`]
//! numbers every failure.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod account;
pub mod consent;
pub mod cpi;
pub mod ed25519;
pub mod entrypoint;
pub mod error;
pub mod instruction;
pub mod math;
pub mod money;
pub mod processor;
pub mod pyth;
pub mod rent;
pub mod state;
pub mod syscalls;
pub mod wide;
#[cfg(test)]
mod testing;

/// A 32-byte Solana address.
pub type Pubkey = [u8; 32];
