"""The simulated oracle's service: ticks `perpd.sim_feed.SimulatedFeed` on the daemon's clock."""

from __future__ import annotations

import trio

from perpd.sim_feed import SimulatedFeed


async def run(
    feed: SimulatedFeed,
    interval_s: float = 1.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Tick ``feed`` every ``interval_s`` forever; ready once every market has a price."""
    feed.tick()
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        feed.tick()
