"""The funding curve service: keeps `perpd.funding_curve.CurveBook` in step with every
commit and publishes a public ``funding_curve`` event for a market when its curve moves,
at most once per second per market.

The book starts from one read snapshot; the store listener is added first and events
up to the snapshot's ``seq`` are skipped, so no commit is lost or applied twice. The
event goes through the log like any other (a ``seq``, replay with ``since``), written
without waiting for a lock another process holds: a refused write is tried again a
second later with the curve as it is then.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any

import trio

from perpd.errors import Unavailable
from perpd.funding_curve import CurveBook, Point
from perpd.markets import MARKETS
from perpd.records import Event
from perpd.store import queries as q
from perpd.store.history import curve_snapshot
from perpd.venue import Venue

log = logging.getLogger(__name__)

EVENT = "funding_curve"
MIN_INTERVAL_S = 1.0  # per market, between two funding_curve events


class FundingCurve:
    def __init__(
        self, venue: Venue, *, min_interval_s: float = MIN_INTERVAL_S, publish: bool = True
    ) -> None:
        self.venue = venue
        self.book = CurveBook()
        self.min_interval_s = min_interval_s
        self.publish_events = publish  # False: keep the book (GET /markets), send nothing
        self._buffer: list[Event] | None = []  # commits seen before the snapshot
        self._dirty: set[str] = set()
        self._moved = trio.Event()
        self._sent: dict[str, list[Point]] = {}
        self._last_sent_at: dict[str, float] = {}  # trio.current_time() of the last event
        self.events_sent = 0

    def curve(self, market: str) -> list[Point]:
        """``market``'s curve now (what ``GET /markets`` shows)."""
        return self.book.curve(market, self.venue.clock())

    def _committed(self, events: list[Event]) -> None:
        """Store listener (trio thread, after COMMIT): never blocks, never raises."""
        if self._buffer is not None:
            self._buffer.extend(events)
            return
        moved = self.book.apply(e for e in events if e.type != EVENT)
        if moved and self.publish_events:
            self._dirty |= moved
            self._moved.set()

    async def start(self) -> None:
        self.venue.store.add_listener(self._committed)
        snap = await self.venue.read(partial(curve_snapshot, now=self.venue.clock()))
        self.book.load(snap)
        buffered, self._buffer = self._buffer or [], None
        self._committed(buffered)
        self._dirty.clear()  # a restart is not a move: announce changes from here on
        for market in MARKETS:
            self._sent[market] = self.curve(market)

    def _due(self, now: float) -> tuple[list[str], float]:
        """Dirty markets that may send now, and how long until the next one may."""
        ready, wait = [], math.inf
        for market in sorted(self._dirty):
            left = self._last_sent_at.get(market, -math.inf) + self.min_interval_s - now
            if left <= 0:
                ready.append(market)
            else:
                wait = min(wait, left)
        return ready, wait

    async def publish(self, markets: list[str]) -> None:
        """One unit: a ``funding_curve`` event for each of ``markets`` whose curve differs
        from the one last sent."""
        changed = {m: c for m in markets if (c := self.curve(m)) != self._sent.get(m)}
        self._dirty -= set(markets)
        if not changed:
            return

        def unit(conn: Any, ctx: Any) -> None:
            for market, points in changed.items():
                data = {"market": market, "funding_curve": points}
                q.append_event(conn, ctx.ts, EVENT, data, market=market, public=True)

        try:
            await self.venue.mutate(unit, wait=False)
        except Unavailable as exc:
            log.warning("funding_curve event not written (%s); trying again", exc.message)
            self._dirty |= set(changed)
            self._moved.set()
            await trio.sleep(self.min_interval_s)
            return
        now = trio.current_time()
        for market, points in changed.items():
            self._sent[market] = points
            self._last_sent_at[market] = now
        self.events_sent += len(changed)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.start()
        task_status.started()
        while True:
            await self._moved.wait()
            self._moved = trio.Event()
            while self._dirty:
                ready, wait = self._due(trio.current_time())
                if ready:
                    await self.publish(ready)
                else:
                    await trio.sleep(wait)

    def statistics(self) -> dict[str, int]:
        return {"events_sent": self.events_sent, "seq": self.book.seq}


async def run(
    service: FundingCurve, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The service: follow the commits and announce curve moves until cancelled."""
    await service.run(task_status=task_status)
