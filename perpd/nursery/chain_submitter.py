"""The chain submitter: sends the outbox's rows to the escrow program, one at a time, in
``id`` order, and applies each landed row to the mirror.

Local backend: one store unit executes the transaction in the in-process SVM, applies
the mirror's change with its events, checks that the mirror now equals the accounts the
transaction wrote, saves those accounts, and marks the row done with its signature and
slot: all of it commits, or none of it (the SVM is reverted to its pre-images when the
unit does not commit, whatever the reason). So a restart, even after kill -9, finds
either nothing of the row or all of it, and sends the row again only in the first case.

Rpc backend: the transaction is sent and confirmed outside the store (the backend
resends with a fresh blockhash on expiry), then a unit records it. Before sending a row
again after a restart or a timeout, the submitter asks the chain whether it already
landed (a lock whose position account exists, a close whose position counted it, a
withdrawal the collateral counted): that counts as done, so nothing is sent twice.

A refusal by the program undoes the row's reservation in a unit of its own
(`custody.refuse`: a lock's both collaterals and fee go back to free, with a
``position_failed`` event). Callers wait for their row with a deadline
(`wait_row`); past it they answer 503 ``chain_unavailable`` while the submitter keeps
at the row.

Test-only: ``PERPD_TEST_SUBMITTER_HANG=1`` in the environment makes the submitter stop
before executing anything (the kill -9 test uses it to stop between the two units of an
accept). Never set it in production.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import outcome
import trio
from solders.pubkey import Pubkey

from perpd import chain_actions, custody, engine
from perpd.auth import Verified
from perpd.chain._local import record_landed
from perpd.chain_mirror import chain_books, differences
from perpd.chain_pins import ChainPins
from perpd.errors import ApiError, ChainUnconfirmed, Conflict, Unavailable
from perpd.metrics import Metrics
from perpd.retry import Backoff
from perpd.store import on_rollback, outbox
from perpd.store import queries as q
from perpd.store.outbox import OutboxStatus
from perpd.venue import Venue

log = logging.getLogger(__name__)

T = TypeVar("T")
HANG_ENV = "PERPD_TEST_SUBMITTER_HANG"
POLL_S = 1.0  # rows written by another process or left by a crash are found this often
RPC_RETRY_S = 0.5
BATCH = 64
RECENT_OUTCOMES = 4096  # finished rows whose outcome waits for its caller


class MirrorMismatch(AssertionError):
    """The mirror's change disagrees with what the program wrote: a bug, undone."""


@dataclass
class Stats:
    landed: int = 0
    refused: int = 0
    unconfirmed: int = 0
    mismatches: int = 0
    last_signatures: list[str] = field(default_factory=list)


class ChainSubmitter:
    def __init__(
        self,
        venue: Venue,
        chain: Any,
        *,
        pins: ChainPins,
        confirm_timeout_s: float = 30.0,
    ) -> None:
        self.venue = venue
        self.chain = chain
        self.pins = pins
        self.confirm_timeout_s = confirm_timeout_s
        self.stats = Stats()
        self.backoff = Backoff("chain submitter")
        self.metrics: Metrics | None = None  # the daemon's, for confirmation latency
        self._wake = trio.Event()
        # the outcome of each row finished lately, kept until its caller asks for it: a
        # row may land before `submit`'s caller starts waiting for it
        self._finished: OrderedDict[int, outcome.Outcome[Any]] = OrderedDict()
        self._waiters: dict[int, trio.Event] = {}
        self._timed_out: dict[int, list[str]] = {}  # row id → signatures that may land
        self._resumed = trio.Event()
        self.paused = False
        if os.environ.get(HANG_ENV) == "1":
            self.pause()

    def pause(self) -> None:
        """Stop before sending the next row (tests: stop between an accept's two units)."""
        self.paused, self._resumed = True, trio.Event()

    def resume(self) -> None:
        self.paused = False
        self._resumed.set()

    # ------------------------------------------------------------ for callers

    async def submit(
        self,
        unit: Callable[[sqlite3.Connection, engine.Ctx], tuple[Any, int | None]],
        auth: Verified | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Any:
        """Run ``unit`` (it writes the outbox row), then wait for the row's outcome: the
        mirror change's value, or the API error of a refusal; `ChainUnconfirmed` past
        the deadline. Cancelling the wait is safe: the row is the submitter's now."""
        _, row_id = await self.venue.mutate(unit, auth, urgent=True)
        if row_id is None:
            return None
        return await self.wait_row(row_id, timeout_s)

    async def wait_row(self, row_id: int, timeout_s: float | None = None) -> Any:
        """The outcome of row ``row_id`` once it is finished (None if it had finished
        before this call: a retried call, which reads what landed itself)."""
        if row_id not in self._finished:
            event = self._waiters.setdefault(row_id, trio.Event())
            self._wake.set()  # first: the submitter's drain runs while this reads
            row = await self.venue.read(lambda conn: outbox.get(conn, row_id))
            if row is not None and row.finished and row_id not in self._finished:  # long ago
                self._waiters.pop(row_id, None)
                if row.status == OutboxStatus.FAILED:
                    raise Conflict(f"the chain refused it: {row.error}", code="chain_refused")
                return None
            if row_id not in self._finished:
                with trio.move_on_after(self.confirm_timeout_s if timeout_s is None else timeout_s):
                    await event.wait()
        done = self._finished.pop(row_id, None)
        self._waiters.pop(row_id, None)
        if done is None:
            row = await self.venue.read(lambda conn: outbox.get(conn, row_id))
            if row is not None and row.status == OutboxStatus.DONE:
                return None  # landed meanwhile (another process); the caller reads it
            raise ChainUnconfirmed(
                "the chain did not confirm in time; nothing is applied yet (the daemon keeps "
                "sending it: retry the call to see what landed)"
            )
        return done.unwrap()

    def _finish(self, row_id: int, result: outcome.Outcome[Any]) -> None:
        self._finished[row_id] = result
        while len(self._finished) > RECENT_OUTCOMES:
            self._finished.popitem(last=False)
        event = self._waiters.get(row_id)
        if event is not None:
            event.set()

    # ------------------------------------------------------------ the service

    async def drain(self) -> int:
        """Send every unfinished row in order; returns how many finished."""
        done = 0
        while True:
            rows = await self.venue.read(lambda conn: outbox.unfinished(conn, BATCH))
            if not rows:
                return done
            for row in rows:
                if self.paused:
                    log.warning("submitter paused before outbox row %d (%s)", row.id, row.kind)
                    await self._resumed.wait()
                if not await self._send(row):
                    return done  # the chain is unavailable: later, in order
                done += 1

    async def _send(self, row: outbox.OutboxRow) -> bool:
        start = time.perf_counter()
        if self.chain.mode == "local":
            done = await self._send_local(row)
        else:
            done = await self._send_rpc(row)
        if done and self.metrics is not None:
            self.metrics.chain_seconds.labels(row.kind).observe(time.perf_counter() - start)
        return done

    async def _send_local(self, row: outbox.OutboxRow) -> bool:
        try:
            result = await self.venue.mutate(
                lambda conn, ctx: self._land_local(conn, ctx, row.id), urgent=True, wait=False
            )
        except Unavailable:
            raise  # the database: the service backs off and retries the row
        except ApiError as exc:
            await self._refuse(row, exc)
            return True
        except _Refused as exc:
            await self._refuse(row, exc.error)
            return True
        if result is not _SKIPPED:
            self.stats.landed += 1
        self._finish(row.id, outcome.Value(result))
        return True

    def _land_local(self, conn: sqlite3.Connection, ctx: engine.Ctx, row_id: int) -> Any:
        from perpd.chain._backend import ChainRefused

        row = outbox.get(conn, row_id)
        if row is None or row.finished:
            return _SKIPPED
        chain = self.chain
        if row.kind == "deposit":  # the dev faucet: mint test USDC and deposit it
            agent = Pubkey.from_string(row.payload["agent"])
            client = chain.client
            touched = (
                client.usdc_mint,
                chain.faucet,
                client.collateral_address(agent),
                client.vault,
                chain.router.pubkey(),
            )
            pre = {a: chain.account(a) for a in touched}
            ctx = self.pins.pin(ctx, row.kind, ())
            try:
                landed = chain.mint_to_and_deposit(agent, row.payload["amount"])
            except ChainRefused as exc:
                raise _Refused(chain_actions.refusal(exc.name, exc.code, row.kind)) from exc
            finally:
                self.pins.unpin()
            on_rollback(conn, lambda: chain.revert(pre))
        else:
            ixs, prices = chain_actions.instructions(chain, row.kind, row.payload)
            pre = chain.pre_images(ixs, prices=prices)
            ctx = self.pins.pin(ctx, row.kind, prices)
            try:
                landed = chain.execute(ixs, prices=prices)
            except ChainRefused as exc:
                raise _Refused(chain_actions.refused_by(exc, row.kind, ixs)) from exc
            finally:
                self.pins.unpin()
            on_rollback(conn, lambda: chain.revert(pre))
        result = custody.apply(conn, ctx, row, landed.signature)
        problems = self.mirror_differences(conn, landed.accounts)
        if problems:
            self.stats.mismatches += 1
            raise MirrorMismatch(f"row {row.id} ({row.kind}): " + "; ".join(problems))
        record_landed(conn, landed, row.kind, row.ref)
        outbox.mark_done(conn, row.id, landed.signature, landed.slot, ctx.ts)
        self._note(landed.signature)
        return result

    def _note(self, signature: str) -> None:
        self.stats.last_signatures = [signature, *self.stats.last_signatures[:9]]

    async def _refuse(self, row: outbox.OutboxRow, error: ApiError) -> None:
        log.info(
            "chain refused outbox row %d (%s %s): %s", row.id, row.kind, row.ref, error.message
        )
        self.stats.refused += 1
        await self.venue.mutate(
            lambda conn, ctx: custody.refuse(conn, ctx, row, error), urgent=True
        )
        self._finish(row.id, outcome.Error(error))

    async def _send_rpc(self, row: outbox.OutboxRow) -> bool:
        from perpd.chain._backend import ChainRefused
        from perpd.chain._errors import ChainUnavailable, ConfirmationTimeout

        chain = self.chain
        try:
            if row.kind == "deposit":
                raise _Refused(
                    chain_actions.refusal(None, None, "deposit")
                )  # the faucet mints only on the local chain
            ixs, prices = chain_actions.instructions(chain, row.kind, row.payload)
            if await self.already_landed(row):
                signature, slot = await self._landed_earlier(row)
            else:
                landed = await chain.send(ixs, prices=prices)
                signature, slot = landed.signature, landed.slot
            self._timed_out.pop(row.id, None)
            # the program computed at its block's Clock, not at the daemon's: the
            # mirror's change runs at that second (a cluster's clock is its own)
            at = await self._block_time(slot)
        except ChainRefused as exc:
            await self._refuse(row, chain_actions.refused_by(exc, row.kind, ixs))
            return True
        except _Refused as exc:
            await self._refuse(row, exc.error)
            return True
        except ChainUnavailable as exc:
            if isinstance(exc, ConfirmationTimeout):  # any of them may land later
                self._timed_out.setdefault(row.id, []).extend(map(str, exc.signatures))
            self.stats.unconfirmed += 1
            log.warning("outbox row %d (%s) not confirmed: %s; retrying", row.id, row.kind, exc)
            return False

        def record(conn: sqlite3.Connection, ctx: engine.Ctx) -> Any:
            current = outbox.get(conn, row.id)
            if current is None or current.finished:
                return _SKIPPED
            result = custody.apply(
                conn, ctx if at is None else replace(ctx, now=at), row, signature
            )
            outbox.mark_done(conn, row.id, signature, slot, ctx.ts)
            return result

        result = await self.venue.mutate(record, urgent=True)
        self.stats.landed += 1
        self._note(signature)
        self._finish(row.id, outcome.Value(result))
        return True

    async def _landed_earlier(self, row: outbox.OutboxRow) -> tuple[str, int | None]:
        """The signature and slot of an earlier send that landed, among those this
        process saw time out; ("", None) when none is known (sent before a restart).
        `ChainUnavailable` while the node shows none of the known ones yet."""
        from perpd.chain._errors import ChainUnavailable

        known = [s for s in [*self._timed_out.get(row.id, []), row.signature or ""] if s]
        for signature in known:
            try:
                return signature, await self.chain.landed_slot(signature)
            except ChainUnavailable:
                continue
        if known:
            raise ChainUnavailable(f"row {row.id} landed, but no status of its signatures yet")
        return "", None

    async def _block_time(self, slot: int | None) -> int | None:
        """The block time of ``slot``; a node may need a moment after confirmation.
        None if it has none within the confirmation timeout (the mirror then uses the
        daemon's clock, logged)."""
        from perpd.chain._errors import ChainUnavailable

        if slot is not None:
            with trio.move_on_after(self.confirm_timeout_s):
                while True:
                    try:
                        return int(await self.chain.block_time(slot))
                    except ChainUnavailable:
                        await trio.sleep(RPC_RETRY_S)
        log.warning("no block time for slot %s: the mirror applies at the daemon's clock", slot)
        return None

    async def already_landed(self, row: outbox.OutboxRow) -> bool:
        """Did an earlier send of this row land? Asked of the chain before a resend."""
        p = row.payload
        chain = self.chain
        if row.kind not in ("lock", "close", "liquidate", "withdraw"):
            return False
        if row.kind == "withdraw":
            from solders.pubkey import Pubkey

            address = chain.client.collateral_address(Pubkey.from_string(p["agent"]))
            (account,) = await chain.get_accounts([address])
            if account is None:
                return False
            return bool(
                chain.client.decode_collateral(bytes(account.data)).withdrawals > p["withdrawals"]
            )
        from solders.pubkey import Pubkey

        (account,) = await chain.get_accounts([Pubkey.from_string(p["position"])])
        if account is None:
            return False
        if row.kind == "lock":
            return True  # the position account exists: the lock landed
        onchain = chain.client.decode_position(bytes(account.data))
        if row.kind == "close":
            return bool(onchain.closes > p["closes"])
        return bool(onchain.status != 0)

    def mirror_differences(self, conn: sqlite3.Connection, accounts: dict[Any, Any]) -> list[str]:
        """Where the mirror disagrees with the program accounts a transaction wrote."""
        books = chain_books(self.chain.client, accounts.items())
        mirror = q.mirror_books(conn, agents=books.collaterals, addresses=books.positions)
        return differences(mirror, books, complete=False)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Finish what a previous run left (before the HTTP service starts), then forever
        send rows as they are written (woken by callers) or found (every second)."""
        task_status.started()
        while True:
            # a fresh event before the drain: a row written while it runs (its wake-up
            # set after the drain's last read) is drained at once, not a poll later
            self._wake = trio.Event()
            await self.backoff.call(self.drain)
            with trio.move_on_after(POLL_S):
                await self._wake.wait()

    def statistics(self) -> dict[str, Any]:
        return {
            "landed": self.stats.landed,
            "refused": self.stats.refused,
            "unconfirmed": self.stats.unconfirmed,
            "mismatches": self.stats.mismatches,
            "db_retries": self.backoff.retries,
        }


class _Skip:
    """A row another unit already finished."""


_SKIPPED = _Skip()


class _Refused(Exception):
    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


async def run(
    submitter: ChainSubmitter, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The service: send the outbox forever."""
    await submitter.run(task_status=task_status)
