"""The daemon's one clock: wall time (unix seconds) for the venue's rules, injected.

`perpd.daemon.run` takes it and hands it explicitly to everything that reads the time:
the `Venue` (units of work, the funding scheduler, the expiry timer and the pruner read
it there), the price book, the chain pins and the simulated feed. The services wait on
trio's clock (``trio.sleep``, ``move_on_after``) and measure grace periods on it, so a
wall clock that follows trio's (`TrioClock`) runs every timer under trio's
``MockClock(autojump_threshold=0)``: wall time moves exactly as far as trio's clock jumps.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import trio

Clock = Callable[[], float]  # unix seconds now


def system() -> float:
    """The machine's wall clock: the daemon's clock in production."""
    return time.time()


class TrioClock:
    """Wall time that is ``epoch`` now and advances with the running trio's clock (a
    ``MockClock`` in tests), plus any `advance` (a jump, as a suspended VM makes).

    Made inside ``trio.run``; read from any thread (units of work read the time on the
    writer thread), which is why it holds trio's clock object, not `trio.current_time`."""

    def __init__(self, epoch: float) -> None:
        self._trio = trio.lowlevel.current_clock()
        self.offset = epoch - self._trio.current_time()

    def __call__(self) -> float:
        return self.offset + self._trio.current_time()

    def advance(self, seconds: float) -> None:
        self.offset += seconds
