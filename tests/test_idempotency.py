"""Issue 13: client ids. A retry with the same client id and the same (parsed) body gets
the first answer and creates nothing; another body under the id is 409
``client_id_conflict``; ids are durable (a restart keeps them) and outlive the rows
they made (pruning) for ``client_id_retention_s``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from perpd.auth import sign_headers
from tests.conftest import Agent, Clock, Server, base_config, start_server
from tests.quote_flow import REQUEST, open_request, quote, refused, setup
from tests.wsclient import connect


async def _requests_with(s: Server, client_id: str) -> list[dict[str, Any]]:
    r = await s.http.get("/requests", params={"market": "BTC-PERP", "limit": 500})
    return [x for x in r.json()["requests"] if x["client_id"] == client_id]


async def _send_and_drop(
    s: Server, agent: Agent, path: str, raw: bytes, done: Callable[[], Awaitable[bool]]
) -> None:
    """POST ``raw`` signed, wait until ``done()`` (the call took effect), then close the
    connection without reading the answer. (Closing at once may lose the call itself:
    a disconnect before the handler runs cancels it, as a lost request would.)"""
    headers = sign_headers(agent.keypair, "POST", path, raw, timestamp_ms=agent.stamp())
    host, port = s.url.removeprefix("http://").rsplit(":", 1)
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(raw)}", "Connection: close", "", ""]
    stream = await trio.open_tcp_stream(host, int(port))
    await stream.send_all("\r\n".join(lines).encode() + raw)
    with trio.fail_after(10):
        while not await done():  # noqa: ASYNC110
            await trio.sleep(0.02)
    await stream.aclose()


async def test_a_retry_after_a_dropped_response_creates_one_request(server: Server) -> None:
    requester, _ = await setup(server, 1)
    raw = json.dumps(REQUEST | {"client_id": "hedge-42"}).encode()

    async def made() -> bool:
        return bool(await _requests_with(server, "hedge-42"))

    await _send_and_drop(server, requester, "/trade/request", raw, made)
    first = (await _requests_with(server, "hedge-42"))[0]
    free_before = await requester.balances()
    for _ in range(3):  # new signatures each time, the same body
        again = await requester.post("/trade/request", raw)
        assert again.status_code == 201, again.text
        assert again.json()["request_id"] == first["request_id"]
        assert again.json()["client_id"] == "hedge-42"
    assert len(await _requests_with(server, "hedge-42")) == 1
    assert await requester.balances() == free_before
    # the same parsed body in another spelling is the same call
    same = REQUEST | {"client_id": "hedge-42", "size_usdc": 1000, "expires_in": 60}
    assert (await requester.ok("/trade/request", same, 201))["request_id"] == first["request_id"]
    before = await server.digest()
    other = await requester.post(
        "/trade/request", REQUEST | {"client_id": "hedge-42", "leverage": 5}
    )
    refused(other, 409, "client_id_conflict")
    assert await server.digest() == before
    # another agent, or another kind, may use the same id
    someone = server.agent()
    await someone.fund("1000")
    await someone.ok("/trade/request", REQUEST | {"client_id": "hedge-42"}, 201)
    assert len(await _requests_with(server, "hedge-42")) == 2


async def test_quote_client_ids_over_http_and_the_socket(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester, client_id="q")
    body = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
    qid = await quote(maker, rid, client_id="q")  # another kind than the request's "q"
    assert (await maker.ok("/trade/quote", body | {"client_id": "q"}, 201))["quote_id"] == qid
    async with connect(server.url, maker) as (ws, _):
        await ws.send({"type": "quote", **body, "client_id": "q"})
        ack = await ws.until("quote_ack")
        assert ack["quote_id"] == qid and ack["client_id"] == "q"
        await ws.send({"type": "quote", **body, "funding_rate": "0.0004", "client_id": "q"})
        err = await ws.until("error")
        assert err["error"]["code"] == "client_id_conflict" and err["client_id"] == "q"
        await ws.send({"type": "quote", **body, "client_id": "not ok"})
        assert (await ws.until("error"))["error"]["code"] == "invalid_request"
    got = (await server.http.get("/quotes", params={"request_id": rid})).json()["quotes"]
    assert [(x["quote_id"], x["client_id"]) for x in got] == [(qid, "q")]
    # a replace under a client id: its retry returns the same new quote, though the old
    # one it cancelled is no longer live
    swap = {"quote_id": qid, "funding_rate": "0.0003", "collateral_usdc": "100", "client_id": "r1"}
    new = await maker.ok("/trade/quote/replace", swap, 201)
    assert await maker.ok("/trade/quote/replace", swap, 201) == new
    assert new["client_id"] == "r1" and new["replaced_quote_id"] == qid
    clash = await maker.post("/trade/quote", body | {"client_id": "r1"})
    refused(clash, 409, "client_id_conflict")  # a replace and a quote share the namespace


async def test_malformed_client_ids_are_refused_and_change_nothing(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester)
    before = await server.digest()
    for bad in ("", "a b", "x" * 65, 5, "é", ["a"]):
        r = await requester.post("/trade/request", REQUEST | {"client_id": bad})
        refused(r, 400, "invalid_request")
        body = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
        refused(await maker.post("/trade/quote", body | {"client_id": bad}), 400, "invalid_request")
    assert await server.digest() == before


async def test_client_ids_survive_a_restart_and_pruning(tmp_path: Path) -> None:
    clock = Clock()
    cfg = base_config(
        tmp_path, chain="none", retention_s=0, prune_interval_s=0.05, client_id_retention_s=3600
    )
    body = REQUEST | {"client_id": "c-1", "expires_in": 1}
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, clock)
        requester, _ = await setup(s, 1)
        first = await requester.ok("/trade/request", body, 201)
        await s.http.aclose()
        s.shutdown.set()
    async with trio.open_nursery() as nursery:
        clock.advance(0.1)  # the new agent object's stamps start after the old one's
        s = await start_server(nursery, cfg, clock)
        requester = s.agent(requester.keypair)
        assert await requester.ok("/trade/request", body, 201) == first
        await open_request(requester)  # the newest row is never pruned: this one is
        clock.advance(5)
        await s.expired()
        with trio.fail_after(5):
            while (await s.http.get(f"/requests/{first['request_id']}")).status_code != 404:  # noqa: ASYNC110
                await trio.sleep(0.05)
        # the row is gone; its client id still answers
        assert await requester.ok("/trade/request", body, 201) == first
        clock.advance(3600)
        await trio.sleep(0.3)  # the pruner forgets the client id
        fresh = await requester.ok("/trade/request", body, 201)
        assert fresh["request_id"] != first["request_id"]
        await s.http.aclose()
        s.shutdown.set()
