"""The router's door: refusals decided from the ASGI scope alone, before Quart runs.

A caller already past one of its rates is refused here with a pre-built 429, for a
fraction of what the same refusal costs once Quart has built a request context, routed
and run its hooks: an address flooding the daemon gets its answer cheaply, and the
exact accounting still happens later for the calls that pass (`perpd.api._limits`).

- HTTP: the address's bucket, then the agent's bucket for a call naming one in
  ``X-Agent-Id`` (only looked at: it is charged once the signature verifies, so a
  forged call still cannot drain a victim's bucket), else the address's bucket for
  unsigned calls. Nothing is taken here.
- WebSocket handshakes: one token per handshake from the address's socket bucket
  (sockets are long-lived: an honest agent opens one per session); past it the
  upgrade is answered 429 and no socket is opened.
"""

from __future__ import annotations

import json
from typing import Any

from perpd.ratelimit import Limiter, address_key, retry_after

Scope = dict[str, Any]


def _body(message: str) -> bytes:
    return json.dumps({"error": {"code": "rate_limited", "message": message}}).encode()


class Door:
    """ASGI middleware in front of the Quart app (``app.asgi_app``)."""

    def __init__(self, app: Any, limiter: Limiter) -> None:
        self.app = app
        self.limiter = limiter
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        refusal = None
        if scope["type"] == "http" and not scope["path"].startswith("/dev/"):
            refusal = self._http(scope)
        elif scope["type"] == "websocket":
            refusal = self._socket(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        self.refused += 1
        message, wait = refusal
        body = _body(message)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after(wait)).encode()),
        ]
        kind = "http" if scope["type"] == "http" else "websocket.http"
        await self.limiter.tarpit.hold()
        await send({"type": f"{kind}.response.start", "status": 429, "headers": headers})
        await send({"type": f"{kind}.response.body", "body": body, "more_body": False})

    def _http(self, scope: Scope) -> tuple[str, float] | None:
        lim, key = self.limiter, _address(scope)
        if wait := lim.address.peek(key):
            return f"too many calls from this address; retry in {retry_after(wait)} s", wait
        agent = _header(scope, b"x-agent-id")
        if agent is not None:
            if wait := lim.agent.peek(agent):
                return f"too many calls by agent {agent[:8]}…; retry in {retry_after(wait)} s", wait
        elif wait := lim.public.peek(key):
            return f"too many calls from this address; retry in {retry_after(wait)} s", wait
        return None

    def _socket(self, scope: Scope) -> tuple[str, float] | None:
        if wait := self.limiter.socket.take(_address(scope)):
            return (
                f"too many new sockets from this address; retry in {retry_after(wait)} s",
                wait,
            )
        return None

    def statistics(self) -> dict[str, int]:
        return {"refused": self.refused}


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return address_key(client[0] if client else None)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))[:64]
    return None
