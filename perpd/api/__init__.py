"""The HTTP API (SPEC §6) as a quart-trio app bound to one `Venue`."""

from __future__ import annotations

from typing import Any

import trio
from quart import jsonify
from werkzeug.exceptions import HTTPException

from perpd.api import (
    _chain_txs,
    _dev,
    _history,
    _limits,
    _public_ws,
    _quote_controls,
    _reads,
    _trade,
    _ws,
)
from perpd.api._access_log import AccessLog, note_route
from perpd.api._chain import chain_blueprint
from perpd.api._common import MAX_BODY, error_response, http_error_response
from perpd.api._door import Door
from perpd.api._openapi import document
from perpd.api._services import PerpdApp, Services
from perpd.api._whole_body import WholeBody
from perpd.cancel_on_disconnect import CancelOnDisconnect
from perpd.chain._backend import Chain
from perpd.errors import ApiError
from perpd.funding_curve import CurveBook
from perpd.hub import Hub
from perpd.metrics import Metrics
from perpd.ratelimit import Limiter
from perpd.socket_limits import PublicGate, PublicLimits, SocketGate, SocketLimits
from perpd.venue import Venue
from perpd.web import bp as web_bp

__all__ = ["create_app"]


def create_app(
    venue: Venue,
    *,
    hub: Hub,
    shutdown: trio.Event,
    dev: bool = False,
    limiter: Limiter | None = None,
    pages: tuple[int, int] = (100, 500),
    sockets: SocketGate | None = None,
    chain: Chain | None = None,
    metrics: Metrics | None = None,
    curves: CurveBook | None = None,
) -> PerpdApp:
    """The router. ``dev`` adds ``/dev/*``; without it those paths are 404.

    ``limiter`` holds the rate limits (default ones if None); ``pages`` is the default
    and the maximum page size of the lists.

    ``shutdown`` is the daemon's stop signal: open WebSockets close with 1001 on it
    (hypercorn's trio server does not close them itself). ``sockets`` caps them.
    ``chain`` is the escrow's chain (None: ``--chain none``), shown by ``GET /chain``.
    ``metrics`` (a fresh `Metrics` if None) is what ``GET /metrics`` shows; ``curves``
    the funding curves ``GET /markets`` shows (none if None). The routes read all of
    them through `perpd.api._services.services`.
    """
    limiter = limiter or Limiter()
    if metrics is None:
        metrics = Metrics()
        metrics.start_at(venue.store.last_seq)
    public = PublicGate(PublicLimits())  # web branch (issue 15): the public stream's cap
    venue.services.setdefault("public_sockets", public)  # /metrics: open, refused
    app = PerpdApp(
        Services(
            venue=venue,
            hub=hub,
            shutdown=shutdown,
            limiter=limiter,
            sockets=sockets or SocketGate(SocketLimits()),
            public_sockets=public,
            cancel_on_disconnect=CancelOnDisconnect(),
            metrics=metrics,
            pages=pages,
            curves=curves,
        )
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["JSON_SORT_KEYS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.register_blueprint(_trade.bp)
    app.register_blueprint(_quote_controls.bp)
    app.register_blueprint(_reads.bp)
    app.register_blueprint(_ws.bp)
    app.register_blueprint(_history.bp)
    app.register_blueprint(chain_blueprint(chain))
    if dev:
        app.register_blueprint(_dev.bp)
    app.before_request(note_route)
    app.before_request(_limits.limit_address)
    # web branch (issue 15): the public stream, chain transactions, the live page (after
    # the limits above, so its routes are counted and limited like any other)
    app.register_blueprint(_public_ws.bp)
    app.register_blueprint(_chain_txs.bp)
    app.register_blueprint(web_bp)
    door = Door(app.asgi_app, limiter)
    app.asgi_app = AccessLog(WholeBody(door, MAX_BODY), metrics)  # type: ignore[method-assign,assignment]
    venue.services.setdefault("door", door)
    app.register_error_handler(ApiError, error_response)
    app.register_error_handler(HTTPException, http_error_response)

    @app.get("/openapi.json")
    async def openapi() -> Any:
        return jsonify(document(dev=dev))

    return app
