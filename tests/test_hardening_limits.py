"""Issue 8, finding 3: what one agent may cost everyone, through real HTTP and the socket.

Minimum size per market (400), caps on open requests and live quotes (429 with
Retry-After), token-bucket rates per agent and per address (429 with Retry-After), and
a flood by one agent refused while another agent's calls go through.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.auth import sign_headers
from perpd.ratelimit import Buckets, Rate, address_key
from tests.conftest import Server, base_config, funded, start_server
from tests.wsclient import connect

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 10,
    "max_funding_rate": "0.001",
}


@pytest.fixture
async def tight(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """Small caps, so they are reached in a few calls."""
    cfg = base_config(
        tmp_path,
        min_size_usdc=(("ETH-PERP", 50_000_000),),
        max_open_requests_per_agent=3,
        max_live_quotes_per_agent=4,
        max_live_quotes_per_request=3,
        max_live_quotes_per_maker_request=2,
    )
    s = await start_server(nursery, cfg)
    await s.pin("BTC-PERP", "50000")
    yield s
    await s.http.aclose()
    s.shutdown.set()


def refused(r: Any, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    return str(r.json()["error"]["message"])


async def test_minimum_size_per_market_is_shown_and_enforced(tight: Server) -> None:
    body = (await tight.http.get("/markets")).json()
    sizes = {m["market"]: m["min_size_usdc"] for m in body["markets"]}
    assert sizes == {"BTC-PERP": "10.000000", "ETH-PERP": "50.000000", "SOL-PERP": "10.000000"}
    assert body["limits"] == {
        "max_open_requests_per_agent": 3,
        "max_live_quotes_per_agent": 4,
        "max_live_quotes_per_request": 3,
        "max_live_quotes_per_maker_request": 2,
    }
    (a,) = await funded(tight, 1)
    before = await tight.digest()
    msg = refused(
        await a.post("/trade/request", {**REQUEST, "size_usdc": "9.999999"}), 400, "invalid_request"
    )
    assert "10.000000" in msg and "BTC-PERP" in msg
    await tight.pin("ETH-PERP", "3000")
    before = await tight.digest()
    msg = refused(
        await a.post("/trade/request", {**REQUEST, "market": "ETH-PERP", "size_usdc": "49"}),
        400,
        "invalid_request",
    )
    assert "50.000000" in msg
    assert await tight.digest() == before
    await a.ok("/trade/request", {**REQUEST, "size_usdc": "10"}, 201)


async def test_open_requests_per_agent_are_capped_until_one_expires(tight: Server) -> None:
    a, b = await funded(tight, 2)
    for i in range(3):
        await a.ok("/trade/request", {**REQUEST, "expires_in": 20 + i}, 201)
    before = await tight.digest()
    r = await a.post("/trade/request", REQUEST)
    assert "at most 3 open requests" in refused(r, 429, "rate_limited")
    # Retry-After: until the earliest of its open requests expires (frozen clock: 20 s)
    assert r.headers["Retry-After"] == "20"
    assert await tight.digest() == before
    await b.ok("/trade/request", REQUEST, 201)  # another agent is not affected
    tight.clock.advance(20)
    await tight.expired()
    await a.ok("/trade/request", REQUEST, 201)


async def test_live_quotes_are_capped_per_maker_per_request_and_per_agent(tight: Server) -> None:
    r1, r2, r3, m1, m2, m3 = await funded(tight, 6)
    rids = [(await r.ok("/trade/request", REQUEST, 201))["request_id"] for r in (r1, r2, r3)]

    def quote(rid: str, valid_for: int = 30) -> dict[str, Any]:
        return {
            "request_id": rid,
            "funding_rate": "0.0005",
            "collateral_usdc": "10",
            "valid_for": valid_for,
        }

    await m1.ok("/trade/quote", quote(rids[0], 15), 201)
    await m1.ok("/trade/quote", quote(rids[0]), 201)
    r = await m1.post("/trade/quote", quote(rids[0]))
    assert "per maker on a request" in refused(r, 429, "rate_limited")
    assert r.headers["Retry-After"] == "15"
    await m2.ok("/trade/quote", quote(rids[0]), 201)
    r = await m3.post("/trade/quote", quote(rids[0]))  # the request holds 3 live quotes
    assert "already has 3 live quotes" in refused(r, 429, "rate_limited")
    await m1.ok("/trade/quote", quote(rids[1]), 201)
    await m1.ok("/trade/quote", quote(rids[1]), 201)
    r = await m1.post("/trade/quote", quote(rids[2]))  # m1 holds 4 live quotes
    assert "at most 4 live quotes per agent" in refused(r, 429, "rate_limited")
    await m3.ok("/trade/quote", quote(rids[2]), 201)
    # accepting one rejects the others: the cap bounds that unit of work
    live = (await tight.http.get(f"/quotes?request_id={rids[0]}")).json()["quotes"]
    assert len(live) == 3
    await r1.ok("/trade/accept", {"request_id": rids[0], "quote_id": live[0]["quote_id"]})
    await m1.ok("/trade/quote", quote(rids[2]), 201)  # its quotes on rids[0] are gone
    await tight.assert_balanced()


async def test_one_agent_flooding_gets_429_while_another_agent_trades(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(tmp_path, agent_rate_per_s=2.0, agent_burst=5)
    s = await start_server(nursery, cfg)
    await s.pin("BTC-PERP", "50000")
    flooder, honest, maker = s.agent(), s.agent(), s.agent()
    for a in (flooder, honest, maker):
        await a.fund("100000")
    statuses: list[int] = []
    retry: list[str] = []

    async def flood() -> None:
        for _ in range(30):
            r = await flooder.get(f"/accounts/{flooder.id}")
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "rate_limited"
                retry.append(r.headers["Retry-After"])

    async with trio.open_nursery() as n:
        n.start_soon(flood)
        rid = (await honest.ok("/trade/request", REQUEST, 201))["request_id"]
        qid = (
            await maker.ok(
                "/trade/quote",
                {"request_id": rid, "funding_rate": "0", "collateral_usdc": "10"},
                201,
            )
        )["quote_id"]
        await honest.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
    assert statuses.count(200) <= 5 + 2 * 10  # the burst plus what refilled meanwhile
    assert statuses.count(429) >= 10 and set(retry) <= {"1"}
    # the socket: quotes count against the same bucket, refused with an error message
    rid = (await honest.ok("/trade/request", REQUEST, 201))["request_id"]
    await trio.sleep(3)  # the flooder's bucket refills
    async with connect(s.url, flooder) as (ws, _):
        codes = []
        for i in range(8):
            await ws.send(
                {
                    "type": "quote",
                    "client_id": i,
                    "request_id": rid,
                    "funding_rate": "0",
                    "collateral_usdc": "10",
                    "valid_for": 30,
                }
            )
            codes.append(await ws.recv())
    kinds = [c["type"] for c in codes]
    assert "quote_ack" in kinds
    assert any(c["type"] == "error" and c["error"]["code"] == "rate_limited" for c in codes)
    await s.http.aclose()
    s.shutdown.set()


async def test_a_refused_call_spends_nothing_and_can_be_sent_again(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(tmp_path, agent_rate_per_s=1.0, agent_burst=1)
    s = await start_server(nursery, cfg)
    a, forger = s.agent(), s.agent()
    await a.fund("1000")
    await s.pin("BTC-PERP", "50000")
    # forged calls naming `a` are refused before its bucket is touched
    for _ in range(5):
        h = sign_headers(forger.keypair, "GET", f"/accounts/{a.id}", b"", timestamp_ms=a.stamp())
        h["X-Agent-Id"] = a.id
        assert (await s.http.get(f"/accounts/{a.id}", headers=h)).status_code == 401
    assert (await a.get(f"/accounts/{a.id}")).status_code == 200
    raw = json.dumps(REQUEST).encode()
    headers = sign_headers(a.keypair, "POST", "/trade/request", raw, timestamp_ms=a.stamp())
    headers["Content-Type"] = "application/json"
    r = await s.http.post("/trade/request", content=raw, headers=headers)
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    await trio.sleep(1.05)
    again = await s.http.post("/trade/request", content=raw, headers=headers)
    assert again.status_code == 201, again.text
    await trio.sleep(1.05)
    replay = await s.http.post("/trade/request", content=raw, headers=headers)
    assert replay.status_code == 401  # once it was accepted, it is spent
    await s.http.aclose()
    s.shutdown.set()


async def test_unsigned_calls_are_limited_per_address_signed_ones_per_agent(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(tmp_path, public_rate_per_s=1.0, public_burst=5)
    s = await start_server(nursery, cfg)
    a = s.agent()
    await a.fund("1000")  # /dev/* is not limited
    # start_server's GET /chain took one token of the burst of 5
    got = [(await s.http.get("/requests")).status_code for _ in range(8)]
    assert got[:4] == [200] * 4 and 429 in got[4:]
    r = await s.http.get("/quotes?request_id=x")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1"
    assert r.json()["error"]["code"] == "rate_limited"
    # a signed read from the same address is not in that bucket
    assert (await a.get("/events?since=0")).status_code == 200
    await s.http.aclose()
    s.shutdown.set()


async def test_a_signed_public_read_counts_on_its_agent_not_on_the_address(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    cfg = base_config(tmp_path, public_rate_per_s=0.01, public_burst=3)
    s = await start_server(nursery, cfg)
    agents = [s.agent() for _ in range(3)]  # three agents on one host
    # start_server's GET /chain took one token of the burst of 3
    got = [(await s.http.get("/markets")).status_code for _ in range(3)]
    assert got == [200, 200, 429]  # the address's unsigned bucket is empty
    for a in agents:  # each signed read is its agent's: the empty bucket does not matter
        for path in ("/markets", "/requests?market=BTC-PERP", "/positions?status=open"):
            r = await a.get(path)
            assert r.status_code == 200, (path, r.text)
    assert (await agents[0].get("/markets")).json() == (await agents[1].get("/markets")).json()
    # a read whose signature does not verify is not an agent's: it is charged to the
    # address, here already empty (429); with tokens left it is refused 401
    forged = sign_headers(agents[0].keypair, "GET", "/markets", b"", timestamp_ms=agents[0].stamp())
    forged["X-Agent-Id"] = agents[1].id
    r = await s.http.get("/markets", headers=forged)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    await s.http.aclose()
    s.shutdown.set()

    (tmp_path / "b").mkdir()
    cfg = base_config(tmp_path / "b", public_rate_per_s=0.01, public_burst=3)
    s = await start_server(nursery, cfg)
    a, b = s.agent(), s.agent()
    forged = sign_headers(a.keypair, "GET", "/markets", b"", timestamp_ms=a.stamp())
    forged["X-Agent-Id"] = b.id
    r = await s.http.get("/markets", headers=forged)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text
    stale = sign_headers(
        a.keypair, "GET", "/markets?x=1", b"", timestamp_ms=a.stamp()
    )  # signed for another target
    r = await s.http.get("/markets", headers=stale)
    assert r.status_code == 401  # the last token of the burst (GET /chain took the first)
    r = await s.http.get("/markets", headers=stale)
    assert r.status_code == 429
    await s.http.aclose()
    s.shutdown.set()


async def test_every_call_per_address_has_a_ceiling(tmp_path: Path, nursery: trio.Nursery) -> None:
    cfg = base_config(tmp_path, address_rate_per_s=1.0, address_burst=4)
    s = await start_server(nursery, cfg)
    agents = [s.agent() for _ in range(5)]  # many keys from one address
    got = [(await a.get("/events?since=0")).status_code for a in agents]
    # start_server's GET /chain took one token of the burst of 4
    assert got[:3] == [200] * 3 and got[3:] == [429, 429]
    await s.http.aclose()
    s.shutdown.set()


def test_buckets_are_o1_and_bounded() -> None:
    now = [0.0]
    b = Buckets(Rate(10.0, 2), max_keys=1000, clock=lambda: now[0])
    assert b.take("a") == 0.0 and b.take("a") == 0.0
    assert b.take("a") == pytest.approx(0.1)
    now[0] += 0.1
    assert b.take("a") == 0.0
    for i in range(5_000):  # keys slower than the refill: idle buckets go by themselves
        now[0] += 0.001
        b.take(f"slow{i}")
    assert len(b) <= 202 and b.evicted == 0
    for i in range(50_000):  # an address-rotating flood never grows the table past max
        now[0] += 0.00001
        b.take(f"k{i}")
        assert len(b) <= 1000
    assert b.evicted > 40_000
    now[0] += 10  # every bucket refilled: idle ones go as calls come in
    for _ in range(600):
        b.take("x")
    assert len(b) <= 2
    unlimited = Buckets(Rate(0, 1), max_keys=1)
    assert all(unlimited.take("a") == 0.0 for _ in range(100)) and len(unlimited) == 0


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key("127.0.0.1") == "127.0.0.1"
    assert address_key(None) == "?"


async def test_a_partial_close_may_not_leave_dust(tight: Server) -> None:
    requester, maker = await funded(tight, 2)
    rid = (await requester.ok("/trade/request", {**REQUEST, "size_usdc": "20"}, 201))["request_id"]
    qid = (
        await maker.ok(
            "/trade/quote", {"request_id": rid, "funding_rate": "0", "collateral_usdc": "10"}, 201
        )
    )["quote_id"]
    pid = (await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid}))["position"][
        "position_id"
    ]
    await requester.ok("/trade/close", {"position_id": pid, "size_percent": 50})  # leaves 10
    before = await tight.digest()
    r = await requester.post("/trade/close", {"position_id": pid, "size_percent": 1})
    msg = refused(r, 400, "invalid_request")
    assert "at least 10.000000" in msg and "9.900000" in msg
    assert await tight.digest() == before
    done = await requester.ok("/trade/close", {"position_id": pid, "size_percent": 100})
    assert done["position"]["status"] == "closed"
    await tight.assert_balanced()


async def test_invalid_calls_cost_their_agent_ten_calls_and_a_forger_costs_nothing(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """A verified call refused 400 costs `invalid_call_cost` tokens: a loop of bad calls
    meets 429 ten times sooner (then the door's tarpit), while another agent's valid
    calls and a forger naming the looping agent change nothing of the sort."""
    cfg = base_config(
        tmp_path, agent_rate_per_s=0.01, agent_burst=30, refusal_delay_s=0, invalid_call_cost=10
    )
    s = await start_server(nursery, cfg)
    await s.pin("BTC-PERP", "50000")
    bad, good, forger = s.agent(), s.agent(), s.agent()
    await bad.fund("1000")
    await good.fund("1000")
    dust = {**REQUEST, "size_usdc": "0.000001"}
    # Given a forger's invalid calls naming `bad`: 401, and `bad`'s bucket untouched
    for _ in range(5):
        raw = json.dumps(dust).encode()
        h = sign_headers(forger.keypair, "POST", "/trade/request", raw, timestamp_ms=bad.stamp())
        h["X-Agent-Id"] = bad.id
        assert (await s.http.post("/trade/request", content=raw, headers=h)).status_code == 401
    # When `bad` sends dust requests (400) in a loop
    statuses = [(await bad.post("/trade/request", dust)).status_code for _ in range(5)]
    # Then each took 10 of its 30 tokens: the fourth call is refused by the rate
    assert statuses[:3] == [400, 400, 400] and statuses[3:] == [429, 429], statuses
    # and a valid call of another agent still goes through (30 tokens: 30 calls)
    assert [(await good.get(f"/accounts/{good.id}")).status_code for _ in range(20)] == [200] * 20
    await s.http.aclose()
    s.shutdown.set()


async def test_a_socket_refused_by_a_rate_is_read_no_further_for_the_tarpit_delay(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    """After a 429 on a socket (a rate or a cap), its next message waits the tarpit's
    delay: a loop of refused quotes slows itself, not the daemon."""
    delay = 0.4
    cfg = base_config(tmp_path, max_live_quotes_per_maker_request=1, refusal_delay_s=delay)
    s = await start_server(nursery, cfg)
    await s.pin("BTC-PERP", "50000")
    taker, maker = s.agent(), s.agent()
    await taker.fund("1000")
    await maker.fund("1000")
    rid = (await taker.ok("/trade/request", REQUEST, 201))["request_id"]
    quote = {"type": "quote", "request_id": rid, "funding_rate": "0.0005", "collateral_usdc": "10"}
    async with connect(s.url, maker) as (ws, _seq):
        await ws.send(quote)
        assert (await ws.until("quote_ack"))["request_id"] == rid
        # When the maker sends three more quotes on the request (the cap is one)
        start = trio.current_time()
        for _ in range(3):
            await ws.send(quote)
        codes = [(await ws.until("error"))["error"]["code"] for _ in range(3)]
        elapsed = trio.current_time() - start
    # Then each is refused 429, and the socket was held the delay after each of the
    # first two before the next was read
    assert codes == ["rate_limited"] * 3
    assert elapsed >= 2 * delay, elapsed
    await s.http.aclose()
    s.shutdown.set()


def test_a_penalty_delays_a_loop_paced_at_the_refill_rate() -> None:
    """A penalty taken from an almost empty bucket is owed (at most the penalty): a
    loop of invalid calls paced at the refill rate gets one call in ten through."""
    now = [0.0]
    b = Buckets(Rate(100.0, 10), max_keys=10, clock=lambda: now[0])
    allowed = 0
    for _ in range(1_000):  # ten seconds, a call every 10 ms, each refused 400
        if b.take("bad") == 0.0:
            allowed += 1
            b.spend("bad", 9)
        now[0] += 0.01
    assert 100 <= allowed <= 102, allowed  # the rate's 1,000 tokens / 10 (+ the burst)
    b.spend("other", 1_000)  # debt is bounded by the penalty: 10 s of refill at most
    now[0] += 10.0
    assert b.take("other") == 0.0
