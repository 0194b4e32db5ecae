"""Fan-out on the wire: each event's frame built once and written to every socket at once.

The hub writes to real sockets here: a socket pair for what must happen before the hub
yields (and a full kernel buffer), the daemon over loopback for many sockets at once.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from wsproto.frame_protocol import FrameProtocol, Opcode

import perpd.hub
from perpd.hub import Hub, Session
from perpd.records import Event
from perpd.store import Store
from perpd.ws_wire import Wire, text_frame
from tests.conftest import base_config, start_server
from tests.wsclient import Ws, connect

REQUEST = {
    "market": "ETH-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}


@pytest.fixture
async def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "hub.db")
    await s.open()
    yield s
    await s.close()


def eth_event(seq: int, pad: int = 0) -> Event:
    return Event(seq, 1_700_000_000, "trade_request", "ETH-PERP", True, (), {"pad": "x" * pad})


@pytest.fixture
def pair() -> Iterator[tuple[Wire, socket.socket]]:
    """A wire over one end of a socket pair (as the daemon's TCP server makes one) and
    the other end, non-blocking, standing for the client."""
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    wire = Wire(trio.SocketStream(trio.socket.from_stdlib_socket(ours)), trio.Lock())
    wire.activate()
    with ours, theirs:
        yield wire, theirs


def frames(data: bytes) -> list[str]:
    """The text messages in ``data``, parsed by wsproto as a client would."""
    parser = FrameProtocol(client=True, extensions=[])
    parser.receive_bytes(data)
    out = []
    for frame in parser.received_frames():
        assert frame.opcode is Opcode.TEXT and frame.frame_finished and frame.message_finished
        out.append(frame.payload)
    return out


async def live(hub: Hub, session: Session) -> None:
    async def nothing(text: str) -> None:
        raise AssertionError("nothing to replay")

    await hub.catch_up(session, hub.dispatched, nothing)


async def test_the_hub_writes_each_frame_to_the_socket_before_it_yields(
    store: Store, pair: tuple[Wire, socket.socket]
) -> None:
    hub = Hub(store)
    wire, client = pair
    session = Session("agent", frozenset({"ETH-PERP"}), wire)
    await live(hub, session)
    events = [eth_event(hub.dispatched + 1), eth_event(hub.dispatched + 2, pad=300)]
    hub.dispatch(events)
    data = client.recv(65536)  # no checkpoint since dispatch: the bytes are already there
    assert data == b"".join(text_frame(e.wire.encode()) for e in events)
    assert [json.loads(text) for text in frames(data)] == [
        {"type": "trade_request", "seq": e.seq, "ts": e.ts, "data": e.data} for e in events
    ]
    assert session.cursor == events[-1].seq


async def test_a_full_socket_queues_in_order_and_is_cut_off_at_its_limit(
    store: Store, pair: tuple[Wire, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(perpd.hub, "QUEUE_SIZE", 8)
    hub = Hub(store)
    wire, client = pair
    session = Session("agent", frozenset({"ETH-PERP"}), wire)
    await live(hub, session)
    seq = hub.dispatched
    while not session.lagging.is_set():  # the client reads nothing: kernel buffers fill
        seq += 1
        hub.dispatch([eth_event(seq, pad=4000)])
        assert seq < 10_000, "the socket never filled"
    assert wire.queued == 8  # beyond the kernel's buffers, then cut off
    accepted = session.cursor
    assert accepted == seq - 1
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(wire.flush_forever)
        # the server's own message (here a pong) goes after everything queued before it
        nursery.start_soon(wire.send, text_frame(b'{"type":"pong","ts":0}'))
        with trio.fail_after(10):
            while not received.endswith(b'{"type":"pong","ts":0}'):
                await trio.lowlevel.wait_readable(client)
                received += client.recv(1 << 20)
        nursery.cancel_scope.cancel()
    messages = [json.loads(text) for text in frames(bytes(received))]
    assert messages[-1]["type"] == "pong"
    assert [m["seq"] for m in messages[:-1]] == list(range(1, accepted + 1))


async def test_a_frame_offered_to_a_gone_peer_closes_the_session(
    store: Store, pair: tuple[Wire, socket.socket]
) -> None:
    hub = Hub(store)
    wire, client = pair
    session = Session("agent", frozenset({"ETH-PERP"}), wire)
    await live(hub, session)
    client.close()
    hub.dispatch([eth_event(hub.dispatched + 1)])
    assert session.closed and wire.broken
    hub.dispatch([eth_event(hub.dispatched + 1)])  # harmless afterwards


async def test_a_connection_closed_under_a_session_is_never_written_again(
    store: Store, pair: tuple[Wire, socket.socket]
) -> None:
    """hypercorn may close the TCP stream before the socket's handler leaves the hub;
    the kernel then reuses the descriptor's number for the next connection."""
    hub = Hub(store)
    wire, client = pair
    session = Session("agent", frozenset({"ETH-PERP"}), wire)
    await live(hub, session)
    await wire._stream.aclose()
    newer, peer = socket.socketpair()  # likely given the number just freed
    with newer, peer:
        peer.setblocking(False)
        hub.dispatch([eth_event(hub.dispatched + 1)])
        assert session.closed and wire.broken
        with pytest.raises(BlockingIOError):
            peer.recv(1)  # nothing reached the newer connection


async def test_many_sockets_each_get_every_event_in_order_with_their_own_replies(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """120 subscribed sockets of the daemon, events and each socket's own ``pong`` mixed:
    every socket parses every frame, in ``seq`` order with no gap."""
    server = await start_server(nursery, base_config(tmp_path, socket_rate_per_s=0.0))
    requesters = [server.agent() for _ in range(3)]
    for r in requesters:
        await r.fund("100000")
    await server.pin("ETH-PERP", "3000")
    n, rounds = 120, 12
    seen: dict[int, list[int]] = {}
    pongs: dict[int, int] = {}

    async def listen(i: int, ws: Ws) -> None:
        seen[i], pongs[i] = [], 0
        while len(seen[i]) < rounds or pongs[i] < 1:
            msg = await ws.recv(timeout=20)
            if msg["type"] == "pong":
                pongs[i] += 1
            else:
                assert msg["type"] == "trade_request"
                seen[i].append(msg["seq"])

    async with trio.open_nursery() as conns:
        sockets = []
        for _ in range(n):
            ws, _ = await conns.start(_open, server.url, server.agent())
            await ws.subscribe(["ETH-PERP"])
            sockets.append(ws)
        await trio.sleep(0.2)
        async with trio.open_nursery() as readers:
            for i, ws in enumerate(sockets):
                readers.start_soon(listen, i, ws)
            posted = []
            for k in range(rounds):
                body = await requesters[k % 3].ok("/trade/request", REQUEST, 201)
                posted.append(body["request_id"])
                if k == rounds // 2:
                    for ws in sockets:
                        await ws.send({"type": "ping"})
        conns.cancel_scope.cancel()
    first = seen[0]
    assert len(first) == rounds and first == sorted(first)
    assert first == list(range(first[0], first[0] + rounds))  # only these events: no gap
    assert all(seen[i] == first for i in range(n)) and all(pongs[i] == 1 for i in range(n))
    await server.http.aclose()
    server.shutdown.set()


async def _open(url: str, agent: Any, *, task_status: trio.TaskStatus[tuple[Ws, int]]) -> None:
    async with connect(url, agent) as pair:
        task_status.started(pair)
        await trio.sleep_forever()
