"""The escrow program in a real SVM: a LiteSVM with SPL Token, a USDC mint and
a vault, the program deployed under the upgradeable loader's account layout,
Pyth price accounts, the Clock, agents' consents signed through the Ed25519
precompile, and instructions built from the IDL with anchorpy's coder.

Shared by the tests (through ``conftest.py``) and by ``bench/escrow_cu.py``.
"""

from __future__ import annotations

import hashlib
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from anchorpy import Coder, Idl
from solders.account import Account
from solders.clock import Clock
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import InstructionErrorCustom, TransactionErrorInstructionError
from spl.token.constants import TOKEN_PROGRAM_ID

from perpd import money
from perpd.chain import (
    BTC_USD_FEED_ID,
    ETH_USD_FEED_ID,
    PYTH_RECEIVER_ID,
    SOL_USD_FEED_ID,
    close_consent,
    price_update_v2,
    withdraw_consent,
)
from perpd.chain._client import (
    EscrowClient,
    QuoteTerms,
    RequestTerms,
    ed25519_verify_ix,
)

ROOT = Path(__file__).resolve().parents[2]
ESCROW_DIR = ROOT / "escrow-program"
PROGRAM_SO = ESCROW_DIR / "target" / "escrow.so"
IDL_PATH = ESCROW_DIR / "idl" / "escrow.json"
USDC = 1_000_000  # micro-USDC per USDC

# A fixed program id keeps PDA bumps, and so compute units, identical run to run.
PROGRAM_ID = Keypair.from_seed(bytes([7] * 32)).pubkey()
UPGRADEABLE_LOADER_ID = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
T0 = 1_700_000_000  # the Clock's unix time when a test starts
PERIOD = 28_800  # funding period (SPEC §2)
# SPEC §2 markets: (Pyth feed id, maximum leverage), by index.
MARKETS = [(BTC_USD_FEED_ID, 50), (ETH_USD_FEED_ID, 50), (SOL_USD_FEED_ID, 20)]
BTC, ETH, SOL = 0, 1, 2
PRICE = 60_000 * 10**8  # BTC at 60,000 USD, exponent -8
ANCHOR_ERROR = re.compile(
    r"^Program log: AnchorError occurred\. Error Code: (\w+)\. Error Number: (\d+)\. "
    r"Error Message: (.*)\.$"
)


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


def discriminator(account: str) -> bytes:
    return hashlib.sha256(f"account:{account}".encode()).digest()[:8]


def collateral_data(agent: Pubkey, free: int, locked: int, withdrawals: int = 0) -> bytes:
    """A `Collateral` account's bytes (what the program would have written)."""
    fields = struct.pack("<QQQB7x", free, locked, withdrawals, 255)
    return discriminator("Collateral") + bytes(agent) + fields


def position_data(requester: Pubkey, maker: Pubkey, state: dict, **fields: int) -> bytes:
    """A `Position` account's bytes for a SPEC §4 `state` (perpd.money names)."""
    f = {"nonce": 0, "opened_at": state["t_base"], "term_end": 0, "closes": 0}
    f |= {"market": BTC, "leverage": 1, "status": 0, "bump": 255} | fields
    numbers = struct.pack(
        "<QQQQQQQqqqqqI",
        f["nonce"],
        state["notional"],
        state["entry_price"],
        state["cr"],
        state["cm"],
        state["imr"],
        state["imm"],
        state["rate_ppm"],
        state["t_base"],
        state["funding_paid"],
        f["opened_at"],
        f["term_end"],
        f["closes"],
    )
    side = 0 if state["side"] == 1 else 1
    tail = bytes([f["market"], side, f["leverage"], f["status"], f["bump"]]) + bytes(7)
    return discriminator("Position") + bytes(requester) + bytes(maker) + numbers + tail


def ed25519_ix(signed: list[tuple[Keypair, bytes]], *, data_in: int = 0xFFFF) -> Instruction:
    """The Ed25519 precompile call over `signed` (key, message) pairs, each signed
    here by its key (`EscrowClient`'s builder; `data_in` as there)."""
    entries = [(k.pubkey(), bytes(k.sign_message(m)), m) for k, m in signed]
    return ed25519_verify_ix(entries, data_in=data_in)


@dataclass(frozen=True)
class Trade:
    """What a requester and a maker sign (SPEC §6), with SPEC §3's defaults:
    10,000 USDC of BTC-PERP long at 10x, quoted at 500 ppm with 1,000 USDC."""

    requester: Keypair
    maker: Keypair
    nonce: int = 1
    market: int = BTC
    side: int = 0
    size: int = 10_000 * USDC
    leverage: int = 10
    max_rate: int = 1_000
    duration: int = 0
    expires_at: int = T0 + 30
    rate: int = 500
    collateral: int = 1_000 * USDC
    valid_until: int = T0 + 10

    def request(self, program: Pubkey = PROGRAM_ID) -> bytes:
        return self.terms()[0].consent(program)

    def quote(self, program: Pubkey = PROGRAM_ID) -> bytes:
        request, quote = self.terms()
        return quote.consent(program, request)

    def terms(self) -> tuple[RequestTerms, QuoteTerms]:
        """The two consents' terms as the program client takes them."""
        request = RequestTerms(
            self.requester.pubkey(),
            self.nonce,
            self.market,
            self.side,
            self.size,
            self.leverage,
            self.max_rate,
            self.duration,
            self.expires_at,
        )
        return request, QuoteTerms(
            self.maker.pubkey(), self.rate, self.collateral, self.valid_until
        )

    def consents(self, program: Pubkey = PROGRAM_ID) -> Instruction:
        """The Ed25519 call carrying both consents (request 0, quote 1)."""
        return ed25519_ix(
            [(self.requester, self.request(program)), (self.maker, self.quote(program))]
        )

    def but(self, **changes: int) -> Trade:
        return replace(self, **changes)  # type: ignore[arg-type]


class Escrow:
    """A LiteSVM holding the escrow program (under the upgradeable loader),
    SPL Token, a USDC mint, a vault, Pyth price accounts and a Clock."""

    def __init__(self, program: bytes, idl: Idl, coder: Coder) -> None:
        self.svm = LiteSVM()
        self.idl = idl
        self.coder = coder
        self.program_id = PROGRAM_ID
        self.admin = self.funded_keypair(seed=90)
        self.programdata = self.deploy(program, self.admin.pubkey())
        self.router = self.funded_keypair(seed=91)
        self.usdc_mint = self.new_mint(decimals=6)
        self.config, _ = Pubkey.find_program_address([b"config"], self.program_id)
        self.vault_authority, _ = Pubkey.find_program_address([b"vault"], self.program_id)
        self.token_accounts: list[Pubkey] = []
        self.vault = self.token_account(self.vault_authority, 0)
        self.fee_account = self.token_account(Keypair().pubkey(), 0)
        self.agents: list[Pubkey] = []
        self.positions: list[Pubkey] = []
        self.price_accounts = [Pubkey.new_unique() for _ in MARKETS]
        self.set_time(T0)

    # ---- chain set-up -------------------------------------------------------

    def deploy(self, program: bytes, authority: Pubkey | None) -> Pubkey:
        """Writes the Program and ProgramData accounts the upgradeable loader's
        deploy would (LiteSVM refuses that instruction); returns ProgramData's address."""
        programdata, _ = Pubkey.find_program_address(
            [bytes(self.program_id)], UPGRADEABLE_LOADER_ID
        )
        option = b"\x01" + bytes(authority) if authority is not None else b"\x00" + bytes(32)
        meta = (3).to_bytes(4, "little") + (0).to_bytes(8, "little") + option
        self.set_account(programdata, meta + program, UPGRADEABLE_LOADER_ID)
        account = (2).to_bytes(4, "little") + bytes(programdata)
        lamports = self.svm.minimum_balance_for_rent_exemption(len(account))
        self.svm.set_account(
            self.program_id, Account(lamports, account, UPGRADEABLE_LOADER_ID, True)
        )
        return programdata

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
        self.token_accounts.append(address)
        return address

    def set_account(self, address: Pubkey, data: bytes, owner: Pubkey) -> None:
        lamports = self.svm.minimum_balance_for_rent_exemption(len(data))
        self.svm.set_account(address, Account(lamports, data, owner, False))

    def set_time(self, unix_timestamp: int) -> None:
        """Sets the Clock sysvar's unix time (the slot advances with it)."""
        clock = self.svm.get_clock()
        slot = clock.slot + 1
        self.svm.set_clock(Clock(slot, clock.epoch_start_timestamp, 0, 0, unix_timestamp))

    @property
    def now(self) -> int:
        return self.svm.get_clock().unix_timestamp

    def set_price(
        self,
        market: int,
        price: int,
        *,
        conf: int | None = None,
        publish_time: int | None = None,
        exponent: int = -8,
        feed_id: bytes | None = None,
        owner: Pubkey = PYTH_RECEIVER_ID,
        verification: object = "full",
        address: Pubkey | None = None,
    ) -> Pubkey:
        """Writes the market's Pyth `PriceUpdateV2` account, fresh by default."""
        data = price_update_v2(
            MARKETS[market][0] if feed_id is None else feed_id,
            price,
            price // 1_000 if conf is None else conf,
            exponent,
            self.now if publish_time is None else publish_time,
            verification=verification,  # type: ignore[arg-type]
        )
        address = self.price_accounts[market] if address is None else address
        self.set_account(address, data, owner)
        return address

    def write_collateral(self, agent: Pubkey, free: int, locked: int) -> Pubkey:
        """Writes `agent`'s collateral account as if it had deposited (the caller
        adds the same money to the vault with `fund_vault`)."""
        if agent not in self.agents:
            self.agents.append(agent)
        address = self.collateral_address(agent)
        self.set_account(address, collateral_data(agent, free, locked), self.program_id)
        return address

    def write_position(
        self, requester: Pubkey, maker: Pubkey, state: dict, **fields: int
    ) -> Pubkey:
        """Writes an open position holding `state` (a perpd.money state as a dict)
        at its PDA, with both agents' collateral accounts committing its margins
        and the vault holding its money: the books stay balanced."""
        address = self.position_address(requester, fields.get("nonce", 0))
        self.set_account(address, position_data(requester, maker, state, **fields), self.program_id)
        self.positions.append(address)
        self.write_collateral(requester, 0, state["imr"])
        self.write_collateral(maker, 0, state["imm"])
        self.fund_vault(state["cr"] + state["cm"])
        return address

    def fund_vault(self, amount: int) -> None:
        data = bytearray(self.svm.get_account(self.vault).data)
        data[64:72] = (self.token_balance(self.vault) + amount).to_bytes(8, "little")
        self.set_account(self.vault, bytes(data), TOKEN_PROGRAM_ID)

    def token_balance(self, address: Pubkey) -> int:
        return int.from_bytes(bytes(self.svm.get_account(address).data)[64:72], "little")

    def collateral_address(self, agent: Pubkey) -> Pubkey:
        return self.client.collateral_address(agent)

    def position_address(self, requester: Pubkey, nonce: int) -> Pubkey:
        return self.position_pda(requester, nonce)[0]

    def position_pda(self, requester: Pubkey, nonce: int) -> tuple[Pubkey, int]:
        """The position's address and canonical bump, found off chain."""
        return self.client.position_address(requester, nonce)

    def decode(self, address: Pubkey):
        """An account of this program decoded by anchorpy, or None."""
        account = self.svm.get_account(address)
        if account is None or account.owner != self.program_id:
            return None
        return self.coder.accounts.decode(bytes(account.data))

    def collateral(self, agent: Pubkey):
        """The agent's collateral account decoded by anchorpy, or None."""
        return self.decode(self.collateral_address(agent))

    def position(self, address: Pubkey):
        return self.decode(address)

    def money_state(self, address: Pubkey) -> money.PositionState:
        """The position's SPEC §4 state, as perpd.money holds it."""
        p = self.position(address)
        side = 1 if p.side == 0 else -1
        return money.PositionState(
            side,
            p.notional,
            p.entry_price,
            p.cr,
            p.cm,
            p.imr,
            p.imm,
            p.rate_ppm,
            p.t_base,
            p.funding_paid,
        )

    def free(self, agent: Pubkey) -> int:
        """The agent's free collateral (0 when it has no collateral account)."""
        state = self.collateral(agent)
        return 0 if state is None else state.free

    def config_state(self):
        return self.decode(self.config)

    # ---- what the tests assert ----------------------------------------------

    def error_code(self, name: str) -> int:
        """The code the IDL gives the error `name`."""
        return next(e.code for e in self.idl.errors if e.name == name)

    def assert_refused(self, outcome: Outcome, code: int | None, name: str) -> None:
        """The transaction failed with the custom error `name` (code `code` when
        given), logged in Anchor's format with the IDL's message."""
        assert not outcome.ok, outcome.logs
        error = next(e for e in self.idl.errors if e.name == name)
        assert outcome.error == error.code, (name, outcome.logs)
        if code is not None:
            assert error.code == code
        parsed = [m.groups() for line in outcome.logs if (m := ANCHOR_ERROR.match(line))]
        assert parsed == [(name, str(error.code), error.msg)], outcome.logs

    def snapshot(self) -> dict[Pubkey, bytes]:
        """Every account holding money or escrow state, by address."""
        addresses = [self.config, *self.token_accounts, *self.positions]
        addresses += [self.collateral_address(a) for a in self.agents]
        accounts = {a: self.svm.get_account(a) for a in addresses}
        return {a: bytes(acc.data) for a, acc in accounts.items() if acc is not None}

    def refuse(self, ixs: list[Instruction], signers: list[Keypair], name: str) -> Outcome:
        """Sends `ixs`, which must fail with `name` and change nothing."""
        before = self.snapshot()
        outcome = self.send_all(ixs, *signers)
        self.assert_refused(outcome, None, name)
        assert self.snapshot() == before
        return outcome

    def assert_conserved(self) -> None:
        """SPEC §7 conservation: the vault holds exactly Σ free + the open
        positions' collateral (cr + cm) + accrued fees, and the agents' `locked`
        is exactly the open positions' initial margins."""
        config = self.config_state()
        if config is None:
            return
        collaterals = [self.collateral(a) for a in self.agents]
        free = sum(c.free for c in collaterals if c is not None)
        locked = sum(c.locked for c in collaterals if c is not None)
        states = [p for p in map(self.position, self.positions) if p is not None]
        open_positions = [p for p in states if p.status == 0]
        held = sum(p.cr + p.cm for p in open_positions)
        margins = sum(p.imr + p.imm for p in open_positions)
        assert self.token_balance(self.vault) == free + held + config.accrued_fees
        assert locked == margins

    # ---- sending ------------------------------------------------------------

    @property
    def client(self) -> EscrowClient:
        """The program client for this chain (tests may move the program id)."""
        return EscrowClient(
            self.program_id,
            usdc_mint=self.usdc_mint,
            vault=self.vault,
            fee_account=self.fee_account,
        )

    def send(self, ix: Instruction, *signers: Keypair) -> Outcome:
        """Sends one instruction; the first signer pays the fee."""
        return self.send_all([ix], *signers)

    def send_all(self, ixs: list[Instruction], *signers: Keypair) -> Outcome:
        """Sends `ixs` in one transaction; the first signer pays the fee."""
        message = Message.new_with_blockhash(ixs, signers[0].pubkey(), self.svm.latest_blockhash())
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

    # ---- part 1: initialize, deposit, withdraw ------------------------------

    def initialize_ix(self, **overrides: Pubkey) -> Instruction:
        ix = self.client.initialize_ix(
            admin=self.admin.pubkey(),
            router_authority=self.router.pubkey(),
            funding_period_s=PERIOD,
        )
        return EscrowClient.with_accounts(ix, "initialize", **overrides)

    def set_market_ix(
        self, market: int, feed_id: bytes, max_leverage: int, admin: Pubkey | None = None
    ) -> Instruction:
        return self.client.set_market_ix(
            admin=admin or self.admin.pubkey(),
            market=market,
            feed_id=feed_id,
            max_leverage=max_leverage,
        )

    def initialize(self, *, list_markets: bool = True) -> Outcome:
        """Initializes the escrow as its upgrade authority and lists SPEC §2's markets."""
        outcome = self.send(self.initialize_ix(), self.admin)
        assert outcome.ok, outcome.logs
        if list_markets:
            ixs = [self.set_market_ix(i, feed, lev) for i, (feed, lev) in enumerate(MARKETS)]
            listed = self.send_all(ixs, self.admin)
            assert listed.ok, listed.logs
        return outcome

    def deposit_ix(
        self, depositor: Keypair, source: Pubkey, agent: Pubkey, amount: int, **overrides: Pubkey
    ) -> Instruction:
        if agent not in self.agents:
            self.agents.append(agent)
        ix = self.client.deposit_ix(
            depositor=depositor.pubkey(), source=source, agent=agent, amount=amount
        )
        return EscrowClient.with_accounts(ix, "deposit", **overrides)

    def withdraw_ix(
        self, agent: Pubkey, destination: Pubkey, amount: int, **overrides: Pubkey
    ) -> Instruction:
        ix = self.client.withdraw_ix(agent=agent, destination=destination, amount=amount)
        return EscrowClient.with_accounts(ix, "withdraw", **overrides)

    def funded_agent(self, usdc: int, seed: int | None = None) -> tuple[Keypair, Pubkey]:
        """An agent with `usdc` micro-USDC deposited and an empty token account."""
        agent = self.funded_keypair(seed)
        wallet = self.token_account(agent.pubkey(), usdc)
        outcome = self.send(self.deposit_ix(agent, wallet, agent.pubkey(), usdc), agent)
        assert outcome.ok, outcome.logs
        return agent, wallet

    # ---- part 2: positions --------------------------------------------------

    def lock_ix(self, trade: Trade, bump: int | None = None, **overrides: Pubkey) -> Instruction:
        request, quote = trade.terms()
        position = self.position_address(request.requester, request.nonce)
        if position not in self.positions:
            self.positions.append(position)
        ix = self.client.lock_position_ix(
            router=self.router.pubkey(),
            request=request,
            quote=quote,
            price_account=self.price_accounts[trade.market % len(MARKETS)],
            position_bump=bump,
        )
        return EscrowClient.with_accounts(ix, "lock_position", **overrides)

    def lock(self, trade: Trade, *, consents: Instruction | None = None) -> Outcome:
        """Relays `trade` as the router: both consents, then `lock_position`."""
        call = trade.consents() if consents is None else consents
        return self.send_all([call, self.lock_ix(trade)], self.router)

    def open(self, trade: Trade) -> Pubkey:
        """Locks `trade` (which must succeed); returns the position's address."""
        outcome = self.lock(trade)
        assert outcome.ok, outcome.logs
        return self.position_address(trade.requester.pubkey(), trade.nonce)

    def settle_ix(self, positions: list[Pubkey]) -> Instruction:
        return self.client.settle_funding_ix(positions)

    def _parties(self, position: Pubkey) -> dict[str, Pubkey]:
        state = self.position(position)
        return {
            "position": position,
            "requester": state.requester,
            "maker": state.maker,
            "price_account": self.price_accounts[state.market],
        }

    def close_ix(
        self, address: Pubkey, pct: int, closes: int, expires_at: int, **overrides: Pubkey
    ) -> Instruction:
        ix = self.client.close_position_ix(
            **self._parties(address), size_percent=pct, closes=closes, expires_at=expires_at
        )
        return EscrowClient.with_accounts(ix, "close_position", **overrides)

    def close_consent_ix(
        self, signer: Keypair, position: Pubkey, pct: int, closes: int, expires_at: int
    ) -> Instruction:
        message = close_consent(self.program_id, position, pct, closes, expires_at)
        return ed25519_ix([(signer, message)])

    def close(
        self, signer: Keypair, position: Pubkey, pct: int, *, closes: int | None = None
    ) -> Outcome:
        """Relays `signer`'s close consent for `pct` percent (the router pays)."""
        closes = self.position(position).closes if closes is None else closes
        expires_at = self.now + 30
        consent = self.close_consent_ix(signer, position, pct, closes, expires_at)
        return self.send_all(
            [consent, self.close_ix(position, pct, closes, expires_at)], self.router
        )

    def liquidate_ix(self, liquidator: Pubkey, position: Pubkey, reward: Pubkey) -> Instruction:
        return self.client.liquidate_ix(
            **self._parties(position), liquidator=liquidator, reward_to=reward
        )

    def collect_fees_ix(self, admin: Pubkey | None = None, **overrides: Pubkey) -> Instruction:
        ix = self.client.collect_fees_ix(admin=admin or self.admin.pubkey())
        return EscrowClient.with_accounts(ix, "collect_fees", **overrides)

    def withdraw_with_consent_ix(
        self, agent: Pubkey, destination: Pubkey, amount: int, withdrawals: int, expires_at: int
    ) -> Instruction:
        return self.client.withdraw_with_consent_ix(
            agent=agent,
            destination=destination,
            amount=amount,
            withdrawals=withdrawals,
            expires_at=expires_at,
        )

    def withdraw_consent_ix(
        self, agent: Keypair, destination: Pubkey, amount: int, withdrawals: int, expires_at: int
    ) -> Instruction:
        message = withdraw_consent(
            self.program_id, agent.pubkey(), destination, amount, withdrawals, expires_at
        )
        return ed25519_ix([(agent, message)])
