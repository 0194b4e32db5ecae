"""One log line per HTTP request, outermost of the ASGI stack so that every answer is
logged, the door's refusals too: request id, method, route, status, duration; and
the same figures into the HTTP histograms of `perpd.metrics`.

The route is the URL rule Quart matched (``/positions/<position_id>``), set on the
scope by `note_route`; a request refused before routing logs its path's rule as
``-``. A caller's ``X-Request-Id`` (up to 64 of ``[A-Za-z0-9._-]``) is kept, else one
is made; either way the response carries it back. No header, query or body is logged.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, cast

from quart import request

from perpd.metrics import Metrics

log = logging.getLogger("perpd.http")
_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
ROUTE_KEY = "perpd.route"


def _request_id(scope: dict[str, Any]) -> bytes:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _REQUEST_ID.fullmatch(value):
            return bytes(value)
    return secrets.token_hex(8).encode()


async def note_route() -> None:
    """A before_request hook: the matched URL rule, for the access line."""
    rule = request.url_rule
    if rule is not None:
        cast(dict[str, Any], request.scope)[ROUTE_KEY] = rule.rule


class AccessLog:
    """ASGI middleware: wraps ``send`` to learn the status, logs when the response ends."""

    def __init__(self, app: Any, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        start = time.perf_counter()
        status = 0

        async def tagged(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = message | {
                    "headers": [*message.get("headers", ()), (b"x-request-id", rid)]
                }
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            seconds = time.perf_counter() - start
            route = scope.get(ROUTE_KEY, "-")
            if self.metrics is not None:
                self.metrics.observe_http(scope["method"], route, status, seconds)
            if log.isEnabledFor(logging.INFO):
                self._line(scope["method"], route, rid, status, seconds)

    @staticmethod
    def _line(method: str, route: str, rid: bytes, status: int, seconds: float) -> None:
        log.info(
            "http",
            extra={
                "request_id": rid.decode(),
                "method": method,
                "route": route,
                "status": status,  # 0: the client went away before an answer
                "duration_ms": round(seconds * 1000, 3),
            },
        )
