"""The escrow program in a real SVM: a LiteSVM with SPL Token, a USDC mint and
a vault, and instructions built from the IDL with anchorpy's coder.

Shared by the tests (through ``conftest.py``) and by ``bench/escrow_cu.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from anchorpy import Coder, Idl, NamedInstruction
from solders.account import Account
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError
from spl.token.constants import TOKEN_PROGRAM_ID

ROOT = Path(__file__).resolve().parents[2]
ESCROW_DIR = ROOT / "escrow-program"
PROGRAM_SO = ESCROW_DIR / "target" / "escrow.so"
IDL_PATH = ESCROW_DIR / "idl" / "escrow.json"
SYSTEM_PROGRAM_ID = Pubkey.default()
USDC = 1_000_000  # micro-USDC per USDC

# A fixed program id keeps PDA bumps, and so compute units, identical run to run.
PROGRAM_ID = Keypair.from_seed(bytes([7] * 32)).pubkey()


def seeded_keypair(seed: int) -> Keypair:
    """A keypair that is the same every run (so PDA bumps and CU are too)."""
    return Keypair.from_seed(seed.to_bytes(32, "little"))


def without_signature(ix: Instruction, key: Pubkey) -> Instruction:
    """`ix` with `key` demoted to a non-signer (the account stays in place)."""
    metas = [
        AccountMeta(m.pubkey, is_signer=m.is_signer and m.pubkey != key, is_writable=m.is_writable)
        for m in ix.accounts
    ]
    return Instruction(ix.program_id, ix.data, metas)


class BuildError(Exception):
    """`make -C escrow-program` failed."""


def make(*targets: str) -> subprocess.CompletedProcess[str]:
    """Runs `make -C escrow-program` with this interpreter (it has pyelftools)."""
    return subprocess.run(
        ["make", "-C", str(ESCROW_DIR), f"PYTHON={sys.executable}", *targets],
        capture_output=True,
        text=True,
        check=False,
    )


def build_program() -> bytes:
    """Builds the program with the project's one build command; returns the ELF."""
    build = make()
    if build.returncode != 0:
        raise BuildError(f"make -C escrow-program failed:\n{build.stdout}\n{build.stderr}")
    return PROGRAM_SO.read_bytes()


def load_idl() -> Idl:
    return Idl.from_json(IDL_PATH.read_text())


@dataclass(frozen=True)
class Outcome:
    """What a transaction did: success, the custom error code, compute units."""

    ok: bool
    error: int | None
    compute_units: int
    logs: list[str]

    def inner_units(self, program: Pubkey) -> int:
        """Compute units consumed by CPIs into `program`."""
        pattern = re.compile(rf"Program {program} consumed (\d+) of")
        return sum(int(m.group(1)) for line in self.logs if (m := pattern.match(line)))


def mint_data(decimals: int = 6, supply: int = 10**15) -> bytes:
    """An initialized SPL Token mint (82 bytes) with no authorities."""
    return bytes(36) + supply.to_bytes(8, "little") + bytes([decimals, 1]) + bytes(36)


def token_account_data(mint: Pubkey, owner: Pubkey, amount: int, **extra: bool) -> bytes:
    """An initialized SPL Token account (165 bytes)."""
    delegate = (b"\x01\x00\x00\x00" + bytes(owner)) if extra.get("delegate") else bytes(36)
    close = (b"\x01\x00\x00\x00" + bytes(owner)) if extra.get("close_authority") else bytes(36)
    state = 2 if extra.get("frozen") else 1
    return (
        bytes(mint)
        + bytes(owner)
        + amount.to_bytes(8, "little")
        + delegate
        + bytes([state])
        + bytes(12)
        + bytes(8)
        + close
    )


class Escrow:
    """A LiteSVM holding the escrow program, SPL Token, a USDC mint and a vault."""

    def __init__(self, program: bytes, idl: Idl, coder: Coder) -> None:
        self.svm = LiteSVM()
        self.idl = idl
        self.coder = coder
        self.program_id = PROGRAM_ID
        self.svm.add_program(self.program_id, program)
        self.admin = self.funded_keypair()
        self.router = Keypair().pubkey()
        self.usdc_mint = self.new_mint(decimals=6)
        self.config, _ = Pubkey.find_program_address([b"config"], self.program_id)
        self.vault_authority, _ = Pubkey.find_program_address([b"vault"], self.program_id)
        self.vault = self.token_account(self.vault_authority, 0)
        self.fee_account = self.token_account(Keypair().pubkey(), 0)

    # ---- chain set-up -------------------------------------------------------

    def funded_keypair(self, seed: int | None = None, lamports: int = 10**10) -> Keypair:
        keypair = Keypair() if seed is None else seeded_keypair(seed)
        self.svm.airdrop(keypair.pubkey(), lamports)
        return keypair

    def new_mint(self, decimals: int = 6) -> Pubkey:
        mint = Pubkey.new_unique()
        self.set_account(mint, mint_data(decimals), TOKEN_PROGRAM_ID)
        return mint

    def token_account(
        self, owner: Pubkey, amount: int, mint: Pubkey | None = None, **extra: bool
    ) -> Pubkey:
        address = Pubkey.new_unique()
        data = token_account_data(mint or self.usdc_mint, owner, amount, **extra)
        self.set_account(address, data, TOKEN_PROGRAM_ID)
        return address

    def set_account(self, address: Pubkey, data: bytes, owner: Pubkey) -> None:
        lamports = self.svm.minimum_balance_for_rent_exemption(len(data))
        self.svm.set_account(address, Account(lamports, data, owner, False))

    def token_balance(self, address: Pubkey) -> int:
        return int.from_bytes(bytes(self.svm.get_account(address).data)[64:72], "little")

    def collateral_address(self, agent: Pubkey) -> Pubkey:
        return Pubkey.find_program_address([b"collateral", bytes(agent)], self.program_id)[0]

    def collateral(self, agent: Pubkey):
        """The agent's collateral account decoded by anchorpy, or None."""
        account = self.svm.get_account(self.collateral_address(agent))
        if account is None:
            return None
        return self.coder.accounts.decode(bytes(account.data))

    def free(self, agent: Pubkey) -> int:
        """The agent's free collateral (0 when it has no collateral account)."""
        state = self.collateral(agent)
        return 0 if state is None else state.free

    def error_code(self, name: str) -> int:
        """The code the IDL gives the error `name`."""
        return next(e.code for e in self.idl.errors if e.name == name)

    def assert_refused(self, outcome: Outcome, code: int, name: str) -> None:
        """The transaction failed with custom error `code`, named `name` in the
        IDL and in the program's log."""
        assert not outcome.ok, outcome.logs
        assert outcome.error == code, outcome.logs
        assert self.error_code(name) == code
        assert f"Program log: {name}" in outcome.logs

    def config_state(self):
        return self.coder.accounts.decode(bytes(self.svm.get_account(self.config).data))

    # ---- instructions -------------------------------------------------------

    def instruction(self, name: str, args: dict, accounts: dict[str, Pubkey]) -> Instruction:
        """`name` built from the IDL: data by anchorpy's coder, metas from the
        IDL's `isMut`/`isSigner` flags; `accounts` uses the IDL's names."""
        idl_ix = next(ix for ix in self.idl.instructions if ix.name == name)
        metas = [
            AccountMeta(accounts[acc.name], is_signer=acc.is_signer, is_writable=acc.is_mut)
            for acc in idl_ix.accounts
        ]
        data = self.coder.instruction.build(NamedInstruction(name=name, data=args))
        return Instruction(self.program_id, data, metas)

    def send(self, ix: Instruction, *signers: Keypair) -> Outcome:
        """Sends one instruction; the first signer pays the fee."""
        message = Message.new_with_blockhash([ix], signers[0].pubkey(), self.svm.latest_blockhash())
        result = self.svm.send_transaction(VersionedTransaction(message, list(signers)))
        self.svm.expire_blockhash()
        if isinstance(result, FailedTransactionMetadata):
            err = result.err()
            code = None
            if isinstance(err, TransactionErrorInstructionError) and isinstance(
                err.err, InstructionErrorCustom
            ):
                code = err.err.code
            meta = result.meta()
            return Outcome(False, code, meta.compute_units_consumed(), list(meta.logs()))
        return Outcome(True, None, result.compute_units_consumed(), list(result.logs()))

    def initialize_ix(self, **overrides: Pubkey) -> Instruction:
        accounts = {
            "admin": self.admin.pubkey(),
            "config": self.config,
            "vault": self.vault,
            "usdcMint": self.usdc_mint,
            "feeAccount": self.fee_account,
            "tokenProgram": TOKEN_PROGRAM_ID,
            "systemProgram": SYSTEM_PROGRAM_ID,
        }
        accounts.update(overrides)
        return self.instruction("initialize", {"router_authority": self.router}, accounts)

    def initialize(self) -> Outcome:
        outcome = self.send(self.initialize_ix(), self.admin)
        assert outcome.ok, outcome.logs
        return outcome

    def deposit_ix(
        self, depositor: Keypair, source: Pubkey, agent: Pubkey, amount: int, **overrides: Pubkey
    ) -> Instruction:
        accounts = {
            "depositor": depositor.pubkey(),
            "source": source,
            "vault": self.vault,
            "collateral": self.collateral_address(agent),
            "agent": agent,
            "config": self.config,
            "tokenProgram": TOKEN_PROGRAM_ID,
            "systemProgram": SYSTEM_PROGRAM_ID,
        }
        accounts.update(overrides)
        return self.instruction("deposit", {"amount": amount}, accounts)

    def withdraw_ix(
        self, agent: Pubkey, destination: Pubkey, amount: int, **overrides: Pubkey
    ) -> Instruction:
        accounts = {
            "agent": agent,
            "collateral": self.collateral_address(agent),
            "vault": self.vault,
            "destination": destination,
            "vaultAuthority": self.vault_authority,
            "config": self.config,
            "tokenProgram": TOKEN_PROGRAM_ID,
        }
        accounts.update(overrides)
        return self.instruction("withdraw", {"amount": amount}, accounts)

    def funded_agent(self, usdc: int, seed: int | None = None) -> tuple[Keypair, Pubkey]:
        """An agent with `usdc` micro-USDC deposited and an empty token account."""
        agent = self.funded_keypair(seed)
        wallet = self.token_account(agent.pubkey(), usdc)
        outcome = self.send(self.deposit_ix(agent, wallet, agent.pubkey(), usdc), agent)
        assert outcome.ok, outcome.logs
        return agent, wallet
