"""The earliest request or quote deadline the daemon knows (SPEC §3), kept from the commits.

The ``trade_request`` and ``quote`` events carry ``expires_at``: `Deadlines` keeps the
earliest one seen (a store listener, so no database read per commit) and wakes whoever
waits for an earlier one. What is done when one passes is the expiry timer's
(`perpd.nursery.expiry`), which also tells it what the database holds after each pass.
"""

from __future__ import annotations

import trio

from perpd.records import Event

DEADLINE_EVENTS = ("trade_request", "quote")


class Deadlines:
    def __init__(self) -> None:
        self.earliest: int | None = None  # earliest live deadline known
        self._earlier = trio.lowlevel.ParkingLot()

    def committed(self, events: list[Event]) -> None:
        """Store listener (after COMMIT): learn the deadlines ``events`` carry; never blocks."""
        for e in events:
            if e.type in DEADLINE_EVENTS:
                self.note(int(e.data["expires_at"]))

    def note(self, at: int | None) -> None:
        """Keep ``at`` if it is earlier than what is known, and wake the waiter."""
        if at is not None and (self.earliest is None or at < self.earliest):
            self.earliest = at
            self._earlier.unpark_all()

    def forget(self) -> None:
        """Before re-reading the database: what it answers, and what commits meanwhile,
        are both `note`d."""
        self.earliest = None

    def due(self, now: float) -> bool:
        return self.earliest is not None and now >= self.earliest

    def seconds_left(self, now: float, most: float) -> float:
        """How long to sleep: until the earliest deadline, at most ``most``."""
        if self.earliest is None:
            return most
        return min(most, max(0.0, self.earliest - now))

    async def wait_earlier(self) -> None:
        """Block until an earlier deadline is noted (safe to cancel: bound it with a
        deadline, as the timer does)."""
        await self._earlier.park()
