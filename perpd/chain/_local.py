"""The local chain: the packaged escrow program in solders' LiteSVM inside the daemon.

Genesis (`LocalChain.create` with nothing saved): the packaged ``escrow.so`` written at
`LOCAL_PROGRAM_ID` in the upgradeable loader's Program + ProgramData layout (LiteSVM
refuses the loader's deploy instruction), the router funded with SOL, then real
transactions: a 6-decimal test USDC mint whose authority the daemon holds, the vault (the
associated token account of the ``["vault"]`` PDA), the fee account and the faucet's
token account; ``initialize`` signed by the upgrade authority; ``set_market`` for SPEC
§2's markets with their Pyth feed ids.

Keys: every key the local chain signs with (upgrade authority, router, mint authority,
fee owner, and the mint's address) is derived from one random 32-byte ``secret`` drawn
at genesis, as HMAC-SHA256(secret, role) used as an ed25519 seed. The caller keeps the
secret with the saved accounts (the store's ``chain_meta``), so a restart signs with
the same keys, and two databases never share a key. The program id is the one fixed
address, so agents' consents name the same program everywhere.

Before each transaction the Clock sysvar follows ``clock()`` (never backwards; one slot
per transaction) and the Pyth push-oracle `PriceUpdateV2` account of each market the
transaction reads is written from ``oracle(market)``. `execute` returns the post-images
of every account the transaction wrote (and the price accounts and Clock it set): saved
in the same SQLite commit that records the transaction, `LocalChain.create(saved=…)`
rebuilds the identical chain. A refused transaction changes nothing, not even the fee
(it was never persisted, so the chain stays equal to the file).

Thread-safety: the submitter executes inside a store unit (on the database thread)
while HTTP reads run on the trio thread; one lock serialises every use of the SVM.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from solders.account import Account
from solders.clock import Clock
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountParams, create_account
from solders.sysvar import CLOCK
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionErrorInstructionError,
)
from spl.token.constants import TOKEN_PROGRAM_ID
from spl.token.instructions import (
    InitializeMintParams,
    MintToParams,
    create_associated_token_account,
    get_associated_token_address,
    initialize_mint,
    mint_to,
)

from perpd.chain import _loader as loader
from perpd.chain._backend import ChainRefused, Landed, market_price_account, signers_for
from perpd.chain._client import EscrowClient, error_names
from perpd.chain._program import LOCAL_PROGRAM_ID, packaged_program
from perpd.chain._pyth_account import PYTH_RECEIVER_ID, price_update_v2
from perpd.markets import DEFAULT_FUNDING_PERIOD_S, MARKETS
from perpd.store import chain as qc

if TYPE_CHECKING:
    from perpd.store import Store

__all__ = [
    "LocalChain",
    "LocalKeys",
    "Oracle",
    "account_rows",
    "accounts_from_rows",
    "open_local_chain",
    "record_landed",
]

# market index -> (price e-8, conf e-8, publish_time unix s)
Oracle = Callable[[int], tuple[int, int, int]]
SYSTEM = Pubkey.default()
ROUTER_LAMPORTS = 10**15  # a million SOL of fees: ~10^11 transactions
AUTHORITY_LAMPORTS = 10**9  # one SOL: the config account's rent
USDC_DECIMALS = 6
_CLOCK = struct.Struct("<QqQQq")  # slot, epoch_start_timestamp, epoch, leader_schedule_epoch, unix


class LocalKeys:
    """The local chain's keys, derived from its secret (see the module docstring)."""

    ROLES = ("upgrade-authority", "router", "mint-authority", "fee-owner", "usdc-mint")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("the local chain's secret is 32 bytes")

        def derive(role: str) -> Keypair:
            return Keypair.from_seed(hmac.new(secret, role.encode(), hashlib.sha256).digest())

        self.authority = derive("upgrade-authority")
        self.router = derive("router")
        self.mint_authority = derive("mint-authority")
        self.fee_owner = derive("fee-owner")
        self.mint = derive("usdc-mint")  # the mint's address (it signs its creation)

    def all(self) -> list[Keypair]:
        return [self.router, self.authority, self.mint_authority, self.fee_owner, self.mint]


class LocalChain:
    """The escrow program in an in-process LiteSVM (see the module docstring)."""

    mode = "local"

    def __init__(
        self, svm: LiteSVM, secret: bytes, *, clock: Callable[[], float], oracle: Oracle
    ) -> None:
        self.svm = svm
        self.secret = secret
        self.keys = LocalKeys(secret)
        self.router = self.keys.router
        self.clock = clock
        self.oracle = oracle
        mint = self.keys.mint.pubkey()
        client = EscrowClient(LOCAL_PROGRAM_ID, usdc_mint=mint, vault=mint, fee_account=mint)
        self.client = EscrowClient(
            LOCAL_PROGRAM_ID,
            usdc_mint=mint,
            vault=get_associated_token_address(client.vault_authority, mint),
            fee_account=get_associated_token_address(self.keys.fee_owner.pubkey(), mint),
        )
        self.faucet = get_associated_token_address(self.router.pubkey(), mint)
        self._lock = threading.RLock()
        self._genesis: dict[Pubkey, Account | None] = {}

    # ---- creation -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        clock: Callable[[], float],
        oracle: Oracle,
        saved: Iterable[tuple[Pubkey, Account]] = (),
        secret: bytes | None = None,
        funding_period_s: int = DEFAULT_FUNDING_PERIOD_S,
    ) -> LocalChain:
        """Genesis when ``saved`` is empty (``secret`` None: a fresh random one; keep
        ``chain.secret``), else exactly the ``saved`` accounts, signed for with
        ``secret`` (required then). ``funding_period_s`` applies at genesis only (the
        config holds it)."""
        rows = list(saved)
        if not rows:
            chain = cls(LiteSVM(), secret or os.urandom(32), clock=clock, oracle=oracle)
            chain._genesis_chain(funding_period_s)
            return chain
        if secret is None:
            raise ValueError("restoring a local chain needs the secret its keys derive from")
        chain = cls(LiteSVM(), secret, clock=clock, oracle=oracle)
        chain._restore(rows)
        return chain

    def _genesis_chain(self, funding_period_s: int) -> None:
        client, keys = self.client, self.keys
        self._set(self.router.pubkey(), Account(ROUTER_LAMPORTS, b"", SYSTEM, False))
        # initialize is paid by the upgrade authority (it creates the config account)
        self._set(keys.authority.pubkey(), Account(AUTHORITY_LAMPORTS, b"", SYSTEM, False))
        self._deploy(keys.authority.pubkey())
        mint, router = keys.mint.pubkey(), self.router.pubkey()
        space = 82  # an SPL Token mint
        tokens = [
            create_account(
                CreateAccountParams(
                    from_pubkey=router,
                    to_pubkey=mint,
                    lamports=self.svm.minimum_balance_for_rent_exemption(space),
                    space=space,
                    owner=TOKEN_PROGRAM_ID,
                )
            ),
            initialize_mint(
                InitializeMintParams(
                    decimals=USDC_DECIMALS,
                    program_id=TOKEN_PROGRAM_ID,
                    mint=mint,
                    mint_authority=keys.mint_authority.pubkey(),
                    freeze_authority=None,
                )
            ),
            create_associated_token_account(router, client.vault_authority, mint),
            create_associated_token_account(router, keys.fee_owner.pubkey(), mint),
            create_associated_token_account(router, router, mint),
        ]
        admin = keys.authority.pubkey()
        setup = [
            tokens,
            [
                client.initialize_ix(
                    admin=admin, router_authority=router, funding_period_s=funding_period_s
                )
            ],
            [
                client.set_market_ix(
                    admin=admin,
                    market=m.index,
                    feed_id=bytes.fromhex(m.feed_id),
                    max_leverage=m.max_leverage,
                )
                for m in MARKETS.values()
            ],
        ]
        for instructions in setup:
            self._genesis.update(self.execute(instructions).accounts)

    def _deploy(self, authority: Pubkey) -> None:
        """The Program and ProgramData accounts the loader's deploy would write."""
        program_id = self.client.program_id
        header = struct.pack("<IQB", 3, 0, 1) + bytes(authority)  # ProgramData, slot 0
        self._set(
            self.client.programdata,
            self._rent_exempt(header + packaged_program(), loader.LOADER_V3),
        )
        program = struct.pack("<I", 2) + bytes(self.client.programdata)
        account = self._rent_exempt(program, loader.LOADER_V3)
        self._set(program_id, Account(account.lamports, account.data, loader.LOADER_V3, True))

    def _restore(self, rows: list[tuple[Pubkey, Account]]) -> None:
        # executables last: the program account is loaded from its ProgramData
        for address, account in sorted(rows, key=lambda r: r[1].executable):
            if address == CLOCK:
                self.svm.set_clock(Clock(*_CLOCK.unpack(bytes(account.data))))
            else:
                self.svm.set_account(address, account)
        config = self.svm.get_account(self.client.config)
        if config is None or config.owner != self.client.program_id:
            raise ValueError("the saved accounts hold no escrow config")
        held = self.client.decode_config(bytes(config.data))
        if (held.usdc_mint, held.vault, held.router_authority) != (
            self.client.usdc_mint,
            self.client.vault,
            self.router.pubkey(),
        ):
            raise ValueError("the saved chain was not made with this secret")

    def genesis_accounts(self) -> dict[Pubkey, Account | None]:
        """Every account genesis wrote, as it is now (what a fresh database saves)."""
        with self._lock:
            addresses = {
                *self._genesis,
                self.client.program_id,
                self.client.programdata,
                self.keys.authority.pubkey(),
                CLOCK,
            }
            return {a: self._get(a) for a in addresses}

    # ---- transactions -------------------------------------------------------

    def _writable(self, instructions: Sequence[Instruction], prices: Iterable[int]) -> set[Pubkey]:
        keys = {m.pubkey for ix in instructions for m in ix.accounts if m.is_writable}
        keys.add(self.router.pubkey())
        keys.update(self.price_account(m) for m in prices)
        return keys

    def pre_images(
        self, instructions: Sequence[Instruction], *, prices: Iterable[int] = ()
    ) -> dict[Pubkey, Account | None]:
        """The accounts ``execute(instructions, prices=…)`` may write, as they are now."""
        with self._lock:
            return {a: self._get(a) for a in self._writable(instructions, prices)}

    def revert(self, pre_images: dict[Pubkey, Account | None]) -> None:
        """Puts the accounts back as `pre_images` had them (None: no account)."""
        with self._lock:
            for address, account in pre_images.items():
                self._set(address, account or Account(0, b"", SYSTEM, False))

    def execute(self, instructions: Sequence[Instruction], *, prices: Iterable[int] = ()) -> Landed:
        """Runs one transaction now; `ChainRefused` (and nothing changed) if refused."""
        markets = list(prices)
        with self._lock:
            before = self.pre_images(instructions, prices=markets)
            signers = signers_for(instructions, self.keys.all())
            self._tick()
            for market in markets:
                self._write_price(market)
            message = Message.new_with_blockhash(
                list(instructions), self.router.pubkey(), self.svm.latest_blockhash()
            )
            others = [k for k in signers if k.pubkey() != self.router.pubkey()]
            tx = VersionedTransaction(message, [self.router, *others])
            result = self.svm.send_transaction(tx)
            self.svm.expire_blockhash()
            slot = self.svm.get_clock().slot
            if isinstance(result, FailedTransactionMetadata):
                self.revert(before)
                raise _refusal(result, str(tx.signatures[0]), slot)
            after = {a: self._get(a) for a in before} | {CLOCK: self._get(CLOCK)}
            return Landed(
                str(tx.signatures[0]),
                slot,
                result.compute_units_consumed(),
                list(result.logs()),
                after,
            )

    async def send(
        self, instructions: Sequence[Instruction], *, prices: Iterable[int] = ()
    ) -> Landed:
        return self.execute(instructions, prices=prices)

    def mint_to_and_deposit(self, agent: Pubkey, amount: int) -> Landed:
        """The dev faucet: mints ``amount`` test USDC to the faucet's token account and
        deposits it into ``agent``'s collateral, in one transaction."""
        mint = mint_to(
            MintToParams(
                program_id=TOKEN_PROGRAM_ID,
                mint=self.client.usdc_mint,
                dest=self.faucet,
                mint_authority=self.keys.mint_authority.pubkey(),
                amount=amount,
                signers=[],
            )
        )
        deposit = self.client.deposit_ix(
            depositor=self.router.pubkey(), source=self.faucet, agent=agent, amount=amount
        )
        return self.execute([mint, deposit])

    # ---- reads --------------------------------------------------------------

    async def get_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        with self._lock:
            return [self._get(a) for a in addresses]

    def account(self, address: Pubkey) -> Account | None:
        with self._lock:
            return self._get(address)

    async def slot(self) -> int:
        return self.current_slot()

    def current_slot(self) -> int:
        with self._lock:
            return int(self.svm.get_clock().slot)

    def price_account(self, market: int) -> Pubkey:
        return market_price_account(market)

    def info(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "program_id": str(self.client.program_id),
            "cluster": "local",
            "usdc_mint": str(self.client.usdc_mint),
            "vault": str(self.client.vault),
            "slot": self.current_slot(),
        }

    # ---- internals ----------------------------------------------------------

    def _get(self, address: Pubkey) -> Account | None:
        account = self.svm.get_account(address)
        return None if account is None or account.lamports == 0 else account

    def _set(self, address: Pubkey, account: Account) -> None:
        self.svm.set_account(address, account)

    def _rent_exempt(self, data: bytes, owner: Pubkey) -> Account:
        return Account(self.svm.minimum_balance_for_rent_exemption(len(data)), data, owner, False)

    def _tick(self) -> None:
        """The Clock follows ``clock()``, never backwards, one slot per transaction."""
        held = self.svm.get_clock()
        unix = max(int(self.clock()), held.unix_timestamp)
        self.svm.set_clock(Clock(held.slot + 1, held.epoch_start_timestamp, 0, 0, unix))

    def _write_price(self, market: int) -> None:
        feed = next(m.feed_id for m in MARKETS.values() if m.index == market)
        price, conf, publish_time = self.oracle(market)
        data = price_update_v2(
            feed, price, conf, -8, publish_time, posted_slot=self.svm.get_clock().slot
        )
        self._set(self.price_account(market), self._rent_exempt(data, PYTH_RECEIVER_ID))


def _refusal(result: FailedTransactionMetadata, signature: str, slot: int) -> ChainRefused:
    err = result.err()
    logs = list(result.meta().logs())
    if isinstance(err, TransactionErrorInstructionError):
        inner = err.err
        if isinstance(inner, InstructionErrorCustom):
            name = error_names().get(inner.code)
            return ChainRefused(
                f"{name or 'custom program error'} ({inner.code})",
                code=inner.code,
                name=name,
                instruction=err.index,
                logs=logs,
            )
        text = str(inner).rsplit(".", 1)[-1]
        return ChainRefused(text, name=text, instruction=err.index, logs=logs)
    text = str(err).rsplit(".", 1)[-1]
    return ChainRefused(text, name=text, logs=logs)


# ---------------------------------------------------------------- store rows

Row = tuple[int, str, bool, int, bytes]  # lamports, owner, executable, rent_epoch, data


def account_rows(accounts: dict[Pubkey, Account | None]) -> dict[str, Row | None]:
    """Accounts as the store keeps them (perpd.store.chain): address -> row or None
    (no account). ``rent_epoch`` is a u64 stored as the i64 of the same bits."""
    rows: dict[str, Row | None] = {}
    for address, a in accounts.items():
        if a is None:
            rows[str(address)] = None
            continue
        rent_epoch = a.rent_epoch - 2**64 if a.rent_epoch >= 2**63 else a.rent_epoch
        rows[str(address)] = (a.lamports, str(a.owner), a.executable, rent_epoch, bytes(a.data))
    return rows


def accounts_from_rows(
    rows: Iterable[tuple[str, int, str, bool, int, bytes]],
) -> list[tuple[Pubkey, Account]]:
    """The store's rows back as accounts (the inverse of `account_rows`)."""
    out = []
    for address, lamports, owner, executable, rent_epoch, data in rows:
        epoch = rent_epoch + 2**64 if rent_epoch < 0 else rent_epoch
        account = Account(lamports, data, Pubkey.from_string(owner), bool(executable), epoch)
        out.append((Pubkey.from_string(address), account))
    return out


# ---------------------------------------------------------------- the daemon's side


async def open_local_chain(
    store: Store,
    *,
    clock: Callable[[], float],
    oracle: Oracle,
    funding_period_s: int = DEFAULT_FUNDING_PERIOD_S,
) -> LocalChain:
    """The database's local chain: restored from its saved accounts, or (a database
    that never had one) a genesis whose secret and accounts are saved in one commit."""
    secret = await store.read(lambda conn: qc.get_chain_meta(conn, "secret"))
    if secret is not None:
        rows = await store.read(qc.load_chain_accounts)
        return LocalChain.create(
            clock=clock, oracle=oracle, saved=accounts_from_rows(rows), secret=bytes.fromhex(secret)
        )
    chain = LocalChain.create(clock=clock, oracle=oracle, funding_period_s=funding_period_s)
    rows_now = account_rows(chain.genesis_accounts())

    def unit(conn: sqlite3.Connection) -> None:
        qc.set_chain_meta(conn, "secret", chain.secret.hex())
        qc.save_chain_accounts(conn, rows_now)

    await store.write(unit)
    return chain


def record_landed(conn: sqlite3.Connection, landed: Landed, kind: str, ref: str | None) -> None:
    """In the store unit that applies a transaction: its accounts and its record."""
    qc.save_chain_accounts(conn, account_rows(landed.accounts))
    qc.record_chain_tx(conn, landed.signature, landed.slot, kind, ref)
