"""A Solana JSON-RPC 2.0 server on loopback, in front of solders' LiteSVM, for tests.

It answers the methods perpd's `rpc` chain backend uses (sendTransaction,
simulateTransaction, getLatestBlockhash, getBlockHeight, getSlot,
getSignatureStatuses, getAccountInfo, getMultipleAccounts,
getMinimumBalanceForRentExemption) with the shapes a validator sends (base64 account
data; responses built with solders' own response types, which solana-py parses), so
the client under test talks real HTTP to something that behaves like a cluster:

- **Slots and blockhashes.** Every landed transaction takes one slot (block height =
  slot: no skipped slots) and the next slot has a new blockhash, valid for 150 blocks
  as on Solana (``lastValidBlockHeight``). A transaction whose blockhash is unknown or
  past that height is refused in preflight with ``BlockhashNotFound``, or dropped when
  preflight is skipped, as a leader would.
- **Preflight** simulates first and answers -32002 with the simulation (error, logs);
  a signature already processed is ``AlreadyProcessed``.
- **Statuses** say ``confirmed`` until 32 slots have passed, then ``finalized``.
- **Faults** the tests switch on (`Faults`): drop the next transactions (accepted,
  signature returned, never land), lose the response of the next ones (they land, the
  client gets HTTP 503), expire every blockhash just before or just after the next
  sends, let the next ones through preflight, or answer 503 to the next requests.

LiteSVM (agave 2.2) refuses the upgradeable loader's ``DeployWithMaxDataLen``
("Unsupported instruction"); its ``InitializeBuffer`` and ``Write`` run in LiteSVM for
real. So this server models that one instruction (`_deploy_with_max_data_len`): it
checks the signatures itself, runs the instructions before it in LiteSVM, then does
what agave's ``bpf_loader_upgradeable`` processor does (``programs/bpf_loader``:
program account ``Uninitialized`` and rent-exempt, buffer authority = the signing
upgrade authority, ``max_data_len`` >= the buffer's program, ProgramData address
derived from ``[program]``; buffer lamports drained to the payer, ProgramData created
rent-exempt for ``45 + max_data_len`` bytes holding ``ProgramData {slot,
Some(authority)}`` then the program, the buffer truncated to its 37-byte header
(then purged: 0 lamports), the Program account set to ``Program {programdata}`` and
executable) by writing the accounts with ``set_account``. Any failure restores every
account of the transaction. Layouts are bincode's: a u32 variant tag, ``Option`` as
one byte then the key.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from solders.account import Account
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.litesvm import LiteSVM
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc import responses as r
from solders.rpc.errors import SendTransactionPreflightFailureMessage
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_metadata import FailedTransactionMetadata
from solders.transaction_status import (
    InstructionErrorCustom,
    InstructionErrorFieldless,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorType,
    TransactionStatus,
)

LOADER_V3 = Pubkey.from_string("BPFLoaderUpgradeab1e11111111111111111111111")
SYSTEM = Pubkey.default()
MAX_PROCESSING_AGE = 150  # blocks a blockhash stays valid (agave)
FINALITY = 32  # slots until a status reads "finalized"
LAMPORTS_PER_SIGNATURE = 5_000
MAX_PERMITTED_DATA_LENGTH = 10 * 1024 * 1024
BUFFER_METADATA = 37
PROGRAMDATA_METADATA = 45


class RpcError(Exception):
    """A JSON-RPC error answer: code, message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class LostResponse(Exception):
    """The transaction landed but the client is to get HTTP 503 (fault injection)."""


@dataclass
class Faults:
    """Counters the tests set; each event consumes one."""

    drop: int = 0  # next sendTransaction calls: signature returned, never lands
    lose_response: int = 0  # next sendTransaction calls: lands, the client gets 503
    expire_after_send: int = 0  # after the next sends: every blockhash expires
    unavailable: int = 0  # next HTTP requests of any method: 503
    skip_simulation: int = 0  # next sends pass preflight (as if state changed after it)
    expire_before_send: int = 0  # next sends: every blockhash expires just before
    hide_statuses_until: float = 0.0  # wall time until which no status is shown


@dataclass
class _Status:
    slot: int
    err: TransactionErrorType | None


def _ix_error(index: int, err: InstructionErrorFieldless | int) -> TransactionErrorType:
    inner = InstructionErrorCustom(err) if isinstance(err, int) else err
    return TransactionErrorInstructionError(index, inner)


class _Refused(Exception):
    """The modelled deploy instruction failed with this instruction error."""

    def __init__(self, err: InstructionErrorFieldless | int, log: str) -> None:
        super().__init__(log)
        self.err, self.log = err, log


@dataclass
class Chain:
    """LiteSVM plus what a cluster adds: slots, blockhash ages, statuses, faults."""

    svm: LiteSVM = field(default_factory=LiteSVM)
    faults: Faults = field(default_factory=Faults)
    slot: int = 0
    blockhashes: dict[Hash, int] = field(default_factory=dict)
    statuses: dict[Signature, _Status] = field(default_factory=dict)
    received: list[Signature] = field(default_factory=list)  # every sendTransaction
    instructions: dict[Signature, list[Instruction]] = field(default_factory=dict)
    block_times: dict[int, int] = field(default_factory=dict)  # slot → its Clock's time
    # run before every simulation and execution: a test keeps the Clock and the Pyth
    # price accounts fresh with it, as a cluster's validators and price pushers would
    refresh: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.svm.with_sigverify(True).with_blockhash_check(False)
        self.slot = self.svm.get_clock().slot
        self.latest()

    # ---- time --------------------------------------------------------------

    def advance(self, slots: int = 1) -> None:
        """Moves the tip `slots` ahead; the new slot has a fresh blockhash."""
        self.slot += slots
        self.svm.warp_to_slot(self.slot)
        self.svm.expire_blockhash()
        self.blockhashes[self.svm.latest_blockhash()] = self.slot + MAX_PROCESSING_AGE

    def expire_blockhashes(self) -> None:
        """Every blockhash handed out so far is now past its last valid height."""
        self.advance(MAX_PROCESSING_AGE + 1)

    def latest(self) -> tuple[Hash, int]:
        blockhash = self.svm.latest_blockhash()
        # a test may have used the SVM directly (e.g. the escrow harness): its
        # blockhash is then as fresh as the tip
        last_valid = self.blockhashes.setdefault(blockhash, self.slot + MAX_PROCESSING_AGE)
        return blockhash, last_valid

    def blockhash_valid(self, blockhash: Hash) -> bool:
        self.latest()
        return self.blockhashes.get(blockhash, -1) >= self.slot

    # ---- accounts ----------------------------------------------------------

    def account(self, address: Pubkey) -> Account | None:
        """The account as an RPC node shows it: zero lamports means none."""
        account = self.svm.get_account(address)
        return account if account is not None and account.lamports > 0 else None

    def rent(self, size: int) -> int:
        return int(self.svm.minimum_balance_for_rent_exemption(size))

    # ---- transactions ------------------------------------------------------

    def simulate(
        self, tx: VersionedTransaction, sig_verify: bool
    ) -> r.RpcSimulateTransactionResult:
        if self.refresh is not None:
            self.refresh()
        if not self.blockhash_valid(tx.message.recent_blockhash):
            return r.RpcSimulateTransactionResult(
                err=TransactionErrorFieldless.BlockhashNotFound, logs=[], units_consumed=0
            )
        self.svm.with_sigverify(sig_verify)
        try:
            result = self.svm.simulate_transaction(tx)
        finally:
            self.svm.with_sigverify(True)
        if isinstance(result, FailedTransactionMetadata):
            meta = result.meta()
            return r.RpcSimulateTransactionResult(
                err=result.err(),
                logs=list(meta.logs()),
                units_consumed=meta.compute_units_consumed(),
            )
        ok = result.meta()
        return r.RpcSimulateTransactionResult(
            err=None, logs=list(ok.logs()), units_consumed=ok.compute_units_consumed()
        )

    def send(self, tx: VersionedTransaction, skip_preflight: bool) -> Signature:
        signature = tx.signatures[0]
        self.received.append(signature)
        if self.faults.expire_before_send > 0:
            self.faults.expire_before_send -= 1
            self.expire_blockhashes()
        if isinstance(tx.message, Message):
            self.instructions[signature] = [
                _decompile(tx.message, ix) for ix in tx.message.instructions
            ]
        if signature in self.statuses:
            self._preflight_failure(TransactionErrorFieldless.AlreadyProcessed, [], skip_preflight)
            return signature
        if not all(tx.verify_with_results()):
            raise RpcError(-32003, "Transaction signature verification failure")
        if not self.blockhash_valid(tx.message.recent_blockhash):
            self._preflight_failure(TransactionErrorFieldless.BlockhashNotFound, [], skip_preflight)
            return signature  # a leader drops it
        deploy = _deploy_index(tx)
        if self.faults.skip_simulation > 0:
            self.faults.skip_simulation -= 1
            skip_preflight = True
        if not skip_preflight and deploy is None:
            sim = self.simulate(tx, sig_verify=True)
            if sim.err is not None:
                self._preflight_failure(sim.err, list(sim.logs or []), skip_preflight=False)
        try:
            if self.faults.drop > 0:
                self.faults.drop -= 1
                return signature
            if self.refresh is not None:
                self.refresh()
            err = self._execute(tx) if deploy is None else self._deploy(tx, deploy)
            self.statuses[signature] = _Status(self.slot, err)
            self.block_times[self.slot] = self.svm.get_clock().unix_timestamp
            self.advance()
            if self.faults.lose_response > 0:
                self.faults.lose_response -= 1
                raise LostResponse
            return signature
        finally:
            if self.faults.expire_after_send > 0:
                self.faults.expire_after_send -= 1
                self.expire_blockhashes()

    @staticmethod
    def _preflight_failure(
        err: TransactionErrorType, logs: list[str], skip_preflight: bool
    ) -> None:
        if skip_preflight:
            return
        result = r.RpcSimulateTransactionResult(err=err, logs=logs)
        message = f"Transaction simulation failed: {err}"
        raise RpcError(
            -32002,
            message,
            json.loads(SendTransactionPreflightFailureMessage(message, result).to_json())["data"],
        )

    def _execute(self, tx: VersionedTransaction) -> TransactionErrorType | None:
        result = self.svm.send_transaction(tx)
        return result.err() if isinstance(result, FailedTransactionMetadata) else None

    # ---- the modelled DeployWithMaxDataLen ---------------------------------

    def _deploy(self, tx: VersionedTransaction, index: int) -> TransactionErrorType | None:
        """Runs the instructions before `index` in LiteSVM, then models the deploy."""
        message = tx.message
        if not isinstance(message, Message) or index != len(message.instructions) - 1:
            raise RpcError(
                -32602, "test server: deploy must be the last instruction of a legacy transaction"
            )
        keys = list(message.account_keys)
        before = {key: self.svm.get_account(key) for key in keys}
        instructions = [_decompile(message, ix) for ix in message.instructions]
        payer = keys[0]
        signers = [k for i, k in enumerate(keys) if message.is_signer(i)]
        try:
            if index > 0:
                prefix = Message.new_with_blockhash(
                    instructions[:index], payer, message.recent_blockhash
                )
                unsigned = VersionedTransaction.populate(
                    prefix, [Signature.default()] * prefix.header.num_required_signatures
                )
                self.svm.with_sigverify(False)
                try:
                    err = self._execute(unsigned)
                finally:
                    self.svm.with_sigverify(True)
                if err is not None:
                    raise _Abort(err)
                # the fee is the whole transaction's, one per signature
                prefix_fee = LAMPORTS_PER_SIGNATURE * prefix.header.num_required_signatures
            else:
                prefix_fee = 0
            self._charge(payer, LAMPORTS_PER_SIGNATURE * len(signers) - prefix_fee)
            self._deploy_with_max_data_len(instructions[index], signers)
        except _Refused as refused:
            self._restore(before)
            self._charge(payer, LAMPORTS_PER_SIGNATURE * len(signers))
            return _ix_error(index, refused.err)
        except _Abort as abort:
            self._restore(before)
            self._charge(payer, LAMPORTS_PER_SIGNATURE * len(signers))
            return abort.err
        return None

    def _charge(self, payer: Pubkey, lamports: int) -> None:
        account = self.svm.get_account(payer)
        assert account is not None
        self.svm.set_account(
            payer,
            Account(account.lamports - lamports, account.data, account.owner, account.executable),
        )

    def _restore(self, before: dict[Pubkey, Account | None]) -> None:
        for key, account in before.items():
            if key == SYSTEM or (account is not None and account.executable):
                continue
            self.svm.set_account(key, account or Account(0, b"", SYSTEM, False))

    def _deploy_with_max_data_len(self, ix: Instruction, signers: list[Pubkey]) -> None:
        if len(ix.accounts) < 8:
            raise _Refused(InstructionErrorFieldless.NotEnoughAccountKeys, "not enough accounts")
        (max_data_len,) = struct.unpack_from("<Q", ix.data, 4)
        payer, programdata, program, buffer = (m.pubkey for m in ix.accounts[:4])
        authority = ix.accounts[7].pubkey
        program_account = self.account(program)
        if (
            program_account is None
            or program_account.owner != LOADER_V3
            or bytes(program_account.data)[:4] != bytes(4)
        ):
            raise _Refused(
                InstructionErrorFieldless.AccountAlreadyInitialized,
                "Program account already initialized",
            )
        if len(program_account.data) < 36:
            raise _Refused(
                InstructionErrorFieldless.AccountDataTooSmall, "Program account too small"
            )
        if program_account.lamports < self.rent(len(program_account.data)):
            raise _Refused(
                InstructionErrorFieldless.ExecutableAccountNotRentExempt, "not rent-exempt"
            )
        buffer_account = self.account(buffer)
        raw = bytes(buffer_account.data) if buffer_account is not None else b""
        if (
            buffer_account is None
            or buffer_account.owner != LOADER_V3
            or raw[:4] != struct.pack("<I", 1)
        ):
            raise _Refused(InstructionErrorFieldless.InvalidArgument, "Invalid Buffer account")
        if raw[4:5] != b"\x01" or raw[5:37] != bytes(authority):
            raise _Refused(
                InstructionErrorFieldless.IncorrectAuthority,
                "Buffer and upgrade authority don't match",
            )
        if authority not in signers:
            raise _Refused(
                InstructionErrorFieldless.MissingRequiredSignature, "Upgrade authority did not sign"
            )
        elf = raw[BUFFER_METADATA:]
        if not elf:
            raise _Refused(InstructionErrorFieldless.InvalidAccountData, "Buffer account too small")
        if max_data_len < len(elf):
            raise _Refused(
                InstructionErrorFieldless.AccountDataTooSmall, "Max data length is too small"
            )
        size = PROGRAMDATA_METADATA + max_data_len
        if size > MAX_PERMITTED_DATA_LENGTH:
            raise _Refused(
                InstructionErrorFieldless.InvalidArgument, "Max data length is too large"
            )
        if programdata != Pubkey.find_program_address([bytes(program)], LOADER_V3)[0]:
            raise _Refused(
                InstructionErrorFieldless.InvalidArgument, "ProgramData address is not derived"
            )
        if self.account(programdata) is not None:
            raise _Refused(0, "ProgramData account already in use")  # system AccountAlreadyInUse
        payer_account = self.svm.get_account(payer)
        assert payer_account is not None
        lamports = max(1, self.rent(size))
        balance = payer_account.lamports + buffer_account.lamports - lamports
        if balance < 0:
            raise _Refused(1, "payer cannot fund ProgramData")  # system ResultWithNegativeLamports
        self.svm.set_account(
            payer, Account(balance, payer_account.data, payer_account.owner, False)
        )
        self.svm.set_account(buffer, Account(0, raw[:BUFFER_METADATA], LOADER_V3, False))
        header = struct.pack("<IQB", 3, self.slot, 1) + bytes(authority)
        body = header + elf + bytes(max_data_len - len(elf))
        self.svm.set_account(programdata, Account(lamports, body, LOADER_V3, False))
        state = struct.pack("<I", 2) + bytes(programdata)
        data = state + bytes(program_account.data)[len(state) :]
        self.svm.set_account(program, Account(program_account.lamports, data, LOADER_V3, True))


class _Abort(Exception):
    def __init__(self, err: TransactionErrorType) -> None:
        super().__init__(str(err))
        self.err = err


def _deploy_index(tx: VersionedTransaction) -> int | None:
    message = tx.message
    keys = list(message.account_keys)
    for i, ix in enumerate(message.instructions):
        if keys[ix.program_id_index] == LOADER_V3 and bytes(ix.data)[:4] == struct.pack("<I", 2):
            return i
    return None


def _writable(message: Message, i: int) -> bool:
    """A legacy message's writability rule (header counts of read-only keys)."""
    h = message.header
    if i < h.num_required_signatures:
        return i < h.num_required_signatures - h.num_readonly_signed_accounts
    return i < len(message.account_keys) - h.num_readonly_unsigned_accounts


def _decompile(message: Message, ix: Any) -> Instruction:
    keys = list(message.account_keys)
    metas = [
        AccountMeta(keys[i], is_signer=message.is_signer(i), is_writable=_writable(message, i))
        for i in bytes(ix.accounts)
    ]
    return Instruction(keys[ix.program_id_index], bytes(ix.data), metas)


# ---- JSON-RPC ---------------------------------------------------------------


def _decode_tx(params: list[Any]) -> tuple[VersionedTransaction, dict[str, Any]]:
    config = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
    raw = params[0]
    if config.get("encoding") != "base64":
        raise RpcError(-32602, "test server: only base64-encoded transactions")
    data = base64.b64decode(raw)
    return VersionedTransaction.from_bytes(data), config


def _value(resp: Any) -> Any:
    return json.loads(resp.to_json())["result"]


class Rpc:
    """The JSON-RPC methods over a `Chain`."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain

    def ctx(self) -> r.RpcResponseContext:
        return r.RpcResponseContext(self.chain.slot)

    def dispatch(self, method: str, params: list[Any]) -> Any:
        handler: Callable[[list[Any]], Any] | None = getattr(self, f"m_{method}", None)
        if handler is None:
            raise RpcError(-32601, f"Method not found: {method}")
        try:
            return handler(params)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise RpcError(-32602, f"Invalid params: {exc}") from exc

    def m_getLatestBlockhash(self, params: list[Any]) -> Any:
        blockhash, last_valid = self.chain.latest()
        return _value(r.GetLatestBlockhashResp(r.RpcBlockhash(blockhash, last_valid), self.ctx()))

    def m_getBlockHeight(self, params: list[Any]) -> Any:
        return self.chain.slot

    def m_getSlot(self, params: list[Any]) -> Any:
        return self.chain.slot

    def m_getMinimumBalanceForRentExemption(self, params: list[Any]) -> Any:
        return self.chain.rent(int(params[0]))

    def m_getAccountInfo(self, params: list[Any]) -> Any:
        account = self.chain.account(Pubkey.from_string(params[0]))
        return _value(r.GetAccountInfoResp(account, self.ctx()))

    def m_getMultipleAccounts(self, params: list[Any]) -> Any:
        accounts = [self.chain.account(Pubkey.from_string(k)) for k in params[0]]
        return _value(r.GetMultipleAccountsResp(accounts, self.ctx()))

    def m_getBlockTime(self, params: list[Any]) -> Any:
        slot = int(params[0])
        if slot not in self.chain.block_times:
            raise RpcError(-32004, f"Block not available for slot {slot}")
        return self.chain.block_times[slot]

    def m_getSignatureStatuses(self, params: list[Any]) -> Any:
        statuses: list[TransactionStatus | None] = []
        hidden = time.time() < self.chain.faults.hide_statuses_until
        for text in params[0]:
            status = None if hidden else self.chain.statuses.get(Signature.from_string(text))
            if status is None:
                statuses.append(None)
                continue
            depth = self.chain.slot - status.slot
            final = depth >= FINALITY
            statuses.append(
                TransactionStatus(
                    status.slot,
                    None if final else depth,
                    status.err,
                    status.err,
                    TransactionConfirmationStatus.Finalized
                    if final
                    else TransactionConfirmationStatus.Confirmed,
                )
            )
        return _value(r.GetSignatureStatusesResp(statuses, self.ctx()))

    def m_simulateTransaction(self, params: list[Any]) -> Any:
        tx, config = _decode_tx(params)
        result = self.chain.simulate(tx, sig_verify=bool(config.get("sigVerify", False)))
        return _value(r.SimulateTransactionResp(result, self.ctx()))

    def m_sendTransaction(self, params: list[Any]) -> Any:
        tx, config = _decode_tx(params)
        return str(self.chain.send(tx, skip_preflight=bool(config.get("skipPreflight", False))))


Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class RpcServer:
    """The ASGI app: POST JSON-RPC 2.0 (single or batch) to any path."""

    def __init__(self, chain: Chain | None = None) -> None:
        self.chain = chain or Chain()
        self.rpc = Rpc(self.chain)
        self.url = ""

    def answer(self, request: Any) -> dict[str, Any]:
        rid = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise RpcError(-32600, "Invalid request")
            params = request.get("params") or []
            result = self.rpc.dispatch(request["method"], params)
        except RpcError as exc:
            error: dict[str, Any] = {"code": exc.code, "message": exc.message}
            if exc.data is not None:
                error["data"] = exc.data
            return {"jsonrpc": "2.0", "error": error, "id": rid}
        return {"jsonrpc": "2.0", "result": result, "id": rid}

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        status, payload = self._respond(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _respond(self, body: bytes) -> tuple[int, bytes]:
        if self.chain.faults.unavailable > 0:
            self.chain.faults.unavailable -= 1
            return 503, b'{"error": "unavailable"}'
        try:
            request = json.loads(body)
        except ValueError:
            error = {"code": -32700, "message": "Parse error"}
            return 200, json.dumps({"jsonrpc": "2.0", "error": error, "id": None}).encode()
        try:
            if isinstance(request, list):
                return 200, json.dumps([self.answer(one) for one in request]).encode()
            return 200, json.dumps(self.answer(request)).encode()
        except LostResponse:
            return 503, b'{"error": "connection lost"}'

    async def serve(self, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        """Serves on 127.0.0.1 (a free port) until cancelled; reports the URL."""
        config = HypercornConfig()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None

        class _Status:
            def started(_self, binds: list[str]) -> None:  # noqa: N805
                self.url = binds[0]
                task_status.started(self.url)

        await serve(self, config, task_status=_Status())  # type: ignore[arg-type]
