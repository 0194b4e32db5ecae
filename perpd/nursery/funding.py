"""The funding scheduler and term expiry (SPEC §3–4).

Every funding period each open position is settled to the period boundary; a term
position is closed at the oracle price when its term ends. The scheduler sleeps until
the earliest such deadline (at most a second, so a new position is picked up), works
in bounded batches, and after downtime catches up exactly: settlement is to the latest
boundary, and the money rules make one late settlement equal to every missed one.
A database that is busy or full pauses it (retried with backoff, logged); a term close
that fails on a bug is quarantined for that position alone.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import trio

from perpd import custody, engine
from perpd.chain_actions import SETTLE_BATCH
from perpd.errors import ApiError, Unavailable
from perpd.records import Event
from perpd.retry import Backoff, Quarantine
from perpd.store import TICK_CACHE_KIB, WRITER_CACHE_KIB, funding_index, size_cache
from perpd.store import queries as q
from perpd.store.funding_index import Backlog
from perpd.venue import Venue

log = logging.getLogger(__name__)

BATCH = 200  # term closes per pass
# A funding unit runs set-based steps in one transaction until none is due, or it has
# run UNIT_S (or settled UNIT_MAX), or, once it has run MIN_UNIT_S, another unit waits
# for the writer: alone, a tick commits a few large units (each commit rewrites every
# index page its positions touched and every account row, so few commits is what makes
# a tick fast: 0.1 s units took 9.0 s, 0.5 s units 8.5 s in-process); an accept
# that arrives waits for at most MIN_UNIT_S plus a step and that unit's commit. A step is
# sized to hold the writer about STEP_S, by the last step's own time (halfway,
# geometrically, to the size that takes STEP_S).
FUNDING_CHUNK = 256  # the first step's size (and every step's, unadapted)
MIN_STEP, MAX_STEP = 32, 2_048
STEP_S = 0.02
MIN_UNIT_S = 0.02
UNIT_S = 0.5
UNIT_MAX = 32_768
MAX_SLEEP_S = 1.0
RETRY_S = 0.25


async def settle_due(venue: Venue, backlog: Backlog | None = None) -> int:
    """Settle every position whose funding time has come, a batch per transaction
    (with a chain: a ``settle_funding`` of up to `SETTLE_BATCH` positions per row,
    each waited for before the next, so no position is asked twice). Without a chain
    the batches leave their events' audience and history rows to ``backlog``, written
    in one sorted pass once nothing is due (`index_backlog`)."""
    done = 0
    submitter = venue.submitter
    if submitter is not None:
        while True:
            n, row_id = await venue.mutate(
                partial(custody.ask_settle, limit=SETTLE_BATCH), urgent=True, wait=False
            )
            if row_id is not None:
                await submitter.wait_row(row_id)
            done += n
            if n < SETTLE_BATCH:
                return done
    backlog = Backlog() if backlog is None else backlog
    waiting = venue.store.writes_waiting
    step = Step(adapt=True)

    def unit(conn: sqlite3.Connection, ctx: engine.Ctx) -> tuple[int, bool, list[Event]]:
        made: list[Event] = []  # this run's own (a unit is all or nothing)
        size_cache(conn, TICK_CACHE_KIB)  # the tick's random index pages stay cached
        n, more = _funding_unit(conn, ctx, waiting, step, made)
        if not more and not made and not backlog:  # no sorted pass follows
            size_cache(conn, WRITER_CACHE_KIB)
        return n, more, made

    while True:
        n, more, made = await venue.mutate(unit, urgent=True, wait=False, alone=True)
        backlog.add_events(made)  # committed: the sorted pass may write their rows
        done += n
        if not more:
            await index_backlog(venue, backlog)
            return done


async def index_backlog(venue: Venue, backlog: Backlog) -> None:
    """Write a tick's deferred audience and history rows in key order, in units sized
    like funding units, until no range is recorded as unindexed (one left by a crash
    is read back from the log first)."""
    waiting = venue.store.writes_waiting
    step = Step(adapt=True)
    while True:
        if not backlog and not await venue.read(backlog.load):
            return
        written, left = await venue.mutate(
            partial(_index_unit, backlog=backlog, waiting=waiting, step=step),
            urgent=True,
            wait=False,
            alone=True,
        )
        backlog.drop(written)
        if not left and not backlog:
            return


@dataclass
class Step:
    """The size of a funding step; ``adapt``: resized after each step to take STEP_S."""

    size: int = field(default_factory=lambda: FUNDING_CHUNK)
    adapt: bool = False

    def took(self, seconds: float) -> None:
        if self.adapt:
            aim = self.size * STEP_S / max(seconds, 1e-4)
            self.size = max(MIN_STEP, min(MAX_STEP, int(math.sqrt(self.size * aim))))


def _funding_unit(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    waiting: Callable[[], bool],
    step: Step | None = None,
    unindexed: list[Event] | None = None,
) -> tuple[int, bool]:
    """Funding steps in one transaction (on the writer thread); returns (positions
    settled, whether some may still be due). Past MIN_UNIT_S, it ends after the step that
    finds another unit waiting for the writer: that unit waits for the step and this
    commit. ``unindexed``: see `engine.settle_funding_due`; the agents' locked balances
    are written once, after the last step."""
    step = step or Step()
    done = 0
    locked: dict[str, int] = {}
    began = time.perf_counter()
    while True:
        size, start = step.size, time.perf_counter()
        n = engine.settle_funding_due(conn, ctx, size, unindexed, locked)
        ended = time.perf_counter()
        step.took(ended - start)
        done += n
        more = n == size
        if not more or _unit_ends(began, ended, done, waiting):
            q.adjust_locked(conn, locked)
            return done, more


def _unit_ends(began: float, now: float, done: int, waiting: Callable[[], bool]) -> bool:
    held = now - began
    return held >= UNIT_S or done >= UNIT_MAX or (held >= MIN_UNIT_S and waiting())


def _index_unit(
    conn: sqlite3.Connection,
    ctx: engine.Ctx,
    backlog: Backlog,
    waiting: Callable[[], bool],
    step: Step,
) -> tuple[int, bool]:
    """Steps of the sorted pass in one transaction, ended as funding units end; returns
    (rows written, whether an unindexed range is left). The backlog is read, not
    changed: its rows are dropped once this has committed."""
    done = 0
    began = time.perf_counter()
    size_cache(conn, TICK_CACHE_KIB)
    while True:
        start = time.perf_counter()
        rows = backlog.peek(step.size, done)
        done += len(rows)
        last = done >= len(backlog)
        left = funding_index.index_rows(conn, rows, done_to=backlog.high if last else None)
        ended = time.perf_counter()
        step.took(ended - start)
        if last and not left:  # the tick is over: order flow's cache again
            size_cache(conn, WRITER_CACHE_KIB)
        if last or _unit_ends(began, ended, done, waiting):
            return done, left


async def close_expired_terms(venue: Venue, quarantine: Quarantine | None = None) -> int:
    """Close term positions whose term has ended, at the oracle price (if usable)."""
    now = int(venue.clock())
    due = await venue.read(partial(q.positions_term_due, now=now, limit=BATCH))
    closed = 0
    for p in due:
        if quarantine is not None and quarantine.blocked(p.position_id):
            continue
        try:
            if venue.submitter is not None:  # anyone closes an ended term, in full
                await venue.submitter.submit(
                    partial(
                        custody.ask_close,
                        agent_id=None,
                        position_id=p.position_id,
                        pct=100,
                        consent=None,
                    )
                )
            else:
                await venue.mutate(
                    partial(engine.close, agent_id=None, position_id=p.position_id, pct=100),
                    urgent=True,
                    wait=False,
                )
            closed += 1
        except Unavailable:
            raise  # the database, not the position: the caller backs off and retries
        except ApiError as exc:  # oracle unavailable, or closed meanwhile: retry next pass
            log.warning("term close of %s deferred: %s", p.position_id, exc.message)
        except Exception as exc:  # a bug on this position must not stop the others
            if quarantine is None:
                raise
            quarantine.fail(p.position_id, exc)
    return closed


class FundingScheduler:
    """The service's state: its retry counters, for statistics."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.backoff = Backoff("funding scheduler")
        self.quarantine = Quarantine("term close")
        self.funding_quarantine = Quarantine("funding settlement")
        self.backlog = Backlog()  # a tick's rows not yet indexed, kept across retries

    async def pass_(self) -> None:
        await self.backoff.call(self._settle)
        await self.backoff.call(lambda: close_expired_terms(self.venue, self.quarantine))

    async def _settle(self) -> None:
        """Batches normally; one position per unit while a position is failing."""
        if not len(self.funding_quarantine):
            try:
                await settle_due(self.venue, self.backlog)
                return
            except Unavailable:
                raise
            except Exception as exc:  # a bug on some position: find it, settle the rest
                log.error("funding batch failed; settling position by position", exc_info=exc)
        await self._settle_one_by_one()
        await index_backlog(self.venue, self.backlog)

    async def _settle_one_by_one(self) -> None:
        now = int(self.venue.clock())
        due = await self.venue.read(partial(q.positions_funding_due, now=now, limit=1 << 20))
        self.funding_quarantine.keep_only({p.position_id for p in due})
        for p in due:
            if self.funding_quarantine.blocked(p.position_id):
                continue
            try:
                await self.venue.mutate(
                    partial(engine.settle_funding_of, position_id=p.position_id),
                    urgent=True,
                    wait=False,
                )
            except Unavailable:
                raise
            except Exception as exc:
                self.funding_quarantine.fail(p.position_id, exc)
            else:
                self.funding_quarantine.succeeded(p.position_id)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.pass_()
        task_status.started()
        while True:
            deadline = await self.backoff.call(lambda: self.venue.read(q.next_position_deadline))
            delay = MAX_SLEEP_S if deadline is None else deadline - self.venue.clock()
            if delay <= 0:  # only a deferred term close is still due: retry soon, not a spin
                delay = RETRY_S
            await trio.sleep(min(delay, MAX_SLEEP_S))
            if deadline is not None and self.venue.clock() >= deadline:
                await self.pass_()

    def statistics(self) -> dict[str, int]:
        return {
            "db_retries": self.backoff.retries,
            "failures": self.quarantine.failures + self.funding_quarantine.failures,
            "quarantined": len(self.quarantine) + len(self.funding_quarantine),
        }


async def run(
    venue: Venue, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Settle funding and close expired terms forever; ``started`` after catching up."""
    await FundingScheduler(venue).run(task_status=task_status)
