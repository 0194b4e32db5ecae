"""The funding scheduler and term expiry (SPEC §3–4).

Every funding period each open position is settled to the period boundary; a term
position is closed at the oracle price when its term ends. The scheduler sleeps until
the earliest such deadline (at most a second, so a new position is picked up), works
in bounded batches, and after downtime catches up exactly: settlement is to the latest
boundary, and the money rules make one late settlement equal to every missed one.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from perpd import engine
from perpd.errors import ApiError
from perpd.store import queries as q
from perpd.venue import Venue

log = logging.getLogger(__name__)

BATCH = 200
MAX_SLEEP_S = 1.0
RETRY_S = 0.25


async def settle_due(venue: Venue) -> int:
    """Settle every position whose funding time has come, a batch per transaction."""
    done = 0
    while True:
        n = await venue.mutate(partial(engine.settle_funding_due, limit=BATCH), urgent=True)
        done += n
        if n < BATCH:
            return done


async def close_expired_terms(venue: Venue) -> int:
    """Close term positions whose term has ended, at the oracle price (if usable)."""
    now = int(venue.clock())
    due = await venue.read(partial(q.positions_term_due, now=now, limit=BATCH))
    closed = 0
    for p in due:
        try:
            await venue.mutate(
                partial(engine.close, agent_id=None, position_id=p.position_id, pct=100),
                urgent=True,
            )
            closed += 1
        except ApiError as exc:  # oracle unavailable, or closed meanwhile: retry next pass
            log.warning("term close of %s deferred: %s", p.position_id, exc.message)
    return closed


async def run(
    venue: Venue, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Settle funding and close expired terms forever; ``started`` after catching up."""
    await settle_due(venue)
    await close_expired_terms(venue)
    task_status.started()
    while True:
        deadline = await venue.read(q.next_position_deadline)
        delay = MAX_SLEEP_S if deadline is None else deadline - venue.clock()
        if delay <= 0:  # only a deferred term close is still due: retry soon, not in a spin
            delay = RETRY_S
        await trio.sleep(min(delay, MAX_SLEEP_S))
        if deadline is not None and venue.clock() >= deadline:
            await settle_due(venue)
            await close_expired_terms(venue)
