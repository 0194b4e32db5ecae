"""Issue 8, findings 1 and 2 over real sockets: a login is accepted once, sockets are
capped per agent, before login and in all, oversized frames are refused in the server
(1009) before they are buffered, TCP connections are capped."""

from __future__ import annotations

import base64
import os
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import trio
from solders.keypair import Keypair
from trio_websocket import ConnectionClosed, ConnectionRejected

from bench._daemon import daemon_process, rss_kb
from tests.conftest import Clock, Server, base_config, chain_of, make_agent, start_server
from tests.test_bad_input_http import REQUEST
from tests.wsclient import Ws, auth_message, connect, raw_socket


async def closed_with(ws: Ws, code: int) -> None:
    with trio.fail_after(5):
        try:
            while True:
                await ws.conn.get_message()
        except ConnectionClosed as exc:
            assert exc.reason.code == code, exc.reason


async def refused_login(url: str, login: dict[str, Any], code: str) -> str:
    """Send ``login`` on a new socket: an ``error`` with ``code``, then close 1008."""
    async with raw_socket(url) as ws:
        await ws.send(login)
        msg = await ws.recv()
        assert msg["type"] == "error" and msg["error"]["code"] == code, msg
        await closed_with(ws, 1008)
        return str(msg["error"]["message"])


async def metric(server: Server, name: str) -> int:
    for line in (await server.http.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise LookupError(name)


async def until_metric(server: Server, name: str, value: int) -> None:
    with trio.fail_after(5):
        while True:  # a closed socket leaves the count once its handler has finished
            if await metric(server, name) == value:
                return
            await trio.sleep(0.02)


# --- finding 1: single-use login, sockets per agent -----------------------------------------


async def test_a_login_opens_one_socket_only_even_after_a_restart(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    config = base_config(tmp_path)
    async with trio.open_nursery() as first:
        s = await start_server(first, config)
        victim = s.agent()
        login = auth_message(victim)
        async with raw_socket(s.url) as ws:
            await ws.send(login)
            assert (await ws.recv())["type"] == "auth_ok"
            # the captured login, replayed while the first socket is open
            assert "replay" in await refused_login(s.url, login, "unauthorized")
        assert "replay" in await refused_login(s.url, login, "unauthorized")  # and after it closed
        await s.http.aclose()
        s.shutdown.set()
    # the record is durable: recorded in the database before auth_ok was sent
    s2 = await start_server(nursery, config, s.clock)
    assert "replay" in await refused_login(s2.url, login, "unauthorized")
    async with connect(s2.url, victim):  # a fresh login still works
        pass
    await s2.http.aclose()
    s2.shutdown.set()


async def test_a_replayed_login_cannot_quote_as_its_agent(server: Server) -> None:
    """The issue's attack: the attacker replays the victim's login to quote on its own request."""
    attacker, victim = server.agent(), server.agent()
    for a in (attacker, victim):
        await a.fund("100000")
    await server.pin("BTC-PERP", "50000")
    rid = (await attacker.ok("/trade/request", REQUEST, 201))["request_id"]
    login = auth_message(victim)
    async with raw_socket(server.url) as own:  # the victim's session, whose login leaked
        await own.send(login)
        assert (await own.recv())["type"] == "auth_ok"
    async with raw_socket(server.url) as ws:
        await ws.send(login)
        assert (await ws.recv())["error"]["code"] == "unauthorized"
        quote = {
            "type": "quote",
            "request_id": rid,
            "funding_rate": "-0.05",
            "collateral_usdc": "9999",
        }
        try:
            await ws.send(quote)
            await ws.conn.get_message()
        except ConnectionClosed as exc:
            assert exc.reason.code == 1008
    quotes = (await server.http.get(f"/quotes?request_id={rid}")).json()["quotes"]
    assert quotes == []


async def test_socket_quotes_act_as_the_socket_agent_only(server: Server) -> None:
    requester, maker = server.agent(), server.agent()
    for a in (requester, maker):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")
    rids = [(await requester.ok("/trade/request", REQUEST, 201))["request_id"] for _ in "ab"]
    quote = {"type": "quote", "funding_rate": "0.0005", "collateral_usdc": "100"}
    async with connect(server.url, maker) as (ws, _):
        await ws.send({**quote, "request_id": rids[0], "agent_id": requester.id})
        assert (await ws.recv())["error"]["code"] == "forbidden"
        for rid in rids:  # one login, many quotes: the quotes spend no signature of their own
            await ws.send({**quote, "request_id": rid})
            assert (await ws.recv())["type"] == "quote_ack"
    for rid in rids:
        quotes = (await server.http.get(f"/quotes?request_id={rid}")).json()["quotes"]
        assert [q["agent_id"] for q in quotes] == [maker.id]


async def test_sockets_per_agent_are_capped(tmp_path: Path, nursery: trio.Nursery) -> None:
    s = await start_server(nursery, base_config(tmp_path, ws_max_per_agent=3))
    agent, other = s.agent(), s.agent()
    async with AsyncExitStack() as stack:
        for _ in range(3):
            await stack.enter_async_context(connect(s.url, agent))
        message = await refused_login(s.url, auth_message(agent), "rate_limited")
        assert "3 sockets" in message
        async with connect(s.url, other):  # another agent is not affected
            pass
    await until_metric(s, "perpd_sockets_open", 0)
    async with connect(s.url, agent):  # its slots are back once its sockets closed
        pass
    assert await metric(s, "perpd_sockets_refused") == 1
    await s.http.aclose()
    s.shutdown.set()


# --- finding 2: caps before login and in all, the login deadline, oversized frames ---------


async def rejected_handshake(url: str) -> ConnectionRejected:
    try:
        async with raw_socket(url):
            raise AssertionError("the handshake was accepted")
    except BaseExceptionGroup as group:  # raised in trio-websocket's reader task
        match, _ = group.split(ConnectionRejected)
        leaf: BaseException | None = match
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        assert isinstance(leaf, ConnectionRejected), group
        return leaf


async def test_unauthenticated_and_total_sockets_are_capped(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    s = await start_server(
        nursery, base_config(tmp_path, ws_max_unauthenticated=3, ws_max_sockets=5)
    )
    async with AsyncExitStack() as stack:
        idle = [await stack.enter_async_context(raw_socket(s.url)) for _ in range(3)]
        exc = await rejected_handshake(s.url)
        assert exc.status_code == 503
        headers = {k.decode().lower(): v.decode() for k, v in exc.headers}
        assert headers["retry-after"] == "1"
        assert b'"unavailable"' in (exc.body or b"")
        await idle[0].send(auth_message(s.agent()))  # a login frees a pre-login slot
        assert (await idle[0].recv())["type"] == "auth_ok"
        await stack.enter_async_context(connect(s.url, s.agent()))
        await stack.enter_async_context(raw_socket(s.url))  # 5 sockets: 2 in, 3 waiting
        total = await rejected_handshake(s.url)
        assert total.status_code == 503 and b"at most 5" in (total.body or b"")
    await until_metric(s, "perpd_sockets_open", 0)
    async with connect(s.url, s.agent()):
        pass
    await s.http.aclose()
    s.shutdown.set()


async def test_no_login_within_the_deadline_closes_1008(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    s = await start_server(nursery, base_config(tmp_path, ws_auth_timeout_s=0.3))
    async with raw_socket(s.url) as ws:
        with trio.fail_after(3):
            msg = await ws.recv()
        assert msg["error"]["code"] == "unauthorized" and "0.3 s" in msg["error"]["message"]
        await closed_with(ws, 1008)
    await s.http.aclose()
    s.shutdown.set()


async def test_tcp_connections_are_capped(tmp_path: Path, nursery: trio.Nursery) -> None:
    s = await start_server(nursery, base_config(tmp_path, max_connections=4))
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    idle = [await trio.open_tcp_stream(host, int(port)) for _ in range(4)]
    await trio.sleep(0.1)
    extra = await trio.open_tcp_stream(host, int(port))
    with trio.fail_after(5):
        answer = b""
        while chunk := await extra.receive_some(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1" in answer
    assert b'"unavailable"' in answer
    await extra.aclose()
    for stream in idle:
        await stream.aclose()
    with trio.fail_after(5):  # the slots come back
        while True:
            try:
                if (await s.http.get("/health")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await trio.sleep(0.05)
    await s.http.aclose()
    s.shutdown.set()


FRAME = 15 * 1024 * 1024  # the 15 MB frame
CHUNK = b"a" * 65536


def _close_code(data: bytes) -> int | None:
    """The code of the first close frame in ``data`` (server frames are unmasked)."""
    i = 0
    while i + 2 <= len(data):
        opcode, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            n, i = int.from_bytes(data[i : i + 2], "big"), i + 2
        elif n == 127:
            n, i = int.from_bytes(data[i : i + 8], "big"), i + 8
        if opcode == 0x8:
            return int.from_bytes(data[i : i + 2], "big") if n >= 2 else 1005
        i += n
    return None


async def flood(host: str, port: int, results: list[tuple[int | None, bool]]) -> None:
    """One unauthenticated socket sending one 15 MB text frame, as fast as it is read.

    Records the close code it saw and whether the server closed the TCP connection.
    """
    stream = await trio.open_tcp_stream(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    await stream.send_all(handshake.encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += await stream.receive_some(4096)
    head, _, received = buf.partition(b"\r\n\r\n")
    assert b" 101 " in head.split(b"\r\n")[0], head
    got = bytearray(received)
    eof = False
    with trio.move_on_after(30):
        async with trio.open_nursery() as nursery:

            async def reader() -> None:
                nonlocal eof
                try:
                    while data := await stream.receive_some(65536):
                        got.extend(data)
                except trio.BrokenResourceError:
                    pass
                eof = True
                nursery.cancel_scope.cancel()

            nursery.start_soon(reader)
            try:  # FIN + text, masked with a zero key (so the payload is sent as is)
                await stream.send_all(bytes([0x81, 0xFF]) + FRAME.to_bytes(8, "big") + bytes(4))
                for _ in range(FRAME // len(CHUNK)):
                    await stream.send_all(CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await trio.sleep_forever()  # until the server closes (the reader cancels us)
    await stream.aclose()
    results.append((_close_code(bytes(got)), eof))


async def test_oversized_frames_before_login_are_refused_in_the_server() -> None:
    """40 unauthenticated sockets each send a 15 MB frame at once (the issue took the
    daemon from 63 MB to 1.16 GB): every one gets 1009 and its TCP connection closed,
    and the daemon's peak RSS grows by less than 40 MB (each socket buffers at most the
    16 KiB limit plus one 64 KiB read)."""
    async with daemon_process() as d:
        host, port = d.url.removeprefix("http://").rsplit(":", 1)
        try:
            await trio.Path(f"/proc/{d.pid}/clear_refs").write_text("5")  # reset VmHWM
        except OSError:
            pass
        before = rss_kb(d.pid)
        results: list[tuple[int | None, bool]] = []
        async with trio.open_nursery() as nursery:
            for _ in range(40):
                nursery.start_soon(flood, host, int(port), results)
        peak = rss_kb(d.pid, "VmHWM")
        async with httpx.AsyncClient(base_url=d.url) as http:
            clock = Clock(time.time(), real=True)
            agent = make_agent(http, Keypair(), clock, await chain_of(http), True)
            async with connect(d.url, agent):  # the daemon still serves
                pass
            metrics = (await http.get("/metrics")).text
    assert results == [(1009, True)] * 40, results
    growth_mb = (peak - before) / 1024
    print(f"daemon RSS {before / 1024:.0f} MB, peak {peak / 1024:.0f} MB under 40 x 15 MB frames")
    assert growth_mb < 40, f"peak RSS grew by {growth_mb:.0f} MB ({before} kB -> {peak} kB)"
    assert "perpd_sockets_unauthenticated 0" in metrics
