"""The HTTP/WebSocket router service: hypercorn's trio `serve` over the quart-trio app."""

from __future__ import annotations

import logging

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from quart_trio import QuartTrio

from perpd.http_limits import ConnectionGate, install

DEFAULT_MAX_CONNECTIONS = 4096
H11_MAX_INCOMPLETE = 16 * 1024  # request line and headers
H2_MAX_STREAMS = 32
H2_MAX_HEADERS = 16 * 1024


async def run(
    app: QuartTrio,
    *,
    host: str,
    port: int,
    shutdown: trio.Event,
    graceful_timeout_s: float = 5.0,
    ws_max_message: int = 16 * 1024,
    connections: ConnectionGate | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until ``shutdown`` is set, then let in-flight requests finish (bounded).

    ``task_status.started`` receives the bound addresses (port 0 picks a free port).
    A WebSocket message over ``ws_max_message`` bytes closes its socket with 1009
    before more than that is buffered; past the cap of ``connections`` a new TCP
    connection gets 503 (`perpd.http_limits`).
    """
    config = HypercornConfig()
    config.bind = [f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout_s
    config.accesslog = None
    # hypercorn's own messages go through the daemon's handlers (`perpd.logs`): a Logger
    # given here is used as is, where "-" would add a handler of its own format
    config.errorlog = logging.getLogger("hypercorn.error")
    config.keep_alive_timeout = 75
    config.websocket_max_message_size = ws_max_message
    config.h11_max_incomplete_size = H11_MAX_INCOMPLETE
    config.h2_max_concurrent_streams = H2_MAX_STREAMS
    config.h2_max_header_list_size = H2_MAX_HEADERS
    install(config, connections or ConnectionGate(DEFAULT_MAX_CONNECTIONS))
    await serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
