"""The HTTP/WebSocket router service: hypercorn's trio `serve` over the quart-trio app."""

from __future__ import annotations

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio


async def run(
    app: QuartTrio,
    *,
    host: str,
    port: int,
    shutdown: trio.Event,
    graceful_timeout_s: float = 5.0,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown`` is set, then let in-flight requests finish (bounded).

    ``task_status.started`` receives the bound addresses (port 0 picks a free port).
    """
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout_s
    config.accesslog = None
    config.errorlog = "-"
    config.keep_alive_timeout = 75
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
