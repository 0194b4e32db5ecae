"""The pruner: deletes finished requests and quotes once their retention has passed.

Requests end filled or expired and quotes accepted, rejected or expired; after
``retention_s`` past their deadline nothing reads them any more (positions carry their
terms, the event log keeps every request and quote as it was announced), so the rows
go, in batches of ``batch`` rows per unit of work at normal priority: order flow
queued meanwhile runs between two batches. Events are never pruned: they are the log.
"""

from __future__ import annotations

from functools import partial

import trio

from perpd import engine
from perpd.venue import Venue


class Pruner:
    def __init__(
        self,
        venue: Venue,
        *,
        retention_s: int,
        interval_s: float,
        batch: int,
        client_id_retention_s: int | None = None,
    ) -> None:
        if retention_s < 0 or interval_s <= 0 or batch < 1:
            raise ValueError("retention >= 0, interval > 0 and batch >= 1 are required")
        self.venue = venue
        self.retention_s = retention_s
        # client ids (issue 13) outlive their rows: a retry must find its first answer
        self.client_id_retention_s = client_id_retention_s
        self.interval_s = interval_s
        self.batch = batch
        self.deleted = 0
        self.units = 0

    async def prune(self) -> int:
        """One pass: batches until one comes back short; returns the rows deleted."""
        unit = partial(
            engine.prune_finished,
            retention_s=self.retention_s,
            limit=self.batch,
            client_id_retention_s=self.client_id_retention_s,
        )
        total = 0
        while True:
            n = await self.venue.mutate(unit)
            self.units += 1
            total += n
            if n < self.batch:
                break
        self.deleted += total
        return total

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(self.interval_s)
            await self.prune()

    def statistics(self) -> dict[str, int]:
        return {"deleted": self.deleted, "units": self.units}


async def run(
    pruner: Pruner, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """The service: prune every ``interval_s`` until cancelled."""
    await pruner.run(task_status=task_status)
