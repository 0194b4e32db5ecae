"""money.rs, pyth.rs and ed25519.rs compiled for SBPF and run in LiteSVM.

The host tests (`make -C escrow-program test`) prove the modules on x86; this runs the
BPF code the chain will run, through the project's own toolchain (Debian rustc 1.63 →
llc-14 → tools/sbpf_link.py): a copy of the program gains the test-only module
`sbpf_harness.rs`, called first from the entrypoint, and answers every case of
tests/vectors/money.json, tests/vectors/money_extremes.json and
tests/vectors/pyth_price_update.json, then reads real
Ed25519 precompile calls out of the runtime's Instructions sysvar. A build failure fails
the tests (nothing is skipped), as in tests/escrow.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata, TransactionMetadata
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError

from perpd.chain import PYTH_RECEIVER_ID, close_consent, request_consent
from tests.chain import pyth_vectors

ROOT = Path(__file__).resolve().parents[2]
ESCROW = ROOT / "escrow-program"
MONEY_VECTORS = ROOT / "tests" / "vectors" / "money.json"
MONEY_EXTREMES = MONEY_VECTORS.with_name("money_extremes.json")
I64 = (-(2**63), 2**63 - 1)
HARNESS = Path(__file__).with_name("sbpf_harness.rs")
ENTRY = re.compile(r'(pub unsafe extern "C" fn entrypoint\(input: \*mut u8\) -> u64 \{\n)')
CALL = (
    "        let code = unsafe { crate::sbpf_harness::run(input) };\n"
    "        if code != u64::MAX {\n            return code;\n        }\n"
)
MAGIC = 0xA5
REFUSED = 1
ED25519_ID = Pubkey.from_string("Ed25519SigVerify111111111111111111111111111")
SYSVAR_INSTRUCTIONS = Pubkey.from_string("Sysvar1nstructions1111111111111111111111111")
PYTH_ERRORS = [
    "BadLayout",
    "WrongFeed",
    "Stale",
    "WideConfidence",
    "NonPositive",
    "OutOfRange",
    "NotFullyVerified",
    "Overflow",
]
OPS = {
    "initial_margin": 1,
    "open_fee": 2,
    "pnl": 3,
    "funding_due": 4,
    "settle_funding": 5,
    "liquidatable_side": 6,
    "close_position": 7,
    "liquidate": 8,
}
SIDES = {None: 0, "requester": 1, "maker": 2}
STATE_FIELDS = (
    "side",
    "notional",
    "entry_price",
    "cr",
    "cm",
    "imr",
    "imm",
    "rate_ppm",
    "t_base",
    "funding_paid",
)


@pytest.fixture(scope="module")
def harness_so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The program with the harness, built by the project's own make rules."""
    root = tmp_path_factory.mktemp("escrow-harness")
    for name in ("Makefile", "Cargo.toml", "src", "tools"):
        src = ESCROW / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    sysroot = ESCROW / "target" / "sysroot"
    if sysroot.is_dir():  # else make builds it (slow, but the same)
        shutil.copytree(sysroot, root / "target" / "sysroot")
    shutil.copy(HARNESS, root / "src" / "sbpf_harness.rs")
    with (root / "src" / "lib.rs").open("a") as f:
        f.write("\npub mod sbpf_harness;\n")
    entry = root / "src" / "entrypoint.rs"
    text, n = ENTRY.subn(lambda m: m.group(1) + CALL, entry.read_text())
    assert n == 1, "the SBPF entrypoint signature was not found in src/entrypoint.rs"
    entry.write_text(text)
    proc = subprocess.run(
        ["make", "-C", str(root), f"PYTHON={sys.executable}", "target/escrow.so"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        pytest.fail(f"harness build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return (root / "target" / "escrow.so").read_bytes()


class Svm:
    """A LiteSVM with the harness program; one transaction per call."""

    def __init__(self, so: bytes) -> None:
        self.svm = LiteSVM()
        self.program = Keypair.from_seed(bytes([0xA5] * 32)).pubkey()
        self.svm.add_program(self.program, so)
        self.payer = Keypair.from_seed(bytes([1] * 32))
        self.svm.airdrop(self.payer.pubkey(), 10**10)

    def send(self, ixs: list[Instruction]) -> tuple[int | None, bytes, int]:
        """(custom error code or None, return data, compute units of the harness)."""
        msg = Message.new_with_blockhash(ixs, self.payer.pubkey(), self.svm.latest_blockhash())
        result = self.svm.send_transaction(VersionedTransaction(msg, [self.payer]))
        self.svm.expire_blockhash()
        if isinstance(result, FailedTransactionMetadata):
            err = result.err()
            assert isinstance(err, TransactionErrorInstructionError), err
            assert isinstance(err.err, InstructionErrorCustom), err
            return err.err.code, b"", result.meta().compute_units_consumed()
        assert isinstance(result, TransactionMetadata)
        data = result.return_data().data  # type: ignore[attr-defined]  # missing from the stub
        return None, bytes(data), result.compute_units_consumed()

    def call(
        self, data: bytes, accounts: list[AccountMeta] | None = None
    ) -> tuple[int | None, bytes]:
        code, ret, _ = self.send([Instruction(self.program, data, accounts or [])])
        return code, ret


@pytest.fixture(scope="module")
def svm(harness_so: bytes) -> Svm:
    return Svm(harness_so)


def _words(values: list[int]) -> bytes:
    return b"".join((v & (2**64 - 1)).to_bytes(8, "little") for v in values)


def _state(s: dict[str, int]) -> list[int]:
    return [s[k] for k in STATE_FIELDS]


def _funding(f: dict[str, Any]) -> list[int]:
    return [*_state(f["state"]), f["transfer"], f["due"]]


def _money_call(op: str, i: dict[str, Any]) -> list[int]:
    if op in ("initial_margin", "open_fee", "pnl", "funding_due"):
        return list(i.values())  # in the harness's argument order (the file's order)
    args = _state(i["state"])
    if op == "close_position":
        return [*args, i["pct"], i["price"], i["now"], i["period_s"]]
    if op == "settle_funding":
        return [*args, i["now"], i["period_s"]]
    if op == "liquidatable_side":
        return [*args, i["price"]]
    return [*args, i["price"], i["now"], i["period_s"]]


def _clamped(pnl: int) -> int:
    """The program carries a PnL clamped to i64 (money_extremes.json's is exact)."""
    return max(I64[0], min(I64[1], pnl))


def _money_answer(op: str, e: Any) -> tuple[int | None, bytes]:
    if op in ("initial_margin", "open_fee", "pnl", "funding_due"):
        return None, _words([e])
    if op == "liquidatable_side":
        return None, _words([SIDES[e]])
    if op == "settle_funding":
        return None, _words(_funding(e))
    if op == "close_position":
        tail = [
            e["pct"],
            e["closed_notional"],
            _clamped(e["pnl"]),
            e["requester_release"],
            e["maker_release"],
        ]
        rem = e["remaining"]
        return None, _words(
            [*_funding(e["funding"]), *tail, int(rem is not None)]
            + ([] if rem is None else _state(rem))
        )
    if "error" in e:
        return REFUSED, b""
    tail = [_clamped(e["pnl"]), e["transfer"], e["reward"]]
    tail += [e["requester_release"], e["maker_release"]]
    return None, _words([*_funding(e["funding"]), SIDES[e["side"]], *tail])


def _money_cases(path: Path = MONEY_VECTORS) -> Iterator[tuple[str, dict[str, Any], Any]]:
    doc = json.loads(path.read_text())
    for op in OPS:
        for case in doc.get(op, []):
            yield op, case["inputs"], case["expected"]


def test_money_vectors_in_sbpf(svm: Svm) -> None:
    """Every on-chain operation's golden vectors, answered by the BPF build."""
    checked = 0
    for op, inputs, expected in _money_cases():
        data = bytes([MAGIC, OPS[op]]) + _words(_money_call(op, inputs))
        assert svm.call(data) == _money_answer(op, expected), (op, inputs)
        checked += 1
    assert checked == 8 * 30


def test_money_extremes_in_sbpf(svm: Svm) -> None:
    """Prices 1 and 10^16 (PnL up to 10^31): every amount exact in the BPF build too."""
    checked = 0
    for op, inputs, expected in _money_cases(MONEY_EXTREMES):
        data = bytes([MAGIC, OPS[op]]) + _words(_money_call(op, inputs))
        assert svm.call(data) == _money_answer(op, expected), (op, inputs)
        checked += 1
    assert checked == 30 + 100 + 30


def test_money_refusals_in_sbpf(svm: Svm) -> None:
    """Out of the domain is a clean refusal on chain too, never a wrapped number."""
    big = 2**64 - 1
    for op, args in [
        ("initial_margin", [1, 0]),
        ("open_fee", [0]),
        ("pnl", [1, big, 1, 2]),  # beyond i64
        ("pnl", [2, 1, 1, 1]),  # side
        ("funding_due", [1, 1, 1, 0]),  # no period
        ("funding_due", [big, 2**63 - 1, 2**63 - 1, 1]),  # beyond 128 bits
    ]:
        assert svm.call(bytes([MAGIC, OPS[op]]) + _words(args)) == (REFUSED, b""), (op, args)


def test_pyth_fixture_in_sbpf(svm: Svm) -> None:
    """Every PriceUpdateV2 case of the fixture, read by the BPF build from a real account."""
    cases = json.loads(pyth_vectors.PATH.read_text())["cases"]
    for k, case in enumerate(cases):
        address = Keypair.from_seed(bytes([0x40 + k] * 32)).pubkey()  # not the payer
        data = bytes.fromhex(case["data"])
        svm.svm.set_account(
            address,
            Account(lamports=10**9, data=data, owner=PYTH_RECEIVER_ID, executable=False),
        )
        ix = bytes([MAGIC, 9]) + _words([case["now"]]) + bytes.fromhex(case["feed_id"])
        got = svm.call(ix, [AccountMeta(address, False, False)])
        e = case["expected"]
        if "error" in e:
            want: tuple[int | None, bytes] = (100 + PYTH_ERRORS.index(e["error"]), b"")
        else:
            want = (None, _words([e["price"], e["conf"], e["publish_time"]]))
        assert got == want, case["name"]


def _ed25519_data(sigs: list[tuple[bytes, bytes, bytes]], index: int = 0xFFFF) -> bytes:
    """The precompile's data: header, offsets (all pointing at `index`), then each
    signature, key and message."""
    table, tail = b"", b""
    at = 2 + 14 * len(sigs)
    for key, message, signature in sigs:
        table += struct.pack("<7H", at, index, at + 64, index, at + 96, len(message), index)
        tail += signature + key + message
        at += 96 + len(message)
    return bytes([len(sigs), 0]) + table + tail


def test_ed25519_calls_in_sbpf(svm: Svm) -> None:
    """A real transaction: the precompile verifies, the program reads what was signed."""
    program = bytes(svm.program)
    requester, maker = Keypair.from_seed(bytes([2] * 32)), Keypair.from_seed(bytes([3] * 32))
    request = request_consent(
        program, requester.pubkey(), 7, 0, 0, 10**9, 10, 5000, 0, 1_700_000_030
    )
    close = close_consent(program, bytes([9] * 32), 100, 0, 1_700_000_060)
    sigs = [
        (bytes(requester.pubkey()), request, bytes(requester.sign_message(request))),
        (bytes(maker.pubkey()), close, bytes(maker.sign_message(close))),
    ]
    sysvar = [AccountMeta(SYSVAR_INSTRUCTIONS, False, False)]

    def read(
        ed_data: bytes, back: int, n: int, key: bytes, *, ed_first: bool = True
    ) -> tuple[int | None, bytes, int]:
        harness = Instruction(svm.program, bytes([MAGIC, 0xED, back, n]) + key, sysvar)
        pre = Instruction(ED25519_ID, ed_data, [])
        return svm.send([pre, harness] if ed_first else [harness])

    # both signatures of one call, pointing inside it with u16::MAX
    r_key, m_key = sigs[0][0], sigs[1][0]
    code, ret, cu = read(_ed25519_data(sigs), 1, 0, r_key)
    assert (code, ret) == (None, request)
    assert read(_ed25519_data(sigs), 1, 1, m_key)[:2] == (None, close)
    assert read(_ed25519_data(sigs), 1, 1, r_key)[0] == 97  # signed by the maker, not r
    assert cu < 2_000, cu
    # the call's own index (0) instead of u16::MAX: also inside the call
    assert read(_ed25519_data(sigs[:1], index=0), 1, 0, r_key)[:2] == (None, request)
    # no third signature; the instruction read is not the precompile; past the start
    assert read(_ed25519_data(sigs), 1, 2, r_key)[0] == 200 + 5  # NoSuchSignature
    assert read(_ed25519_data(sigs), 0, 0, r_key)[0] == 200 + 2  # NotEd25519 (itself)
    assert read(b"", 1, 0, r_key, ed_first=False)[0] == 200 + 1  # IndexOutOfRange
    # a message taken from the harness instruction's own data: the runtime verifies the
    # signature, but the reader refuses a call that points outside itself
    tricked = Instruction(svm.program, bytes([MAGIC, 0xED, 1, 0]) + r_key + request, sysvar)
    offsets = struct.pack("<7H", 16, 0xFFFF, 80, 0xFFFF, 36, len(request), 1)
    pre = Instruction(ED25519_ID, bytes([1, 0]) + offsets + sigs[0][2] + sigs[0][0], [])
    assert svm.send([pre, tricked])[0] == 200 + 4  # OffsetOutsideInstruction
    # a bad signature never reaches the program: the precompile fails the transaction
    bad = [(sigs[0][0], request, bytes(64))]
    code, _, _ = read(_ed25519_data(bad), 1, 0, r_key)
    assert code == 2
