"""The shared objects every route works with, given once when the app is made.

The daemon builds them and hands them to `perpd.api.create_app`, which keeps them in one
frozen `Services` on the app (hypercorn's ``WorkerContext`` is the model); a route reads
them through `services()`, typed, never by a string key.
"""

from __future__ import annotations

from dataclasses import dataclass

import trio
from quart import current_app
from quart_trio import QuartTrio

from perpd.cancel_on_disconnect import CancelOnDisconnect
from perpd.funding_curve import CurveBook
from perpd.hub import Hub
from perpd.metrics import Metrics
from perpd.ratelimit import Limiter
from perpd.socket_limits import PublicGate, SocketGate
from perpd.venue import Venue


@dataclass(frozen=True)
class Services:
    venue: Venue
    hub: Hub
    shutdown: trio.Event  # the daemon's stop signal: open sockets close with 1001 on it
    limiter: Limiter
    sockets: SocketGate  # /ws
    public_sockets: PublicGate  # /ws/public
    cancel_on_disconnect: CancelOnDisconnect
    metrics: Metrics
    pages: tuple[int, int]  # default and maximum page size of the lists
    curves: CurveBook | None  # the funding curves GET /markets shows (kept by its service)


class PerpdApp(QuartTrio):
    """The quart-trio app of one daemon, carrying its `Services`."""

    def __init__(self, services: Services) -> None:
        super().__init__("perpd")
        self.services = services


def services() -> Services:
    """The serving app's shared objects (inside a request or a WebSocket)."""
    app = current_app
    if not isinstance(app, PerpdApp):  # only create_app's app mounts perpd's routes
        raise RuntimeError("perpd's routes run only in the app made by create_app")
    return app.services
