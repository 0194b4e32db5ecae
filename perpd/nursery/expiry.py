"""Quote and request expiry timers (SPEC §3): deadlines become events on time.

The timer sleeps until the earliest deadline, or until the store commits something
(a new request or quote may have an earlier one), and never longer than a second.
At start-up its first pass expires everything whose deadline passed while the daemon
was down, before the HTTP service starts. Acceptance never relies on this timer: the
accepting transaction checks deadlines itself.
"""

from __future__ import annotations

import sqlite3

import trio

from perpd import engine
from perpd.store import queries as q
from perpd.venue import Venue

MAX_SLEEP_S = 1.0
SIGNATURE_SWEEP_S = 60.0


def _next_deadline(conn: sqlite3.Connection) -> int | None:
    deadlines = [q.next_request_deadline(conn), q.next_quote_deadline(conn)]
    live = [d for d in deadlines if d is not None]
    return min(live) if live else None


async def run(
    venue: Venue, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Expire due requests and quotes forever; ``started`` after the start-up pass."""
    await venue.mutate(engine.expire_due)
    task_status.started()
    next_sweep = trio.current_time() + SIGNATURE_SWEEP_S
    while True:
        seen = venue.store.last_seq
        deadline = await venue.read(_next_deadline)
        delay = MAX_SLEEP_S if deadline is None else max(0.0, deadline - venue.clock())
        with trio.move_on_after(min(delay, MAX_SLEEP_S)):
            if delay > 0:
                await venue.store.wait_seq_after(seen)
        if deadline is not None and venue.clock() >= deadline:
            await venue.mutate(engine.expire_due)
        if trio.current_time() >= next_sweep:
            await venue.forget_old_signatures()
            next_sweep = trio.current_time() + SIGNATURE_SWEEP_S
