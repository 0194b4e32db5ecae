"""Issue 8, finding 6: hostile numbers and strings are a clear 400 (never a 500), on HTTP
and on the socket, and a genuine 500 says ``internal`` with no traceback."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from trio_websocket import ConnectionClosed

from perpd.auth import sign_headers
from tests.conftest import Agent, Server
from tests.test_bad_input_http import REQUEST, refused
from tests.wsclient import Ws, auth_message, connect, raw_socket

HUGE = "1E999999999999999999999"  # decimal.InvalidOperation when it reaches Decimal()
TINY = "1E-999999999"  # a Decimal context rounds it to 0 silently


def post_raw(agent: Agent, path: str, text: str) -> Any:
    """POST ``text`` exactly as written (JSON numbers and escapes untouched)."""
    return agent.post(path, text.encode())


@pytest.fixture
async def open_request(server: Server) -> tuple[Server, Agent, Agent, str]:
    requester, maker = server.agent(), server.agent()
    await requester.fund("10000")
    await maker.fund("10000")
    await server.pin("BTC-PERP", "50000")
    rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
    return server, requester, maker, rid


@pytest.mark.parametrize("digits", ["²", "-+5", "٣", "+-3", "1_0", "１０"])
@pytest.mark.parametrize("field", ["leverage", "expires_in"])
async def test_unicode_digits_and_sign_runs_in_integer_fields(
    server: Server, field: str, digits: str
) -> None:
    requester = server.agent()
    await requester.fund("10000")
    await server.pin("BTC-PERP", "50000")
    body = {**REQUEST, field: digits}
    await refused(server, requester.post("/trade/request", body), 400, "invalid_request")


@pytest.mark.parametrize("digits", ["²", "٣", "١٢٣"])
async def test_unicode_digits_in_decimal_fields(server: Server, digits: str) -> None:
    requester = server.agent()
    await requester.fund("10000")
    await server.pin("BTC-PERP", "50000")
    body = {**REQUEST, "size_usdc": digits}
    await refused(server, requester.post("/trade/request", body), 400, "invalid_request")


@pytest.mark.parametrize("stamp", ["²".encode("latin-1"), b"-+5", "٣".encode(), b"+1795680100000"])
async def test_bad_x_timestamp_is_401(server: Server, stamp: bytes) -> None:
    requester = server.agent()
    await requester.fund("10000")
    raw = json.dumps(REQUEST).encode()
    headers: dict[str, Any] = sign_headers(requester.keypair, "POST", "/trade/request", raw)
    headers["X-Timestamp"] = stamp
    call = server.http.post("/trade/request", content=raw, headers=headers)
    await refused(server, call, 401, "unauthorized")


@pytest.mark.parametrize("number", [HUGE, "-" + HUGE, "1E99999999999999999", "1" + "0" * 80])
async def test_huge_json_numbers(server: Server, number: str) -> None:
    requester = server.agent()
    await requester.fund("10000")
    text = json.dumps(REQUEST).replace('"1000"', number)  # size_usdc as a bare JSON number
    assert number in text
    await refused(server, post_raw(requester, "/trade/request", text), 400, "invalid_request")


@pytest.mark.parametrize("value", [TINY, "1E-7", "0.0000001", "1.0000001E-1", "-1e-999999999"])
async def test_more_than_six_decimals_however_written(
    open_request: tuple[Server, Agent, Agent, str], value: str
) -> None:
    server, requester, maker, rid = open_request
    await refused(
        server,
        requester.post("/trade/request", {**REQUEST, "max_funding_rate": value}),
        400,
        "invalid_request",
    )
    # and as a bare JSON number too
    text = json.dumps({**REQUEST, "max_funding_rate": "X"}).replace('"X"', value)
    await refused(server, post_raw(requester, "/trade/request", text), 400, "invalid_request")
    quote = {"request_id": rid, "funding_rate": value, "collateral_usdc": "100"}
    r = await maker.post("/trade/quote", quote)
    assert r.status_code == 400 and "decimals" in r.json()["error"]["message"], r.text


async def test_exact_values_still_pass(open_request: tuple[Server, Agent, Agent, str]) -> None:
    """The root fix must not refuse what was right: exponents, trailing zeros, signs."""
    server, requester, maker, rid = open_request
    body = {**REQUEST, "size_usdc": "1E3", "max_funding_rate": "0.0010000", "leverage": "+10"}
    made = await requester.ok("/trade/request", body, 201)
    assert made["size_usdc"] == "1000.000000" and made["leverage"] == 10
    text = json.dumps({"request_id": rid, "funding_rate": "X", "collateral_usdc": 1e2})
    r = await maker.post("/trade/quote", text.replace('"X"', "5E-4").encode())
    assert r.status_code == 201, r.text
    assert r.json()["funding_rate"] == "0.0005"


@pytest.mark.parametrize("field", ["request_id", "agent_id", "funding_rate", "collateral_usdc"])
async def test_lone_surrogates_in_quote_fields(
    open_request: tuple[Server, Agent, Agent, str], field: str
) -> None:
    server, requester, maker, rid = open_request
    quote = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100", field: "\ud800"}
    text = json.dumps(quote)  # ensure_ascii writes the escape \ud800
    assert "\\ud800" in text
    await refused(server, post_raw(maker, "/trade/quote", text), 400, "invalid_request")


@pytest.mark.parametrize("where", ["market", "agent_id", "duration", "key"])
async def test_lone_surrogates_in_request_fields(server: Server, where: str) -> None:
    requester = server.agent()
    await requester.fund("10000")
    body = {**REQUEST, "\udc00": 1} if where == "key" else {**REQUEST, where: "x\udfff"}
    text = json.dumps(body)
    await refused(server, post_raw(requester, "/trade/request", text), 400, "invalid_request")


async def test_lone_surrogate_in_accept_and_close(
    open_request: tuple[Server, Agent, Agent, str],
) -> None:
    server, requester, _, rid = open_request
    accept = json.dumps({"request_id": rid, "quote_id": "\ud800"})
    await refused(server, post_raw(requester, "/trade/accept", accept), 400, "invalid_request")
    close = json.dumps({"position_id": "\udbff\udbff"})
    await refused(server, post_raw(requester, "/trade/close", close), 400, "invalid_request")


async def test_a_genuine_500_says_internal_and_hides_the_traceback(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perpd.api import _reads

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(_reads.q, "page_open_requests", broken)
    r = await server.http.get("/requests")
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal"
    assert "secret detail" not in r.text and "Traceback" not in r.text


# --- the same on the socket ---------------------------------------------------------------


async def closed_with(ws: Ws, code: int) -> None:
    with trio.fail_after(5):
        try:
            while True:
                await ws.conn.get_message()
        except ConnectionClosed as exc:
            assert exc.reason.code == code, exc.reason


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "auth", "agent_id": "A", "timestamp": ' + HUGE + ', "signature": "S"}',
        '{"type": "auth", "agent_id": "\\ud800", "timestamp": 1, "signature": "S"}',
        '{"type": "auth", "agent_id": "A", "timestamp": "²", "signature": "S"}',
        '{"type": "\\udfff"}',
        "[1E999999999999999999999]",
    ],
)
async def test_bad_data_before_login_is_an_error_then_1008(server: Server, text: str) -> None:
    async with raw_socket(server.url) as ws:
        await ws.conn.send_message(text)
        msg = await ws.recv()
        assert msg["type"] == "error"
        assert msg["error"]["code"] in ("invalid_request", "unauthorized"), msg
        await closed_with(ws, 1008)


async def test_login_with_unicode_digits_in_its_timestamp_is_refused(server: Server) -> None:
    agent = server.agent()
    async with raw_socket(server.url) as ws:
        msg = auth_message(agent)
        msg["timestamp"] = "٣" * 13
        await ws.send(msg)
        assert (await ws.recv())["error"]["code"] == "unauthorized"
        await closed_with(ws, 1008)


async def test_bad_data_after_login_is_an_error_and_the_socket_stays(
    open_request: tuple[Server, Agent, Agent, str],
) -> None:
    server, _, maker, rid = open_request
    before = await server.digest()
    async with connect(server.url, maker) as (ws, _):
        quote = {"type": "quote", "request_id": rid, "funding_rate": "0.0005"}
        quote["collateral_usdc"] = "100"
        bad = [
            json.dumps({**quote, "request_id": "\ud800", "client_id": 1}),
            json.dumps({**quote, "funding_rate": TINY, "client_id": 2}),
            json.dumps({**quote, "collateral_usdc": "X", "client_id": 3}).replace('"X"', HUGE),
            json.dumps({**quote, "valid_for": "²", "client_id": 4}),
            json.dumps({"type": "subscribe", "markets": [], "since": "-+5", "client_id": 5}),
            json.dumps({"type": "subscribe", "markets": ["\ud800"], "client_id": 6}),
        ]
        for i, text in enumerate(bad, 1):
            await ws.conn.send_message(text)
            msg = await ws.recv()
            assert msg["type"] == "error", msg
            assert msg["error"]["code"] == "invalid_request", msg
            assert msg.get("client_id") in (i, None)
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
    assert await server.digest() == before


async def test_a_text_frame_that_is_not_utf8_closes_1007(server: Server) -> None:
    """RFC 6455's 1007 is for exactly this (wsproto checks it, before the daemon sees it)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        got = b""
        while b"\r\n\r\n" not in got:
            got += await stream.receive_some(4096)
        await stream.send_all(bytes([0x81, 0x82]) + bytes(4) + b"\xff\xfe")  # masked, zero key
        got = got.partition(b"\r\n\r\n")[2]
        with trio.fail_after(5):
            while len(got) < 4:
                got += await stream.receive_some(4096)
    assert got[0] == 0x88 and int.from_bytes(got[2:4], "big") == 1007, got
