"""``GET /ws/public`` over a real socket, and the web view's HTTP routes (issue 15).

The public stream carries only what the unsigned GETs show: each projected object is
compared with what ``GET /quotes`` and ``GET /positions/{id}`` answer for it.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from perpd.public_events import public_data
from perpd.records import Event
from tests.conftest import Server
from tests.wsclient import Ws, connect, raw_socket

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.001",
    "expires_in": 60,
}
QUOTE = {"funding_rate": "0.0004", "collateral_usdc": "100", "valid_for": 30}


async def hello(ws: Ws, **subscribe: Any) -> int:
    msg = await ws.recv()
    assert msg["type"] == "hello", msg
    await ws.send({"type": "subscribe", **subscribe})
    return int(msg["seq"])


async def events(ws: Ws, n: int) -> list[dict[str, Any]]:
    return [await ws.recv() for _ in range(n)]


async def trade(server: Server) -> tuple[str, str, str, str]:
    """A request with two quotes, the better one accepted: ids of request, quotes, position."""
    requester, mm1, mm2 = server.agent(), server.agent(), server.agent()
    for a in (requester, mm1, mm2):
        await a.fund("10000")
    await server.pin("BTC-PERP", "50000")
    rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
    worse = await mm1.ok(
        "/trade/quote", {"request_id": rid, **QUOTE, "funding_rate": "0.0008"}, 201
    )
    best = (await mm2.ok("/trade/quote", {"request_id": rid, **QUOTE}, 201))["quote_id"]
    live = (await server.http.get(f"/quotes?request_id={rid}")).json()["quotes"]
    assert {q["quote_id"] for q in live} == {worse["quote_id"], best}
    accepted = await requester.ok("/trade/accept", {"request_id": rid, "quote_id": best})
    return rid, worse["quote_id"], best, accepted["position"]["position_id"]


async def test_public_stream_shows_a_trade_with_public_fields_only(server: Server) -> None:
    async with raw_socket(server.url, "/ws/public") as ws:
        await hello(ws)  # markets default to all
        rid, worse, best, pid = await trade(server)
        got = await events(ws, 6)
        kinds = [m["type"] for m in got]
        assert kinds == [
            "trade_request",
            "quote",
            "quote",
            "quote_accepted",
            "quote_rejected",
            "position_opened",
        ], kinds
        seqs = [m["seq"] for m in got]
        assert seqs == sorted(seqs)
        request, q1, q2, acc, rej, opened = (m["data"] for m in got)
        assert request["request_id"] == rid
        assert (await server.http.get(f"/requests/{rid}")).json()["request_id"] == rid
        for q, qid in ((q1, worse), (q2, best)):
            assert q["quote_id"] == qid and q["request_id"] == rid
            assert "consent" not in q  # the maker's signature is for its requester
            assert q["funding_rate"] in ("0.0008", "0.0004")
        assert acc == {"quote_id": best, "request_id": rid, "position_id": pid}
        assert rej == {"quote_id": worse, "request_id": rid}
        shown = (await server.http.get(f"/positions/{pid}")).json()
        assert set(opened) == set(shown)  # the position object, nothing more (no fee)
        assert opened["position_id"] == pid and "open_fee_usdc" not in opened
        # a private read would show the accounts; the stream shows none of them
        assert all("free_usdc" not in m["data"] for m in got)


async def test_public_stream_resumes_with_since_and_filters_markets(server: Server) -> None:
    async with raw_socket(server.url, "/ws/public") as live:
        start = await hello(live, markets=["BTC-PERP"])
        await trade(server)
        first = await events(live, 6)
    # a later socket replays exactly what the first saw, from any point
    async with raw_socket(server.url, "/ws/public") as again:
        await hello(again, markets=["BTC-PERP"], since=start)
        assert [m["seq"] for m in await events(again, 6)] == [m["seq"] for m in first]
    async with raw_socket(server.url, "/ws/public") as tail:
        await hello(tail, markets=["BTC-PERP"], since=first[2]["seq"])
        assert (await tail.recv())["seq"] == first[3]["seq"]
    async with raw_socket(server.url, "/ws/public") as other:
        await hello(other, markets=["ETH-PERP"], since=start)
        await other.send({"type": "ping"})
        assert (await other.recv())["type"] == "pong"  # nothing of BTC-PERP came first


async def test_public_stream_is_read_only_and_refuses_bad_messages(server: Server) -> None:
    async with raw_socket(server.url, "/ws/public") as ws:
        await hello(ws)
        for msg in (
            {"type": "quote", "request_id": "r", "funding_rate": "0", "collateral_usdc": "1"},
            {"type": "auth", "agent_id": "x"},
            {"type": "subscribe", "markets": []},
        ):
            await ws.send(msg)
            err = await ws.until("error")
            assert err["error"]["code"] == "invalid_request", err
        await ws.conn.send_message("not json")
        assert (await ws.until("error"))["error"]["code"] == "invalid_request"
        await ws.send({"type": "ping"})
        assert (await ws.until("pong"))["type"] == "pong"  # still open


async def test_bad_subscriptions_are_refused_and_the_socket_stays(server: Server) -> None:
    async with raw_socket(server.url, "/ws/public") as ws:
        await hello(ws, markets=["DOGE-PERP"])
        assert (await ws.until("error"))["error"]["code"] == "unknown_market"
        for bad in (
            {"markets": "BTC-PERP"},
            {"since": -1},
            {"since": "x"},
            {"cancel_on_disconnect": True},  # an agent's option: no agent here
        ):
            await ws.send({"type": "subscribe", **bad})
            assert (await ws.until("error"))["error"]["code"] == "invalid_request", bad
        await ws.send({"type": "subscribe", "markets": ["ETH-PERP"]})
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"  # subscribed at last, nothing refused


async def test_public_sockets_are_capped_per_address(server: Server) -> None:
    async with trio.open_nursery() as nursery:
        opened = trio.Event()
        done = trio.Event()
        count = 0

        async def hold() -> None:
            nonlocal count
            async with raw_socket(server.url, "/ws/public") as ws:
                await ws.recv()
                count += 1
                if count == 16:
                    opened.set()
                await done.wait()

        for _ in range(16):
            nursery.start_soon(hold)
        await opened.wait()
        upgrade = {
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        }
        async with httpx.AsyncClient(base_url=server.url) as once:  # its own connection
            refused = await once.get("/ws/public", headers=upgrade)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        metrics = (await server.http.get("/metrics")).text
        assert "perpd_public_sockets_open 16" in metrics
        assert "perpd_public_sockets_refused 1" in metrics
        # the agents' own sockets are not affected
        agent = server.agent()
        async with connect(server.url, agent) as (_ws, seq):
            assert seq >= 0
        done.set()


async def test_liquidation_and_funding_are_projected(server: Server) -> None:
    async with raw_socket(server.url, "/ws/public") as ws:
        await hello(ws)
        _, _, _, pid = await trade(server)
        await events(ws, 6)
        liquidator = server.agent()
        await liquidator.fund("1")
        await server.pin("BTC-PERP", "40000")  # the 10x long is far under maintenance
        await liquidator.ok("/trade/liquidate", {"position_id": pid})
        liq = await ws.until("liquidation")
        shown = (await server.http.get(f"/positions/{pid}")).json()
        assert liq["data"]["position_id"] == pid and liq["data"]["status"] == "liquidated"
        assert liq["data"]["liquidator"] == liquidator.id == shown["liquidator"]
        assert liq["data"]["liquidated_side"] == "requester"
        assert set(liq["data"]) == set(shown) | {"liquidated_side"}
        assert "reward_usdc" not in liq["data"]


def test_projection_rule() -> None:
    def ev(type_: str, data: dict[str, Any], public: bool = False) -> Event:
        return Event(1, 0, type_, "BTC-PERP", public, ("a", "b"), data)

    cancelled = {"quote_id": "q", "request_id": "r", "reason": "mmp", "replaced_by": None}
    assert public_data(ev("quote_cancelled", cancelled)) == {"quote_id": "q", "request_id": "r"}
    funding = {"position_id": "p", "amount_usdc": "1.000000", "payer": "a", "receiver": "b"}
    assert public_data(ev("funding_settled", funding)) == funding
    # private types the stream does not know stay private, whatever they carry
    for private in ("mmp_triggered", "deposit_credited", "withdrawal", "position_failed_x"):
        assert public_data(ev(private, {"agent_id": "a"})) is None
    # what the venue marks public passes as it is (funding_curve, request_cancelled)
    curve = {"market": "BTC-PERP", "funding_curve": []}
    assert public_data(ev("funding_curve", curve, public=True)) == curve
    failed = {"position_id": "p", "request_id": "r", "quote_id": "q", "code": "c", "message": "m"}
    assert public_data(ev("position_failed", failed)) == {
        "position_id": "p",
        "request_id": "r",
        "quote_id": "q",
        "status": "failed",
    }
    assert public_data(Event(1, 0, "quote", None, False, (), {"quote_id": "q"})) is None


async def test_pages_assets_and_position_negotiation(server: Server) -> None:
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/", "/agents/someone"):
        r = await server.http.get(path, headers=html)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert '<script type="module" src="/web/app.js">' in r.text
    _, _, _, pid = await trade(server)
    page = await server.http.get(f"/positions/{pid}", headers=html)
    assert page.headers["content-type"].startswith("text/html")
    for accept in ("*/*", "application/json"):
        api = await server.http.get(f"/positions/{pid}", headers={"Accept": accept})
        assert api.json()["position_id"] == pid  # API clients get the JSON as ever
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        r = await server.http.get(f"/web/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
    for bad in ("/web/nope.js", "/web/..%2Fapp.js", "/web/app.py"):
        r = await server.http.get(bad)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # every module the page imports is served (no CDN, nothing from elsewhere)
    app = (await server.http.get("/web/app.js")).text
    for module in ("charts.js", "format.js", "stream.js"):
        assert f'"./{module}"' in app
        assert (await server.http.get(f"/web/{module}")).status_code == 200


async def test_chain_transactions(server: Server) -> None:
    r = await server.http.get("/chain/transactions")
    assert r.status_code == 200
    txs = r.json()["transactions"]
    if server.chain["mode"] == "none":
        assert txs == []
    for bad in ("?limit=0", "?limit=101", "?limit=x", f"?ref={'x' * 65}"):
        r = await server.http.get(f"/chain/transactions{bad}")
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
