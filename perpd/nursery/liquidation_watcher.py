"""The liquidation watcher: on every oracle update (and at least every second) it finds
the positions the new price may liquidate, through the per-position price bounds in the
store's index (not a scan of every position), and liquidates as the protocol's keeper
what no agent has liquidated within a grace period. The keeper's reward goes to the fee
account. With no usable price, liquidation waits (SPEC §5). A busy or full database
pauses it (retried with backoff, logged); a position whose liquidation fails on a bug is
logged, counted and skipped for a while (`Quarantine`): one bad position never stops
the keeper or the venue.
"""

from __future__ import annotations

import logging
from functools import partial

import trio

from perpd import custody, engine, money
from perpd.errors import ApiError, Unavailable
from perpd.records import Position
from perpd.retry import Backoff, Quarantine
from perpd.store import queries as q
from perpd.venue import Venue

log = logging.getLogger(__name__)

MAX_WAIT_S = 1.0


class Watcher:
    def __init__(self, venue: Venue, *, keeper: bool, grace_s: float) -> None:
        self.venue = venue
        self.keeper = keeper
        self.grace_s = grace_s
        self._first_seen: dict[str, float] = {}  # position -> trio time found liquidatable
        self.liquidations = 0
        self.checks = 0
        self.backoff = Backoff("liquidation watcher")
        self.quarantine = Quarantine("keeper liquidation")

    async def liquidatable(self) -> list[Position]:
        """Open positions under maintenance at the current usable prices."""
        found = []
        candidates: set[str] = set()
        for market in self.venue.book.markets:
            price = self.venue.mark_price(market)
            if price is None:
                continue
            rows = await self.venue.read(
                partial(q.liquidation_candidates, market=market, price=price)
            )
            candidates |= {p.position_id for p in rows}
            found += [p for p in rows if self._under(p, price)]
        self.quarantine.keep_only(candidates)
        return found

    def _under(self, p: Position, price: int) -> bool:
        if self.quarantine.blocked(p.position_id):
            return False
        try:
            return money.liquidatable_side(p.state, price) is not None
        except Exception as exc:  # one bad record must not blind the keeper to the rest
            self.quarantine.fail(p.position_id, exc)
            return False

    async def check(self) -> None:
        """One pass: note what is liquidatable; liquidate what has waited out its grace."""
        self.checks += 1
        found = await self.liquidatable()
        now = trio.current_time()
        ids = {p.position_id for p in found}
        self._first_seen = {k: t for k, t in self._first_seen.items() if k in ids}
        for p in found:
            since = self._first_seen.setdefault(p.position_id, now)
            if self.keeper and now - since >= self.grace_s:
                await self._liquidate(p.position_id)

    async def _liquidate(self, position_id: str) -> None:
        try:
            if self.venue.submitter is not None:  # through the program; reward to the fees
                await self.venue.submitter.submit(
                    lambda conn, ctx: custody.ask_liquidate(
                        conn, ctx, liquidator=engine.KEEPER, position_id=position_id
                    )
                )
            else:
                await self.venue.mutate(
                    lambda conn, ctx: engine.liquidate(
                        conn, ctx, liquidator=engine.KEEPER, position_id=position_id
                    ),
                    urgent=True,
                    wait=False,
                )
        except Unavailable:
            raise  # the database, not the position: the whole pass backs off
        except ApiError as exc:  # an agent was quicker, or the price moved back
            log.info("keeper skipped %s: %s", position_id, exc.message)
            return
        except Exception as exc:  # a bug on this position: log, count, skip it for a while
            self.quarantine.fail(position_id, exc)
            return
        self.quarantine.succeeded(position_id)
        self.liquidations += 1
        self._first_seen.pop(position_id, None)
        log.info("keeper liquidated %s", position_id)

    def statistics(self) -> dict[str, int]:
        return {
            "checks": self.checks,
            "liquidations": self.liquidations,
            "pending": len(self._first_seen),
            "db_retries": self.backoff.retries,
            "failures": self.quarantine.failures,
            "quarantined": len(self.quarantine),
        }


async def run(
    watcher: Watcher, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Check after every price update and at least every second, forever."""
    book = watcher.venue.book
    seen = book.version
    task_status.started()
    while True:
        with trio.move_on_after(MAX_WAIT_S):
            seen = await book.wait_update(seen)
        await watcher.backoff.call(watcher.check)
