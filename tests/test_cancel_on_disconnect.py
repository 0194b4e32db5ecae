"""Issue 13: cancel-on-disconnect. A socket that subscribes with it takes the agent's
live quotes down with it: when the agent's last such socket is killed, closes, goes
silent past its heartbeat or is cut off as too slow, every live quote is cancelled at
once (one unit of work), within a second."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import ConnectionClosed, wrap_client_stream

from tests.conftest import Agent, Server, base_config, start_server
from tests.quote_flow import REQUEST, live_quotes, open_request, quote, setup, status_of
from tests.wsclient import Ws, auth_message, connect


@asynccontextmanager
async def killable(s: Server, agent: Agent, **subscribe: Any) -> AsyncIterator[tuple[Ws, Any]]:
    """A logged-in, subscribed socket and its TCP stream, which the test may close
    without a closing handshake, as a killed process's kernel does."""
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with trio.open_nursery() as nursery:
        conn = await wrap_client_stream(nursery, stream, host, "/ws")
        ws = Ws(conn, agent)
        await ws.send(auth_message(agent))
        assert (await ws.recv())["type"] == "auth_ok"
        await ws.send({"type": "subscribe", "markets": ["BTC-PERP"], **subscribe})
        try:
            yield ws, stream
        finally:
            nursery.cancel_scope.cancel()
            await stream.aclose()


async def _socket_quotes(ws: Ws, request_ids: list[str]) -> list[str]:
    ids = []
    for rid in request_ids:
        body = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
        await ws.send({"type": "quote", **body})
        ids.append((await ws.until("quote_ack"))["quote_id"])
    return ids


async def _all_cancelled_within(s: Server, quote_ids: list[str], seconds: float) -> float:
    """How long until every quote is cancelled; fails past ``seconds``."""
    t0 = time.monotonic()
    with trio.fail_after(seconds):
        while {await status_of(s, q) for q in quote_ids} != {"cancelled"}:  # noqa: ASYNC110
            await trio.sleep(0.01)
    return time.monotonic() - t0


async def test_a_killed_socket_leaves_no_live_quote_within_a_second(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rids = [await open_request(requester) for _ in range(3)]
    async with connect(server.url, requester) as (rws, _):
        await rws.subscribe(["BTC-PERP"])
        async with killable(server, maker, cancel_on_disconnect=True) as (ws, stream):
            quotes = await _socket_quotes(ws, rids)
            assert {await status_of(server, q) for q in quotes} == {"live"}
            await stream.aclose()  # the process died: no close frame
            took = await _all_cancelled_within(server, quotes, 1.0)
        reasons = [(await rws.until("quote_cancelled"))["data"] for _ in quotes]
    assert {r["quote_id"] for r in reasons} == set(quotes)
    assert {r["reason"] for r in reasons} == {"disconnect"}
    for rid in rids:
        assert await live_quotes(server, rid) == set()
    assert took < 1.0
    await server.assert_balanced()


async def test_only_the_last_such_socket_cancels(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester)
    http_quote = await quote(maker, rid)  # every live quote of the agent goes, HTTP ones too
    async with killable(server, maker, cancel_on_disconnect=True) as (first, s1):
        async with killable(server, maker, cancel_on_disconnect=True) as (second, _):
            (sock_quote,) = await _socket_quotes(second, [rid])
            await s1.aclose()
            await trio.sleep(0.3)
            assert await live_quotes(server, rid) == {http_quote, sock_quote}
        await _all_cancelled_within(server, [http_quote, sock_quote], 1.0)


async def test_a_socket_without_it_leaves_quotes_live(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester)
    async with killable(server, maker) as (ws, stream):
        quotes = await _socket_quotes(ws, [rid])
        await stream.aclose()
    await trio.sleep(0.3)
    assert await live_quotes(server, rid) == set(quotes)


async def test_a_silent_socket_misses_its_heartbeat(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        s = await start_server(
            nursery, base_config(tmp_path, chain="none", ws_heartbeat_timeout_s=0.5)
        )
        requester, maker = await setup(s, 1)
        rid = await open_request(requester)
        async with killable(s, maker, cancel_on_disconnect=True) as (pinging, _):
            async with killable(s, maker, cancel_on_disconnect=True) as (silent, _):
                quotes = await _socket_quotes(silent, [rid])
                for _ in range(4):  # the pinging one stays; the silent one is closed
                    await pinging.send({"type": "ping"})
                    await pinging.until("pong")
                    await trio.sleep(0.2)
                try:
                    while True:
                        await silent.recv(2)
                except ConnectionClosed as closed:
                    assert closed.reason.code == 4002
            assert await live_quotes(s, rid) == set(quotes)  # the pinging socket guards them
        await _all_cancelled_within(s, quotes, 1.0)
        await s.http.aclose()
        s.shutdown.set()


async def test_bad_subscribe_flag_is_refused_and_changes_nothing(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester)
    qid = await quote(maker, rid)
    async with connect(server.url, maker) as (ws, _):
        msg = {"type": "subscribe", "markets": ["BTC-PERP"], "cancel_on_disconnect": "yes"}
        await ws.conn.send_message(json.dumps(msg))
        assert (await ws.until("error"))["error"]["code"] == "invalid_request"
        await ws.send({"type": "ping"})
        await ws.until("pong")
    await trio.sleep(0.2)
    assert await live_quotes(server, rid) == {qid}


async def test_a_socket_cut_off_as_too_slow_cancels(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: Any
) -> None:
    """As tests/test_ws.py's slow client (a queue of 4, off chain): the guarded socket
    never reads, is closed with 4001, and its agent's quotes go with it."""
    import perpd.hub

    s = await start_server(nursery, base_config(tmp_path, chain="none"))
    requester, maker, *flooders = await setup(s, 5)
    rid = await open_request(requester)
    monkeypatch.setattr(perpd.hub, "QUEUE_SIZE", 4)
    async with killable(s, maker, cancel_on_disconnect=True) as (ws, _):
        (qid,) = await _socket_quotes(ws, [rid])
        for i in range(400):
            await flooders[i % 4].ok("/trade/request", {**REQUEST, "size_usdc": "10"}, 201)
        with trio.fail_after(5):
            try:
                while True:
                    await ws.conn.get_message()
            except ConnectionClosed as closed:
                assert closed.reason.code == 4001
        await _all_cancelled_within(s, [qid], 1.0)
    await s.http.aclose()
    s.shutdown.set()
