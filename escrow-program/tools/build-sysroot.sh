#!/bin/sh
# Builds a private Rust sysroot for bpfel-unknown-none: `core` from Debian's
# rust-src with Debian's rustc, and an empty `compiler_builtins` (this program
# needs none of its functions: no u128, no floats, memory builtins are ours).
# Usage: build-sysroot.sh RUSTC SYSROOT_DIR
set -eu
RUSTC=$1
SYSROOT=$2
SRC=${RUST_SRC:-/usr/lib/rustlib/src/rust/library}
LIB="$SYSROOT/lib/rustlib/bpfel-unknown-none/lib"
TMP="$SYSROOT/tmp"
mkdir -p "$LIB" "$TMP"
export RUSTC_BOOTSTRAP=1
FLAGS="--target bpfel-unknown-none --edition 2021 -Z force-unstable-if-unmarked
  -C opt-level=3 -C panic=abort -C codegen-units=1 -C debuginfo=0
  -C metadata=perpd-escrow-sysroot --remap-path-prefix=$SRC=/rust-src"
"$RUSTC" $FLAGS --crate-name core --crate-type rlib \
  "$SRC/core/src/lib.rs" --out-dir "$TMP"
printf '#![feature(compiler_builtins)]\n#![compiler_builtins]\n#![no_std]\n' > "$TMP/compiler_builtins.rs"
"$RUSTC" $FLAGS --crate-name compiler_builtins --crate-type rlib \
  --extern core="$TMP/libcore.rlib" "$TMP/compiler_builtins.rs" --out-dir "$TMP"
mv "$TMP/libcore.rlib" "$TMP/libcompiler_builtins.rlib" "$LIB/"
rm -rf "$TMP"
