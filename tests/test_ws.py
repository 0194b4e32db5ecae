"""The WebSocket over a real socket: lifecycle, resume with ``since``, slow clients, close codes."""

from __future__ import annotations

from pathlib import Path

import trio
from trio_websocket import ConnectionClosed

from tests.conftest import Agent, Server, base_config, start_server
from tests.wsclient import auth_message, connect, raw_socket

# Issue 10: these run on the in-process chain by default; every assert_balanced reads
# the money back from the SVM (PERPD_TEST_CHAIN=none runs them off-chain).
CHAIN = "local"

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


async def test_two_makers_and_a_requester_trade_over_sockets(server: Server) -> None:
    requester, mm1, mm2 = server.agent(), server.agent(), server.agent()
    for a in (requester, mm1, mm2):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")
    async with (
        connect(server.url, requester) as (rws, _),
        connect(server.url, mm1) as (ws1, _),
        connect(server.url, mm2) as (ws2, _),
    ):
        for ws in (rws, ws1, ws2):
            await ws.subscribe(["BTC-PERP"])
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]

        quote_ids = {}
        for ws, rate in ((ws1, "0.0008"), (ws2, "0.0004")):
            tr = await ws.until("trade_request")
            assert tr["data"]["request_id"] == rid and tr["data"]["size_usdc"] == "1000.000000"
            await ws.send(
                {
                    "type": "quote",
                    "request_id": rid,
                    "funding_rate": rate,
                    "collateral_usdc": "100",
                    "client_id": rate,
                }
            )
            ack = await ws.until("quote_ack")
            assert ack["client_id"] == rate
            quote_ids[rate] = ack["quote_id"]

        seen = [await rws.until("quote"), await rws.until("quote")]
        assert {m["data"]["quote_id"] for m in seen} == set(quote_ids.values())
        best = min(seen, key=lambda m: m["data"]["funding_rate"])["data"]["quote_id"]
        assert best == quote_ids["0.0004"]
        await requester.ok("/trade/accept", {"request_id": rid, "quote_id": best})

        accepted = await ws2.until("quote_accepted")
        rejected = await ws1.until("quote_rejected")
        assert accepted["data"]["quote_id"] == best
        assert rejected["data"]["quote_id"] == quote_ids["0.0008"]
        opened_r = await rws.until("position_opened")
        opened_m = await ws2.until("position_opened")
        assert opened_r["seq"] == opened_m["seq"]
        assert opened_r["data"]["maker"] == mm2.id

        # bad quote over the socket: an error message, and the socket stays usable
        await ws1.send(
            {"type": "quote", "request_id": rid, "funding_rate": "0.0001", "collateral_usdc": "100"}
        )
        err = await ws1.until("error")
        assert err["error"]["code"] == "request_filled"
        await ws1.send({"type": "ping"})
        assert (await ws1.until("pong"))["type"] == "pong"
    await server.assert_balanced()  # with a chain: the mirror read back from the SVM


async def test_private_events_are_not_broadcast(server: Server) -> None:
    requester, maker, stranger = server.agent(), server.agent(), server.agent()
    for a in (requester, maker):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")
    async with connect(server.url, stranger) as (ws, _):
        await ws.subscribe(["BTC-PERP"])
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        await maker.ok(
            "/trade/quote",
            {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"},
            201,
        )
        rid2 = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        got = [await ws.until("trade_request"), await ws.until("trade_request")]
        assert [m["data"]["request_id"] for m in got] == [rid, rid2]
        assert got[1]["seq"] == got[0]["seq"] + 2  # the quote between them was not sent
    events = (await stranger.get("/events?since=0")).json()["events"]
    assert [e["type"] for e in events] == ["trade_request", "trade_request"]


async def test_resume_with_since_gets_every_missed_event_once(server: Server) -> None:
    requester, maker = server.agent(), server.agent()
    await requester.fund("100000")
    await maker.fund("100000")
    await server.pin("BTC-PERP", "50000")
    received: list[int] = []
    async with connect(server.url, maker) as (ws, start):
        await ws.subscribe(["BTC-PERP"], since=start)
        for _ in range(3):
            await requester.ok("/trade/request", REQUEST, 201)
        for _ in range(3):
            received.append((await ws.until("trade_request"))["seq"])
    # disconnected: the market moves on
    missed = [(await requester.ok("/trade/request", REQUEST, 201))["request_id"] for _ in range(5)]
    async with connect(server.url, maker) as (ws, _):
        await ws.subscribe(["BTC-PERP"], since=received[-1])
        # and live events keep coming while it replays
        live = [
            (await requester.ok("/trade/request", REQUEST, 201))["request_id"] for _ in range(2)
        ]
        msgs = [await ws.until("trade_request") for _ in range(7)]
        ids = [m["data"]["request_id"] for m in msgs]
        assert ids == missed + live
        seqs = received + [m["seq"] for m in msgs]
        assert seqs == sorted(set(seqs))
        with trio.move_on_after(0.3):
            extra = await ws.recv()
            raise AssertionError(f"duplicate or unexpected message {extra}")


async def test_auth_failures_close_the_socket(server: Server) -> None:
    agent = server.agent()
    async with raw_socket(server.url) as ws:
        bad = auth_message(agent)
        bad["signature"] = auth_message(server.agent())["signature"]
        await ws.send(bad)
        msg = await ws.recv()
        assert msg["error"]["code"] == "unauthorized"
        with trio.fail_after(5):
            try:
                await ws.conn.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 1008


async def test_slow_client_is_cut_off_and_others_are_not(
    tmp_path: Path, nursery: trio.Nursery, monkeypatch: object
) -> None:
    """Off-chain on purpose: this measures the hub's queue against loopback TCP buffers.
    With a chain each trade_request carries its consent, nonce and hash (about twice the
    bytes), the never-reading socket's buffers fill before the queue of 4 overflows, and
    the 4001 close frame finds no room (the client sees 1006): a test of buffer sizes."""
    import perpd.hub

    server = await start_server(nursery, base_config(tmp_path, chain="none"))

    requesters = [server.agent() for _ in range(5)]  # within the cap on open requests each
    for requester in requesters:
        await requester.fund("1000000")
    await server.pin("BTC-PERP", "50000")
    slow, fast = server.agent(), server.agent()
    monkeypatch.setattr(perpd.hub, "QUEUE_SIZE", 4)
    async with connect(server.url, slow) as (sws, _), connect(server.url, fast) as (fws, _):
        await sws.subscribe(["BTC-PERP"])
        await fws.subscribe(["BTC-PERP"])
        await trio.sleep(0.1)
        n = 400
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                for _ in range(n):
                    await fws.until("trade_request")

            nursery.start_soon(reader)
            for i in range(n):
                await requesters[i % 5].ok("/trade/request", {**REQUEST, "size_usdc": "10"}, 201)
        # the slow one never read: its queue overflowed and it was closed with 4001
        with trio.fail_after(5):
            try:
                while True:
                    await sws.conn.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 4001
                assert "since=" in (exc.reason.reason or "")
    await server.http.aclose()
    server.shutdown.set()


async def test_shutdown_closes_sockets_with_1001(tmp_path: Path, nursery: trio.Nursery) -> None:
    s = await start_server(nursery, base_config(tmp_path))
    agent = s.agent()
    async with connect(s.url, agent) as (ws, _):
        await ws.subscribe(["ETH-PERP"])
        await trio.sleep(0.1)
        s.shutdown.set()
        with trio.fail_after(5):
            try:
                while True:
                    await ws.conn.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 1001
    await s.http.aclose()


async def test_subscribing_mid_stream_under_concurrent_writers(server: Server) -> None:
    """Catch-up from the database racing live dispatch: every event once, in seq order."""
    await server.pin("BTC-PERP", "50000")
    writers = [server.agent() for _ in range(6)]
    for w in writers:
        await w.fund("100000")
    observer = server.agent()
    got: list[int] = []

    async def write(agent: Agent) -> None:
        for _ in range(15):
            await agent.ok("/trade/request", REQUEST, 201)

    async with trio.open_nursery() as nursery:
        for w in writers:
            nursery.start_soon(write, w)
        await trio.sleep(0.05)  # some events are in the log before the observer subscribes
        async with connect(server.url, observer) as (ws, _):
            await ws.subscribe(["BTC-PERP"], since=0)
            while len(got) < 6 * 15:
                got.append((await ws.until("trade_request"))["seq"])
    logged = [e["seq"] for e in (await observer.get("/events?since=0")).json()["events"]]
    assert got == logged  # all of them, each once, in order
    assert len(got) == 90


async def test_metrics_show_the_services(server: Server) -> None:
    agent = server.agent()
    async with connect(server.url, agent) as (ws, _):
        await ws.subscribe(["BTC-PERP"])
        await trio.sleep(0.1)
        text = (await server.http.get("/metrics")).text
    assert "perpd_hub_sessions 1" in text
    assert "perpd_watcher_checks" in text
    with trio.fail_after(5):  # the closed socket's session leaves the hub
        while True:
            if "perpd_hub_sessions 0" in (await server.http.get("/metrics")).text:
                break
            await trio.sleep(0.02)
    assert 'perpd_oracle_price{market="BTC-PERP"}' in text


async def test_dev_echo_answers_and_closes_with_1001(tmp_path: Path, nursery: trio.Nursery) -> None:
    s = await start_server(nursery, base_config(tmp_path))
    async with raw_socket(s.url, "/dev/echo") as ws:
        await ws.conn.send_message("hello")
        assert await ws.conn.get_message() == "hello"
        s.shutdown.set()
        with trio.fail_after(5):
            try:
                await ws.conn.get_message()
            except ConnectionClosed as exc:
                assert exc.reason.code == 1001
    await s.http.aclose()
