"""Issue 8's soak, as behaviours: what one hostile agent may cost the others.

A dust request and a replayed signature are refused before the writer (no transaction
for them), and an address opening connections faster than
its rate is refused (429) before anything is read from them; a caller already past a
rate, and an address past its rate of WebSocket handshakes, are refused (429) before
the app runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from perpd.auth import sign_headers
from perpd.spent import SpentSignatures
from tests.conftest import Server, base_config, start_server
from tests.test_bad_input_http import REQUEST
from tests.test_hardening_ws import metric, refused_login
from tests.wsclient import auth_message, raw_socket


async def test_a_dust_request_is_refused_before_the_writer(server: Server) -> None:
    a = server.agent()
    await a.fund("1000")
    writes = server.venue.store.writes
    for _ in range(20):
        r = await a.post("/trade/request", {**REQUEST, "size_usdc": "0.000001"})
        assert r.status_code == 400, r.text
        assert r.json()["error"] == {
            "code": "invalid_request",
            "message": "size_usdc must be at least 10.000000 on BTC-PERP",
        }
    assert server.venue.store.writes == writes  # not one transaction for the flood
    assert (await a.post("/trade/request", {**REQUEST, "size_usdc": "10"})).status_code == 201


async def test_a_replayed_signature_is_refused_without_a_transaction(server: Server) -> None:
    a = server.agent()
    await a.fund("1000")
    await server.pin("BTC-PERP", "50000")
    raw = json.dumps(REQUEST).encode()
    headers = sign_headers(a.keypair, "POST", "/trade/request", raw, timestamp_ms=a.stamp())
    first = await server.http.post("/trade/request", content=raw, headers=headers)
    assert first.status_code == 201, first.text
    login = auth_message(a)
    async with raw_socket(server.url) as ws:
        await ws.send(login)
        assert (await ws.recv())["type"] == "auth_ok"
    writes, hits = server.venue.store.writes, server.venue.spent.hits
    for _ in range(10):
        again = await server.http.post("/trade/request", content=raw, headers=headers)
        assert again.status_code == 401
        assert again.json()["error"]["message"] == "this signature was already used (replay)"
        assert "replay" in await refused_login(server.url, login, "unauthorized")
    assert server.venue.store.writes == writes
    assert server.venue.spent.hits == hits + 20


def test_spent_signatures_stay_bounded() -> None:
    spent = SpentSignatures(max_entries=100)
    now = 1_000_000_000
    for i in range(1000):
        spent.add(f"sig{i}", now, now)
    assert len(spent) == 100 and "sig999" in spent and "sig0" not in spent
    # entries whose 30 s window closed leave as new ones come
    later = now + 61_000
    for i in range(100):
        spent.add(f"new{i}", later, later)
    assert len(spent) == 100 and all(f"new{i}" in spent for i in range(100))


async def test_new_connections_are_rate_limited_per_address(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    s = await start_server(
        nursery, base_config(tmp_path, connection_rate_per_s=2.0, connection_burst=5)
    )
    assert (await s.http.get("/health")).status_code == 200  # 1: the test's keep-alive client
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    served = [await trio.open_tcp_stream(host, int(port)) for _ in range(4)]  # 2..5
    extra = await trio.open_tcp_stream(host, int(port))  # 6: past the burst
    with trio.fail_after(5):  # the answer comes without a byte sent: nothing was read
        answer = b""
        while chunk := await extra.receive_some(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 429 ") and b"retry-after: 1" in answer
    assert b'"rate_limited"' in answer
    await extra.aclose()
    # connections already open are served as before, and the bucket refills
    for stream in served:
        await stream.send_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 200 ")
        await stream.aclose()
    assert (await s.http.get("/health")).status_code == 200
    assert await metric(s, "perpd_connections_refused_rate") == 1
    await trio.sleep(0.6)
    async with httpx.AsyncClient(base_url=s.url) as fresh:
        assert (await fresh.get("/health")).status_code == 200
    await s.http.aclose()
    s.shutdown.set()


async def handshake(url: str) -> bytes:
    """A WebSocket upgrade request on a fresh connection; the whole answer if refused."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(
            f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        answer = b""
        with trio.fail_after(5):
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                chunk = await stream.receive_some(4096)
                if not chunk:
                    break
                answer += chunk
        return answer


async def test_websocket_handshakes_are_rate_limited_per_address(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    s = await start_server(nursery, base_config(tmp_path, socket_rate_per_s=2.0, socket_burst=3))
    a = s.agent()
    for _ in range(3):
        async with raw_socket(s.url) as ws:
            await ws.send(auth_message(a))
            assert (await ws.recv())["type"] == "auth_ok"
    answer = await handshake(s.url)
    assert answer.startswith(b"HTTP/1.1 429 ") and b"retry-after: 1" in answer, answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "rate_limited"
    assert (await s.http.get("/health")).status_code == 200  # HTTP is another budget
    await trio.sleep(0.6)  # a token is back
    async with raw_socket(s.url) as ws:
        await ws.send(auth_message(a))
        assert (await ws.recv())["type"] == "auth_ok"
    await s.http.aclose()
    s.shutdown.set()


async def test_a_caller_past_its_rate_is_refused_at_the_door(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    s = await start_server(nursery, base_config(tmp_path, agent_rate_per_s=0.5, agent_burst=2))
    a = s.agent()
    await a.fund("1000")
    for _ in range(2):
        assert (await a.get(f"/accounts/{a.id}")).status_code == 200
    refusals = []
    for _ in range(3):  # the bucket is empty: refused before the app runs
        r = await a.get(f"/accounts/{a.id}")
        assert r.status_code == 429 and r.headers["Retry-After"] in ("1", "2"), r.text
        refusals.append(r.json()["error"])
    assert all(e["code"] == "rate_limited" and a.id[:8] in e["message"] for e in refusals)
    assert await metric(s, "perpd_door_refused") == 3
    # another agent, on the same address, is not held up
    b = s.agent()
    await b.fund("1000")
    assert (await b.get(f"/accounts/{b.id}")).status_code == 200
    await s.http.aclose()
    s.shutdown.set()
