"""A trio-safe Solana JSON-RPC transport over solana-py's `AsyncClient`.

solana-py's plain RPC calls run on httpx and so under trio; its confirmation helpers
sleep on asyncio and do not. `RpcTransport.send_and_confirm` is the loop they would
be: sign with a recent blockhash, send, poll ``getSignatureStatuses`` with
`trio.sleep` under a deadline, re-send the same bytes now and then (the same signature
is idempotent: a cluster applies it once), and sign afresh only once the old blockhash
is past its ``lastValidBlockHeight`` *and* the old signature has not landed.

Expiry is decided by block height, never by slot: ``lastValidBlockHeight`` counts
blocks, slots run ahead of blocks whenever a leader skips, so comparing a slot would
declare a live transaction dead and send it twice. The height is read *before* the
statuses: a status read after the height passed the limit is final. A node answering
"blockhash not found" in preflight only means it did not forward that copy (it may lag
behind the cluster), so it leads to a fresh blockhash for a transaction that was never
accepted, never to re-signing one that was.

Every RPC error is translated here, at one boundary, into `perpd.chain._errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import httpx
import trio
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Commitment as RpcCommitment
from solana.rpc.core import RPCException
from solana.rpc.types import TxOpts
from solders.account import Account
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.errors import SerdeJSONError
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.rpc.errors import (
    NodeUnhealthyMessage,
    SendTransactionPreflightFailureMessage,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import (
    InstructionErrorCustom,
    TransactionConfirmationStatus,
    TransactionErrorFieldless,
    TransactionErrorInstructionError,
    TransactionErrorType,
    TransactionStatus,
)

from perpd.chain._errors import ChainUnavailable, ConfirmationTimeout, TransactionFailed

__all__ = ["Confirmed", "RpcTransport", "Simulation"]

Commitment = Literal["confirmed", "finalized"]
_RANK = {
    "confirmed": int(TransactionConfirmationStatus.Confirmed),
    "finalized": int(TransactionConfirmationStatus.Finalized),
}
_MAX_ACCOUNTS = 100  # getMultipleAccounts' limit per call
_MAX_SIGNATURES = 256  # getSignatureStatuses' limit per call
_TRANSPORT_ERRORS = (SolanaRpcException, httpx.HTTPError, OSError, SerdeJSONError)


@dataclass(frozen=True)
class Confirmed:
    """A transaction that landed without error at the transport's commitment."""

    signature: Signature
    slot: int


@dataclass(frozen=True)
class Simulation:
    """What a simulation says: the refusal (None if it would succeed), logs, units."""

    error: TransactionFailed | None
    logs: list[str]
    units: int | None


class RpcTransport:
    """One cluster over JSON-RPC: accounts, rent, simulation, send-and-confirm.

    ``priority_fee`` is the compute-unit price in micro-lamports (a ComputeBudget
    ``SetComputeUnitPrice`` instruction is prepended when it is above 0);
    ``compute_unit_limit`` likewise prepends ``SetComputeUnitLimit``. Instruction
    indexes in errors are the caller's (the prepended ones are not counted).
    """

    def __init__(
        self,
        url: str,
        *,
        commitment: Commitment = "confirmed",
        priority_fee: int = 0,
        compute_unit_limit: int | None = None,
        poll_interval_s: float = 0.4,
        resend_interval_s: float = 2.0,
        http_timeout_s: float = 10.0,
        confirm_timeout_s: float = 60.0,
    ) -> None:
        if priority_fee < 0:
            raise ValueError("priority_fee must be >= 0 micro-lamports per compute unit")
        self.url = url
        self.commitment: Commitment = commitment
        self.priority_fee = priority_fee
        self.compute_unit_limit = compute_unit_limit
        self.poll_interval_s = poll_interval_s
        self.resend_interval_s = resend_interval_s
        self.confirm_timeout_s = confirm_timeout_s
        self._client = AsyncClient(
            url, commitment=RpcCommitment(commitment), timeout=http_timeout_s
        )

    async def __aenter__(self) -> RpcTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.close()

    # ---- reads -------------------------------------------------------------

    async def latest_blockhash(self) -> tuple[Hash, int]:
        """A recent blockhash and the last block height at which it is valid."""
        try:
            value = (await self._client.get_latest_blockhash()).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc
        return value.blockhash, value.last_valid_block_height

    async def block_height(self) -> int:
        try:
            return (await self._client.get_block_height()).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc

    async def slot(self) -> int:
        try:
            return (await self._client.get_slot()).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc

    async def block_time(self, slot: int) -> int:
        """The unix time of ``slot``'s block: its Clock sysvar's, so the time a program
        computed at in that slot. `ChainUnavailable` while the node has no time for it."""
        try:
            value = (await self._client.get_block_time(slot)).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc
        if value is None:
            raise ChainUnavailable(f"no block time for slot {slot} yet")
        return int(value)

    async def get_account(self, address: Pubkey) -> Account | None:
        try:
            return (await self._client.get_account_info(address)).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc

    async def get_accounts(self, addresses: Sequence[Pubkey]) -> list[Account | None]:
        """The accounts in order (None where there is none), 100 per request."""
        found: list[Account | None] = []
        for start in range(0, len(addresses), _MAX_ACCOUNTS):
            chunk = list(addresses[start : start + _MAX_ACCOUNTS])
            try:
                found.extend((await self._client.get_multiple_accounts(chunk)).value)
            except (RPCException, *_TRANSPORT_ERRORS) as exc:
                raise _unavailable(exc) from exc
        return found

    async def minimum_balance(self, size: int) -> int:
        """Lamports that make an account of ``size`` data bytes rent-exempt."""
        try:
            return (await self._client.get_minimum_balance_for_rent_exemption(size)).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc

    async def statuses(
        self, signatures: Sequence[Signature], *, history: bool = False
    ) -> list[TransactionStatus | None]:
        """Each signature's status (None: not seen), 256 per request."""
        found: list[TransactionStatus | None] = []
        for start in range(0, len(signatures), _MAX_SIGNATURES):
            chunk = list(signatures[start : start + _MAX_SIGNATURES])
            try:
                resp = await self._client.get_signature_statuses(chunk, history)
            except (RPCException, *_TRANSPORT_ERRORS) as exc:
                raise _unavailable(exc) from exc
            found.extend(resp.value)
        return found

    # ---- transactions ------------------------------------------------------

    def with_budget(self, instructions: Sequence[Instruction]) -> list[Instruction]:
        """``instructions`` behind the ComputeBudget ones this transport adds."""
        budget = []
        if self.compute_unit_limit is not None:
            budget.append(set_compute_unit_limit(self.compute_unit_limit))
        if self.priority_fee > 0:
            budget.append(set_compute_unit_price(self.priority_fee))
        return [*budget, *instructions]

    def _budget_count(self) -> int:
        return (self.compute_unit_limit is not None) + (self.priority_fee > 0)

    def sign(
        self,
        instructions: Sequence[Instruction],
        payer: Keypair,
        signers: Sequence[Keypair],
        blockhash: Hash,
    ) -> VersionedTransaction:
        message = Message.new_with_blockhash(
            self.with_budget(instructions), payer.pubkey(), blockhash
        )
        unique = {bytes(k.pubkey()): k for k in (payer, *signers)}
        return VersionedTransaction(message, list(unique.values()))

    async def simulate(
        self, instructions: Sequence[Instruction], payer: Keypair, signers: Sequence[Keypair] = ()
    ) -> Simulation:
        """Runs the transaction against the node's state without sending it."""
        blockhash, _ = await self.latest_blockhash()
        tx = self.sign(instructions, payer, signers, blockhash)
        try:
            value = (await self._client.simulate_transaction(tx)).value
        except (RPCException, *_TRANSPORT_ERRORS) as exc:
            raise _unavailable(exc) from exc
        logs = list(value.logs or [])
        error = None if value.err is None else self._failure(value.err, logs)
        return Simulation(error, logs, value.units_consumed)

    async def send_and_confirm(
        self,
        instructions: Sequence[Instruction],
        payer: Keypair,
        signers: Sequence[Keypair] = (),
        *,
        timeout_s: float | None = None,
    ) -> Confirmed:
        """Lands the transaction exactly once, or says why not.

        Returns when one signature of it is confirmed. `TransactionFailed`: refused in
        preflight (nothing sent) or landed with an error (nothing applied).
        `ConfirmationTimeout` after ``timeout_s`` (default: the transport's
        ``confirm_timeout_s``): its ``signatures`` may still land
        until its ``last_valid_block_height`` (none can after).
        """
        timeout_s = self.confirm_timeout_s if timeout_s is None else timeout_s
        pending: list[Signature] = []
        horizon = -1
        last_problem = "no answer"
        with trio.move_on_after(timeout_s):
            while True:
                try:
                    blockhash, last_valid = await self.latest_blockhash()
                except ChainUnavailable as exc:
                    last_problem = str(exc)
                    await trio.sleep(self.poll_interval_s)
                    continue
                tx = self.sign(instructions, payer, signers, blockhash)
                outcome = await self._submit(tx, preflight=True)
                if outcome == "stale":
                    last_problem = "the node does not know the blockhash it gave"
                    await trio.sleep(self.poll_interval_s)
                    continue
                pending.append(tx.signatures[0])
                horizon = max(horizon, last_valid)
                landed = await self._watch(pending, tx, horizon)
                if landed is not None:
                    return landed
                pending.clear()  # every one expired unlanded: a new signature is safe
        raise ConfirmationTimeout(
            f"not confirmed within {timeout_s:g} s ({last_problem})", list(pending), horizon
        )

    async def _submit(self, tx: VersionedTransaction, *, preflight: bool) -> str:
        """``sent``; ``stale`` (preflight: blockhash unknown, not forwarded);
        ``unknown`` (no answer: it may have reached the node). A preflight refusal is
        `TransactionFailed`. Re-sends skip preflight: they only need to reach a leader."""
        opts = TxOpts(
            skip_confirmation=True,
            skip_preflight=not preflight,
            preflight_commitment=RpcCommitment(self.commitment),
        )
        try:
            await self._client.send_raw_transaction(bytes(tx), opts)
        except RPCException as exc:
            detail = exc.args[0] if exc.args else None
            if isinstance(detail, SendTransactionPreflightFailureMessage):
                err = detail.data.err
                if err is None:  # a node that says "failed" without saying why
                    return "unknown"
                if err == TransactionErrorFieldless.AlreadyProcessed:
                    return "sent"
                if err == TransactionErrorFieldless.BlockhashNotFound:
                    return "stale"
                raise self._failure(err, list(detail.data.logs or [])) from exc
            if isinstance(detail, NodeUnhealthyMessage) or not preflight:
                return "unknown"
            raise TransactionFailed(_message(detail)) from exc
        except _TRANSPORT_ERRORS:
            return "unknown"
        return "sent"

    async def _watch(
        self, pending: list[Signature], tx: VersionedTransaction, horizon: int
    ) -> Confirmed | None:
        """Polls until a pending signature is confirmed (returned) or all are dead
        (None: past ``horizon`` and unlanded). Re-sends ``tx`` meanwhile."""
        last_sent = trio.current_time()
        while True:
            try:
                height = await self.block_height()
                found = self._landed(pending, await self.statuses(pending))
                if found is None and height > horizon:
                    # Final: nothing can land now. Look through history too, in case
                    # the node's recent-status cache already let it go.
                    found = self._landed(pending, await self.statuses(pending, history=True))
                    if found is None:
                        return None
                if isinstance(found, Confirmed):
                    return found
                if found is None and trio.current_time() - last_sent >= self.resend_interval_s:
                    await self._submit(tx, preflight=False)
                    last_sent = trio.current_time()
            except ChainUnavailable:
                pass  # transient: keep polling until the deadline
            await trio.sleep(self.poll_interval_s)

    def _landed(
        self, pending: list[Signature], statuses: list[TransactionStatus | None]
    ) -> Confirmed | Literal["landing"] | None:
        """Confirmed; ``landing`` (landed, commitment not reached yet); None (unseen).
        A landed error is `TransactionFailed`."""
        landing = False
        for signature, status in zip(pending, statuses, strict=True):
            if status is None:
                continue
            if status.err is not None:
                raise self._failure(status.err, [], signature=signature, slot=status.slot)
            level = status.confirmation_status
            rank = (
                int(level)
                if level is not None
                else (_RANK["finalized"] if status.confirmations is None else _RANK["confirmed"])
            )
            if rank >= _RANK[self.commitment]:
                return Confirmed(signature, status.slot)
            landing = True
        return "landing" if landing else None

    def _failure(
        self,
        err: TransactionErrorType,
        logs: list[str],
        *,
        signature: Signature | None = None,
        slot: int | None = None,
    ) -> TransactionFailed:
        """A chain error as `TransactionFailed`, with the caller's instruction index."""
        if isinstance(err, TransactionErrorInstructionError):
            index = err.index - self._budget_count()
            inner = err.err
            code = inner.code if isinstance(inner, InstructionErrorCustom) else None
            name = f"custom program error {code}" if code is not None else _name(inner)
            return TransactionFailed(
                name,
                code=code,
                instruction=index if index >= 0 else None,
                logs=logs,
                signature=signature,
                slot=slot,
            )
        return TransactionFailed(_name(err), logs=logs, signature=signature, slot=slot)


def _name(err: object) -> str:
    """``ProgramFailedToComplete`` rather than ``InstructionErrorFieldless.Program…``."""
    text = str(err)
    return text.rsplit(".", 1)[-1] if type(err).__name__.endswith("Fieldless") else text


def _message(detail: object) -> str:
    return str(getattr(detail, "message", detail))


def _unavailable(exc: BaseException) -> ChainUnavailable:
    """Any failure of a read: the node is unreachable or answered badly."""
    if isinstance(exc, RPCException) and exc.args:
        return ChainUnavailable(f"RPC error: {_message(exc.args[0])}")
    if isinstance(exc, SolanaRpcException):
        return ChainUnavailable(f"RPC request failed: {exc.error_msg} ({exc.__cause__})")
    return ChainUnavailable(f"RPC request failed: {exc}")
