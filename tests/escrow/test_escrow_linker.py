"""`escrow-program/tools/sbpf_link.py`, the project's own SBPF v0 linker, on
tiny LLVM IR programs compiled by llc-14: what it links runs in LiteSVM, and
what SBPF v0 would run differently from eBPF is refused."""

import subprocess
import sys
from pathlib import Path

import pytest
from escrow_harness import ESCROW_DIR
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

LINKER = ESCROW_DIR / "tools" / "sbpf_link.py"

# A pointer table in read-only data (R_BPF_64_ABS64, stored in the upper half of
# the word for SBPF v0), strings reached by lddw, a call to a defined function
# and a syscall.
POINTER_TABLE = r"""
@alpha = private unnamed_addr constant [5 x i8] c"alpha"
@beta = private unnamed_addr constant [4 x i8] c"beta"
@table = internal constant [2 x { i8*, i64 }] [
  { i8*, i64 } { i8* getelementptr ([5 x i8], [5 x i8]* @alpha, i32 0, i32 0), i64 5 },
  { i8*, i64 } { i8* getelementptr ([4 x i8], [4 x i8]* @beta, i32 0, i32 0), i64 4 }]
declare void @sol_log_(i8*, i64)
define internal void @say(i64 %i) noinline {
  %p = getelementptr [2 x { i8*, i64 }], [2 x { i8*, i64 }]* @table, i64 0, i64 %i, i32 0
  %l = getelementptr [2 x { i8*, i64 }], [2 x { i8*, i64 }]* @table, i64 0, i64 %i, i32 1
  %s = load i8*, i8** %p
  %n = load i64, i64* %l
  call void @sol_log_(i8* %s, i64 %n)
  ret void
}
define i64 @entrypoint(i8* %input) {
  %c = bitcast i8* %input to i64*
  %accounts = load i64, i64* %c
  %i = and i64 %accounts, 1
  call void @say(i64 %i)
  ret i64 0
}
"""

# 32-bit arithmetic: with +alu32, llc emits `w` register operations.
NARROW_MATH = r"""
@alpha = private unnamed_addr constant [5 x i8] c"alpha"
declare void @sol_log_(i8*, i64)
define i64 @entrypoint(i8* %input) {
  %c = bitcast i8* %input to i64*
  %accounts = load i64, i64* %c
  %narrow = trunc i64 %accounts to i32
  %sum = add i32 %narrow, 3
  %wide = zext i32 %sum to i64
  call void @sol_log_(i8* getelementptr ([5 x i8], [5 x i8]* @alpha, i32 0, i32 0), i64 %wide)
  ret i64 0
}
"""


def compile_ir(tmp_path: Path, ir: str, *llc_flags: str) -> Path:
    source, obj = tmp_path / "prog.ll", tmp_path / "prog.o"
    source.write_text(ir)
    subprocess.run(
        ["llc-14", "-march=bpfel", "-mcpu=v1", "-O2", "-filetype=obj", *llc_flags,
         "-o", str(obj), str(source)],
        check=True,
    )  # fmt: skip
    return obj


def link(obj: Path) -> tuple[int, bytes, str]:
    """Runs the linker; returns its exit code, output and error text."""
    out = obj.with_suffix(".so")
    run = subprocess.run(
        [sys.executable, str(LINKER), str(obj), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return run.returncode, out.read_bytes() if run.returncode == 0 else b"", run.stderr


def run_program(so: bytes, n_accounts: int) -> list[str]:
    svm = LiteSVM()
    program_id = Pubkey.new_unique()
    svm.add_program(program_id, so)
    payer = Keypair()
    svm.airdrop(payer.pubkey(), 10**9)
    metas = [AccountMeta(Pubkey.new_unique(), False, False) for _ in range(n_accounts)]
    message = Message.new_with_blockhash(
        [Instruction(program_id, b"", metas)], payer.pubkey(), svm.latest_blockhash()
    )
    result = svm.send_transaction(VersionedTransaction(message, [payer]))
    return list(result.logs())


def test_linked_pointer_table_runs_in_litesvm(tmp_path: Path) -> None:
    # Given a program reading strings through a pointer table in read-only data
    code, so, err = link(compile_ir(tmp_path, POINTER_TABLE))
    assert code == 0, err
    # When it runs with 0 and with 1 account
    # Then each pointer resolves to its string
    assert "Program log: alpha" in run_program(so, 0)
    assert "Program log: beta" in run_program(so, 1)


@pytest.mark.parametrize(
    ("ir", "flags", "reason"),
    [
        (
            POINTER_TABLE.replace("sol_log_", "sol_log_typo"),
            (),
            "unknown function or syscall 'sol_log_typo'",
        ),
        (NARROW_MATH, ("-mattr=+alu32",), "32-bit ALU op"),
        (
            "@counter = global i64 0\n"
            "define i64 @entrypoint(i8* %p) {\n"
            "  %v = load volatile i64, i64* @counter\n  ret i64 %v\n}\n",
            (),
            "writable or unknown allocated section",
        ),
    ],
    ids=["unknown-syscall", "alu32", "writable-data"],
)
def test_what_sbpf_v0_cannot_run_is_refused(
    tmp_path: Path, ir: str, flags: tuple[str, ...], reason: str
) -> None:
    # Given an object the SBPF v0 loader would load but not run as written
    obj = compile_ir(tmp_path, ir, *flags)
    # When it is linked
    code, _, err = link(obj)
    # Then the linker refuses it, saying why
    assert code == 1
    assert reason in err
