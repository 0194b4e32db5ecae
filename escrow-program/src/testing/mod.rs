//! Test-only helpers (compiled under `cargo test` only): builders for the bytes the
//! runtime hands the program, and a small JSON reader for the shared test vectors.

pub mod json;
pub mod sysvar;
