"""Every request's body is received before the app can answer it.

hypercorn 0.18's HTTP/1.1 protocol recycles a keep-alive connection only if the client
has finished sending when the response ends; a response sent before the body's last
bytes arrived (an automatic ``OPTIONS``, a 404 or 405, a ``GET`` that carries a body,
the door's 429, anything refused before the body is read) left the connection stuck: it
was neither recycled nor closed, so the client's next request on it waited for its own
timeout (30 s in schemathesis' coverage phase; an agent retrying a 429 would wait the
same). Reading the body first (at most ``limit`` bytes; our routes take no more) makes
the client's side done before any response starts. A body past ``limit`` is left for
the app to refuse (413), and that response closes the connection, so nothing is left
half-read on a connection that could be reused.
"""

from __future__ import annotations

from typing import Any

Message = dict[str, Any]


class WholeBody:
    """ASGI middleware: HTTP bodies are read whole (up to ``limit``) before ``app`` runs."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        early: Message | None = None  # a disconnect seen while reading
        whole = False
        while size <= self.limit:
            message = await receive()
            if message["type"] != "http.request":
                early = message
                break
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                whole = True
                break
        replay: list[Message] = [
            {"type": "http.request", "body": b"".join(chunks), "more_body": not whole}
        ]
        if early is not None:
            replay.append(early)

        async def replayed() -> Message:
            return replay.pop(0) if replay else await receive()

        if whole:
            await self.app(scope, replayed, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, replayed, closing)
