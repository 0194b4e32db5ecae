"""Issue 13: cancel and replace a quote, cancel a request, over real HTTP and WebSocket.

A replace is one unit of work: racing an accept, exactly one of the old and the new
quote can fill, never both, off chain and on the in-process chain (where an accept
reserves the quote before its lock lands, and a reserved quote cannot be replaced).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio

from tests.conftest import Agent, Server, base_config, start_server
from tests.quote_flow import (
    REQUEST,
    live_quotes,
    open_request,
    quote,
    refused,
    setup,
    status_of,
)
from tests.wsclient import connect


async def test_cancel_quote_tells_both_and_refuses_after(server: Server) -> None:
    requester, maker, other = await setup(server, 2)
    async with connect(server.url, requester) as (rws, _), connect(server.url, maker) as (mws, _):
        await rws.subscribe(["BTC-PERP"])
        await mws.subscribe(["BTC-PERP"])
        rid = await open_request(requester)
        qid = await quote(maker, rid)
        refused(await other.post("/trade/quote/cancel", {"quote_id": qid}), 403, "forbidden")
        refused(await maker.post("/trade/quote/cancel", {"quote_id": "quo_x"}), 404, "not_found")
        done = await maker.ok("/trade/quote/cancel", {"quote_id": qid})
        assert done["quote"]["quote_id"] == qid and done["quote"]["status"] == "cancelled"
        for ws in (rws, mws):
            ev = await ws.until("quote_cancelled")
            assert ev["data"] == {"quote_id": qid, "request_id": rid, "reason": "maker"}
    assert await status_of(server, qid) == "cancelled"
    assert await live_quotes(server, rid) == set()
    again = await maker.post("/trade/quote/cancel", {"quote_id": qid})
    refused(again, 409, "quote_cancelled")
    accept = await requester.post("/trade/accept", {"request_id": rid, "quote_id": qid})
    refused(accept, 409, "quote_cancelled")
    await server.assert_balanced()


async def test_cancel_says_why_a_quote_is_not_live(server: Server) -> None:
    requester, m1, m2 = await setup(server, 2)
    rid = await open_request(requester)
    filled, rejected = await quote(m1, rid), await quote(m2, rid)
    await requester.ok("/trade/accept", {"request_id": rid, "quote_id": filled})
    refused(await m1.post("/trade/quote/cancel", {"quote_id": filled}), 409, "quote_filled")
    refused(await m2.post("/trade/quote/cancel", {"quote_id": rejected}), 409, "quote_rejected")
    rid2 = await open_request(requester)
    stale = await quote(m1, rid2, valid_for=1) if server.chain["mode"] == "none" else None
    if stale is not None:
        server.clock.advance(2)
        await server.expired()
        refused(await m1.post("/trade/quote/cancel", {"quote_id": stale}), 409, "quote_expired")
        body = {"quote_id": stale, "funding_rate": "0.0004", "collateral_usdc": "100"}
        refused(await m1.post("/trade/quote/replace", body), 409, "quote_expired")


async def test_replace_is_one_unit_and_the_old_quote_is_dead(server: Server) -> None:
    requester, maker = await setup(server, 1)
    async with connect(server.url, requester) as (rws, _):
        await rws.subscribe(["BTC-PERP"])
        rid = await open_request(requester)
        old = await quote(maker, rid, "0.0008")
        assert (await rws.until("quote"))["data"]["quote_id"] == old
        body = {"quote_id": old, "funding_rate": "0.0006", "collateral_usdc": "120"}
        new = await maker.ok("/trade/quote/replace", body, 201)
        assert new["replaced_quote_id"] == old and new["status"] == "live"
        assert new["request_id"] == rid and new["funding_rate"] == "0.0006"
        assert new["collateral_usdc"] == "120.000000"
        ev = await rws.until("quote_cancelled")
        assert ev["data"] == {
            "quote_id": old,
            "request_id": rid,
            "reason": "replaced",
            "replaced_by": new["quote_id"],
        }
        assert (await rws.until("quote"))["data"]["quote_id"] == new["quote_id"]
    assert await live_quotes(server, rid) == {new["quote_id"]}
    accept_old = await requester.post("/trade/accept", {"request_id": rid, "quote_id": old})
    refused(accept_old, 409, "quote_cancelled")
    refused(await maker.post("/trade/quote/replace", body), 409, "quote_cancelled")
    # a refused replace changes nothing: the live quote stays live, unchanged
    before = await server.digest()
    too_high = {"quote_id": new["quote_id"], "funding_rate": "0.002", "collateral_usdc": "100"}
    refused(await maker.post("/trade/quote/replace", too_high), 400, "rate_above_max")
    poor = {"quote_id": new["quote_id"], "funding_rate": "0.0005", "collateral_usdc": "1"}
    refused(await maker.post("/trade/quote/replace", poor), 422, "insufficient_collateral")
    assert await server.digest() == before
    assert await live_quotes(server, rid) == {new["quote_id"]}
    opened = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": new["quote_id"]})
    assert opened["position"]["funding_rate"] == "0.0006"
    await server.assert_balanced()


async def test_a_replace_does_not_count_twice_against_the_caps(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        s = await start_server(
            nursery, base_config(tmp_path, chain="none", max_live_quotes_per_maker_request=1)
        )
        requester, maker = await setup(s, 1)
        rid = await open_request(requester)
        qid = await quote(maker, rid)
        body = {"request_id": rid, "funding_rate": "0.0004", "collateral_usdc": "100"}
        refused(await maker.post("/trade/quote", body), 429, "rate_limited")
        for rate in ("0.0004", "0.0003", "0.0002"):
            new = {"quote_id": qid, "funding_rate": rate, "collateral_usdc": "100"}
            qid = (await maker.ok("/trade/quote/replace", new, 201))["quote_id"]
        await maker.ok("/trade/quote/cancel", {"quote_id": qid})
        await maker.ok("/trade/quote", body, 201)  # the cancel freed the slot
        await s.http.aclose()
        s.shutdown.set()


async def test_cancel_request_kills_its_quotes(tmp_path: Path) -> None:
    async with trio.open_nursery() as nursery:
        s = await start_server(
            nursery, base_config(tmp_path, chain="none", max_open_requests_per_agent=1)
        )
        requester, m1, m2, stranger = await setup(s, 3)
        async with connect(s.url, m1) as (ws1, _), connect(s.url, stranger) as (sws, _):
            await ws1.subscribe(["BTC-PERP"])
            await sws.subscribe(["BTC-PERP"])
            rid = await open_request(requester)
            q1, q2 = await quote(m1, rid), await quote(m2, rid)
            refused(await requester.post("/trade/request", REQUEST), 429, "rate_limited")
            who = await m1.post("/trade/request/cancel", {"request_id": rid})
            refused(who, 403, "forbidden")
            done = await requester.ok("/trade/request/cancel", {"request_id": rid})
            assert done["request"]["status"] == "cancelled"
            ev = await ws1.until("quote_cancelled")
            assert ev["data"] == {"quote_id": q1, "request_id": rid, "reason": "request_cancelled"}
            public = await sws.until("request_cancelled")
            assert public["data"] == {"request_id": rid, "market": "BTC-PERP"}
        assert {await status_of(s, q1), await status_of(s, q2)} == {"cancelled"}
        assert (await s.http.get(f"/requests/{rid}")).json()["status"] == "cancelled"
        again = await requester.post("/trade/request/cancel", {"request_id": rid})
        refused(again, 409, "request_cancelled")
        accept = await requester.post("/trade/accept", {"request_id": rid, "quote_id": q1})
        refused(accept, 409, "request_cancelled")
        late = {"request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "100"}
        refused(await m1.post("/trade/quote", late), 409, "request_cancelled")
        rid2 = await open_request(requester)  # the cancel freed the open-request slot
        await requester.ok("/trade/accept", {"request_id": rid2, "quote_id": await quote(m1, rid2)})
        filled = await requester.post("/trade/request/cancel", {"request_id": rid2})
        refused(filled, 409, "request_filled")
        rid3 = await open_request(requester, expires_in=1)
        s.clock.advance(2)
        expired = await requester.post("/trade/request/cancel", {"request_id": rid3})
        refused(expired, 409, "request_expired")
        await s.assert_balanced()
        await s.http.aclose()
        s.shutdown.set()


async def test_cancel_and_replace_on_the_socket(server: Server) -> None:
    requester, maker = await setup(server, 1)
    async with connect(server.url, maker) as (ws, _):
        await ws.subscribe(["BTC-PERP"])
        rid = await open_request(requester)
        await ws.send(
            {"type": "quote", "request_id": rid, "funding_rate": "0.0007", "collateral_usdc": "100"}
        )
        old = (await ws.until("quote_ack"))["quote_id"]
        await ws.send(
            {"type": "replace", "quote_id": old, "funding_rate": "0.0005", "collateral_usdc": "100"}
        )
        ack = await ws.until("quote_ack")
        assert ack["replaced_quote_id"] == old and ack["request_id"] == rid
        await ws.send({"type": "cancel", "quote_id": ack["quote_id"], "client_id": 7})
        assert await ws.until("cancel_ack") == {
            "type": "cancel_ack",
            "quote_id": ack["quote_id"],
            "client_id": 7,
        }
        await ws.send({"type": "cancel", "quote_id": ack["quote_id"]})
        err = await ws.until("error")
        assert err["error"]["code"] == "quote_cancelled"
        await ws.send({"type": "cancel", "quote_id": old, "extra": 1})
        assert (await ws.until("error"))["error"]["code"] == "invalid_request"
        await ws.send({"type": "ping"})
        assert (await ws.until("pong"))["type"] == "pong"  # the socket stayed open
    assert await live_quotes(server, rid) == set()


# ---------------------------------------------------------------- the race


async def _at_once(*calls: tuple[Agent, str, Any]) -> list[Any]:
    """The calls' responses, each sent after a jitter so that either may reach the
    writer first."""
    out: list[Any] = [None] * len(calls)

    async def one(i: int, agent: Agent, path: str, body: Any) -> None:
        await trio.sleep(random.uniform(0, 0.01))
        out[i] = await agent.post(path, body)

    async with trio.open_nursery() as n:
        for i, call in enumerate(calls):
            n.start_soon(one, i, *call)
    return out


async def _race_rounds(s: Server, rounds: int) -> dict[str, int]:
    """Each round: a live quote, then its replace and its accept at once. Exactly one
    of the old and the new quote ends filled, never both, never neither. Runs
    ``rounds`` rounds, and more (up to 4×) until both orders have happened: which call
    wins is the jitter's and the machine's, and one order can run ahead for a while
    (in the whole suite on a fast machine, 16 chain rounds once all went to the accept)."""
    requester, maker = await setup(s, 1)
    tally = {"old": 0, "new": 0}
    i = 0
    while i < rounds or (min(tally.values()) == 0 and i < 4 * rounds):
        rid = await open_request(requester)
        old = await quote(maker, rid, "0.0008")
        # signed (with its quote consent, on a chain) before the race starts
        body = {"quote_id": old, "funding_rate": "0.0004", "collateral_usdc": "100"}
        raw = await maker.raw("/trade/quote/replace", body)
        accept = ("/trade/accept", {"request_id": rid, "quote_id": old})
        a, r = await _at_once((requester, *accept), (maker, "/trade/quote/replace", raw))
        if a.status_code == 200:
            refused(r, 409, "quote_filled")
            tally["old"] += 1
        else:
            refused(a, 409, "quote_cancelled")
            assert r.status_code == 201, r.text
            new = r.json()["quote_id"]
            await requester.ok("/trade/accept", {"request_id": rid, "quote_id": new})
            tally["new"] += 1
        filled = (await s.http.get(f"/requests/{rid}")).json()
        assert filled["status"] == "filled"
        position = (await s.http.get(f"/positions/{filled['position_id']}")).json()
        assert position["quote_id"] == (old if a.status_code == 200 else r.json()["quote_id"])
        positions = await s.http.get("/positions", params={"agent_id": maker.id})
        assert len(positions.json()["positions"]) == i + 1  # one fill per round, never two
        i += 1
    await s.assert_balanced()
    return tally


async def test_replace_racing_accept(server: Server) -> None:
    tally = await _race_rounds(server, 40)
    assert 40 <= sum(tally.values()) <= 160
    assert min(tally.values()) > 0, tally  # both orders happened: the race was run


async def test_replace_racing_accept_on_the_local_chain(chain_server: Server) -> None:
    tally = await _race_rounds(chain_server, 16)
    assert 16 <= sum(tally.values()) <= 64
    assert min(tally.values()) > 0, tally


async def test_bad_input_for_every_new_call_changes_nothing(server: Server) -> None:
    requester, maker = await setup(server, 1)
    rid = await open_request(requester)
    qid = await quote(maker, rid)
    terms = {"quote_id": qid, "funding_rate": "0.0004", "collateral_usdc": "100"}
    bad: list[tuple[str, Any, int, str]] = [
        ("/trade/quote/cancel", {}, 400, "invalid_request"),
        ("/trade/quote/cancel", {"quote_id": 5}, 400, "invalid_request"),
        ("/trade/quote/cancel", {"quote_id": ""}, 400, "invalid_request"),
        ("/trade/quote/cancel", {"quote_id": qid, "reason": "x"}, 400, "invalid_request"),
        ("/trade/quote/cancel", b"{not json", 400, "invalid_request"),
        ("/trade/quote/cancel", {"quote_id": qid, "agent_id": requester.id}, 403, "forbidden"),
        ("/trade/quote/replace", {"quote_id": qid}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"funding_rate": "abc"}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"funding_rate": "0.9"}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"collateral_usdc": "-1"}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"valid_for": 0}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"valid_for": 61}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"client_id": "no spaces"}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"request_id": rid}, 400, "invalid_request"),
        ("/trade/quote/replace", terms | {"quote_id": "quo_none"}, 404, "not_found"),
        ("/trade/request/cancel", {}, 400, "invalid_request"),
        ("/trade/request/cancel", {"request_id": ["x"]}, 400, "invalid_request"),
        ("/trade/request/cancel", {"request_id": "req_none"}, 404, "not_found"),
        ("/trade/request/cancel", {"request_id": rid, "agent_id": maker.id}, 403, "forbidden"),
    ]
    stranger = server.agent()
    await stranger.fund("1000")
    before, balances = await server.digest(), [await a.balances() for a in (requester, maker)]
    for path, body, status, code in bad:
        who = requester if path == "/trade/request/cancel" else maker
        r = await who.post(path, body)
        assert r.status_code == status, (path, body, r.text)
        assert r.json()["error"]["code"] == code, (path, body, r.text)
    for path in ("/trade/quote/cancel", "/trade/quote/replace", "/trade/request/cancel"):
        unsigned = await server.http.post(path, json={"quote_id": qid, "request_id": rid})
        refused(unsigned, 401, "unauthorized")
    # the wrong agent: a maker cannot replace another's quote
    refused(await stranger.post("/trade/quote/replace", terms), 403, "forbidden")
    refused(await maker.post("/trade/request/cancel", {"request_id": rid}), 403, "forbidden")
    assert await server.digest() == before
    assert [await a.balances() for a in (requester, maker)] == balances
    assert await live_quotes(server, rid) == {qid}
