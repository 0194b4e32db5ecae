"""A keep-alive connection stays usable after a response sent before the body was read.

hypercorn 0.18 neither recycled nor closed such a connection, so the next request on it
waited for the client's timeout (`perpd.api._whole_body`). Each case sends its request
headers, lets the daemon answer them first, then the body, then a second request on the
same connection, which must be answered at once.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import h11
import pytest
import trio

from perpd.api._common import MAX_BODY
from tests.conftest import Server

BODY = json.dumps({"agent_id": "11111111111111111111111111111111", "amount_usdc": "1"}).encode()


async def _exchange(
    stream: trio.SocketStream, conn: h11.Connection, method: str, target: str, body: bytes
) -> tuple[h11.Response, bytes]:
    headers = [("Host", "perpd"), ("Content-Type", "application/json")]
    headers.append(("Content-Length", str(len(body))))
    await stream.send_all(conn.send(h11.Request(method=method, target=target, headers=headers)))
    await trio.sleep(0.15)  # the daemon may answer before the body arrives
    await stream.send_all(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    response: h11.Response | None = None
    data = b""
    with trio.fail_after(5):
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                data += event.data
            elif isinstance(event, h11.EndOfMessage):
                assert response is not None
                return response, data


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("OPTIONS", "/dev/faucet", 200),  # answered by Quart, body never read
        ("GET", "/markets", 200),  # a read that carries a body
        ("PUT", "/trade/quote", 405),
        ("POST", "/nothing/here", 404),
    ],
)
async def test_connection_answers_after_an_unread_body(
    server: Server, method: str, target: str, status: int
) -> None:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    conn = h11.Connection(h11.CLIENT)
    async with await trio.open_tcp_stream(url.hostname, url.port) as stream:
        for _ in range(3):
            first, _ = await _exchange(stream, conn, method, target, BODY)
            assert first.status_code == status
            assert conn.our_state is h11.DONE and conn.their_state is h11.DONE
            conn.start_next_cycle()
            second, data = await _exchange(stream, conn, "GET", "/health", b"")
            assert second.status_code == 200, data
            conn.start_next_cycle()


async def test_a_body_past_the_limit_is_refused_and_the_connection_closed(server: Server) -> None:
    url = urlsplit(server.url)
    assert url.hostname is not None and url.port is not None
    conn = h11.Connection(h11.CLIENT)
    async with await trio.open_tcp_stream(url.hostname, url.port) as stream:
        big = b"x" * (MAX_BODY + 10)
        response, data = await _exchange(stream, conn, "POST", "/dev/faucet", big)
    assert response.status_code == 413, data
    assert (b"connection", b"close") in list(response.headers)
    assert conn.their_state is h11.MUST_CLOSE
