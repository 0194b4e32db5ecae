"""The event hub's service: hands each commit's events to `perpd.hub.Hub`, in ``seq`` order."""

from __future__ import annotations

import trio

from perpd.hub import Hub


async def run(hub: Hub, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Dispatch committed events to WebSocket sessions until cancelled (safe to cancel:
    what is not yet taken stays in the hub's inbox)."""
    task_status.started()
    while True:
        hub.dispatch(await hub.wait_committed())
