"""A minimal WebSocket test client (trio-websocket) speaking SPEC §6's /ws protocol."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_websocket import WebSocketConnection, wrap_client_stream

from perpd.auth import signing_message
from tests.conftest import Agent


class Ws:
    """A socket; logged in as ``agent``, its quotes carry the agent's consents."""

    def __init__(self, conn: WebSocketConnection, agent: Agent | None = None) -> None:
        self.conn = conn
        self.agent = agent

    async def send(self, msg: dict[str, Any]) -> None:
        consents = self.agent.consents if self.agent is not None else None
        paths = {"quote": "/trade/quote", "replace": "/trade/quote/replace"}
        if consents is not None and msg.get("type") in paths:
            assert self.agent is not None
            path = paths[msg["type"]]
            msg = await consents.sign(path, msg, self.agent.clock(), self.agent.read)
        await self.conn.send_message(json.dumps(msg))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        with trio.fail_after(timeout):
            return json.loads(await self.conn.get_message())  # type: ignore[no-any-return]

    async def until(self, type_: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next message of ``type_``, skipping others."""
        with trio.fail_after(timeout):
            while True:
                msg = await self.recv(timeout)
                if msg["type"] == type_:
                    return msg

    async def subscribe(self, markets: list[str], since: int | None = None) -> None:
        msg: dict[str, Any] = {"type": "subscribe", "markets": markets}
        if since is not None:
            msg["since"] = since
        await self.send(msg)


def auth_message(agent: Agent) -> dict[str, Any]:
    ts = agent.stamp()
    sig = agent.keypair.sign_message(signing_message(ts, "GET", "/ws", b""))
    return {"type": "auth", "agent_id": agent.id, "timestamp": ts, "signature": str(sig)}


@asynccontextmanager
async def raw_socket(url: str, path: str = "/ws") -> AsyncIterator[Ws]:
    """A socket to ``path`` whose TCP stream we close ourselves.

    trio-websocket 0.12 leaves the TCP socket open when the server closes first (its
    reader stops on EOF without closing the stream), so the test owns the stream.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    try:
        async with trio.open_nursery() as nursery:
            conn = await wrap_client_stream(nursery, stream, host, path)
            try:
                yield Ws(conn)
            finally:
                await conn.aclose()
    finally:
        await stream.aclose()


@asynccontextmanager
async def connect(url: str, agent: Agent) -> AsyncIterator[tuple[Ws, int]]:
    """An authenticated socket and the ``seq`` from ``auth_ok``."""
    async with raw_socket(url) as ws:
        ws.agent = agent
        await ws.send(auth_message(agent))
        ok = await ws.recv()
        assert ok["type"] == "auth_ok", ok
        yield ws, ok["seq"]
