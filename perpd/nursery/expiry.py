"""Quote and request expiry timers (SPEC §3): deadlines become events on time.

The timer learns each new deadline from the store's commit stream (`perpd.deadlines`:
the ``trade_request`` and ``quote`` events carry ``expires_at``) and sleeps until the
earliest, without a database read per commit; it looks at the clock at least every
second, so a clock that jumps (tests, a suspended VM) is noticed. Its first pass, at
start-up, expires everything whose deadline passed while the daemon was down, before the
HTTP service starts. Acceptance never relies on this timer: the accepting transaction checks
deadlines itself. A busy or full database pauses it (retried with backoff, logged).
"""

from __future__ import annotations

import logging
import sqlite3

import trio

from perpd import engine
from perpd.deadlines import Deadlines
from perpd.errors import Unavailable
from perpd.retry import Backoff
from perpd.store import queries as q
from perpd.venue import Venue

log = logging.getLogger(__name__)

MAX_SLEEP_S = 1.0
SIGNATURE_SWEEP_S = 60.0
SIGNATURE_RETRY_S = 5.0


def _next_deadline(conn: sqlite3.Connection) -> int | None:
    deadlines = [q.next_request_deadline(conn), q.next_quote_deadline(conn)]
    live = [d for d in deadlines if d is not None]
    return min(live) if live else None


class ExpiryTimer:
    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.deadlines = Deadlines()
        self.passes = 0
        self.batches = 0  # follow-up batches (a pass that found more than one batch)
        self.backoff = Backoff("expiry timer")
        venue.store.add_listener(self.deadlines.committed)

    async def expire(self) -> None:
        """Expire what is due, then learn the next deadline from the database.

        In batches of ``expiry_batch`` rows, one unit of work each: the first goes
        ahead of order flow (urgent), the rest queue behind what is already waiting,
        so 12,000 deadlines in one second never hold the writer for long. Transient
        database errors are retried with backoff.
        """
        await self.backoff.call(self._expire)

    async def _expire(self) -> None:
        self.passes += 1
        batch = self.venue.limits.expiry_batch
        done = await self.venue.mutate(engine.expire_due, urgent=True, wait=False)
        while done >= batch:
            self.batches += 1
            done = await self.venue.mutate(engine.expire_due, wait=False)
        # Deadlines committed while the read is in flight reach the listener: keep both.
        self.deadlines.forget()
        self.deadlines.note(await self.venue.read(_next_deadline))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.expire()
        task_status.started()
        next_sweep = trio.current_time() + SIGNATURE_SWEEP_S
        while True:
            if self.deadlines.due(self.venue.clock()):
                await self.expire()
            if trio.current_time() >= next_sweep:
                next_sweep = trio.current_time() + SIGNATURE_SWEEP_S
                try:
                    await self.venue.forget_old_signatures()
                except Unavailable as exc:  # harmless to postpone: try again sooner
                    self.backoff.retries += 1
                    log.warning("signature pruning postponed: %s", exc.message)
                    next_sweep = trio.current_time() + SIGNATURE_RETRY_S
            with trio.move_on_after(self.deadlines.seconds_left(self.venue.clock(), MAX_SLEEP_S)):
                await self.deadlines.wait_earlier()

    def statistics(self) -> dict[str, int | None]:
        return {
            "passes": self.passes,
            "batches": self.batches,
            "earliest": self.deadlines.earliest,
            "db_retries": self.backoff.retries,
        }


async def run(
    venue: Venue, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The service: expire due requests and quotes forever; ready after the start-up pass."""
    await ExpiryTimer(venue).run(task_status=task_status)
