"""Issue 13: maker protection (MMP). The fill that reaches a maker's limit (fills or
notional in its trailing window) freezes its quoting for the cool-down and cancels its
live quotes in that fill's unit of work; while frozen a quote is 409 ``maker_frozen``.
Off chain and on the in-process chain, where the fill is counted at the reservation."""

from __future__ import annotations

from tests.conftest import Agent, Server
from tests.quote_flow import live_quotes, open_request, quote, refused, setup, status_of
from tests.wsclient import connect

LIMITS = {"window_s": 60, "max_fills": 2, "cooldown_s": 30}


async def _freeze_on_fills(s: Server) -> tuple[Agent, Agent]:
    """Two fills freeze the maker; its two other live quotes die: (requester, maker)."""
    requester, other, maker = await setup(s, 2)
    assert (await maker.get("/maker/protection")).json()["window_s"] is None
    settings = await maker.ok("/maker/protection", LIMITS)
    assert settings == {
        "agent_id": maker.id,
        "window_s": 60,
        "max_fills": 2,
        "max_notional_usdc": None,
        "cooldown_s": 30,
        "frozen_until": None,
    }
    rids = [await open_request(requester) for _ in range(3)] + [await open_request(other)]
    quotes = [await quote(maker, rid) for rid in rids]
    async with connect(s.url, maker) as (mws, _), connect(s.url, other) as (ows, _):
        await mws.subscribe(["BTC-PERP"])
        await ows.subscribe(["BTC-PERP"])
        await requester.ok("/trade/accept", {"request_id": rids[0], "quote_id": quotes[0]})
        assert await status_of(s, quotes[2]) == "live"
        await requester.ok("/trade/accept", {"request_id": rids[1], "quote_id": quotes[1]})
        ev = await mws.until("mmp_triggered")
        assert ev["data"]["agent_id"] == maker.id and ev["data"]["reason"] == "fills"
        frozen_until = ev["data"]["frozen_until"]
        assert frozen_until == ev["ts"] + 30
        told = await ows.until("quote_cancelled")
        assert told["data"] == {"quote_id": quotes[3], "request_id": rids[3], "reason": "mmp"}
    assert [await status_of(s, q) for q in quotes] == ["accepted", "accepted"] + ["cancelled"] * 2
    assert await live_quotes(s, rids[2]) == set()
    late = await maker.post(
        "/trade/quote", {"request_id": rids[2], "funding_rate": "0.0005", "collateral_usdc": "100"}
    )
    refused(late, 409, "maker_frozen")
    assert str(frozen_until) in late.json()["error"]["message"]
    assert (await maker.get("/maker/protection")).json()["frozen_until"] == frozen_until
    accept = await requester.post("/trade/accept", {"request_id": rids[2], "quote_id": quotes[2]})
    refused(accept, 409, "quote_cancelled")
    await s.assert_balanced()
    return requester, maker


async def test_a_maker_over_its_fill_limit_is_frozen_and_its_quotes_cancelled(
    server: Server,
) -> None:
    requester, maker = await _freeze_on_fills(server)
    server.clock.advance(31)  # the cool-down ends; counting restarted at the trigger
    await server.expired()
    rid = await open_request(requester)
    qid = await quote(maker, rid)
    await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
    assert (await maker.get("/maker/protection")).json()["frozen_until"] is None
    await quote(maker, await open_request(requester))  # one fill since: still quoting


async def test_freeze_on_the_local_chain(chain_server: Server) -> None:
    await _freeze_on_fills(chain_server)


async def test_notional_limit(server: Server) -> None:
    requester, maker = await setup(server, 1)
    await maker.ok(
        "/maker/protection", {"window_s": 60, "max_notional_usdc": "1500", "cooldown_s": 5}
    )
    r1, r2, r3 = [await open_request(requester) for _ in range(3)]
    q1, q2, q3 = await quote(maker, r1), await quote(maker, r2), await quote(maker, r3)
    await requester.ok("/trade/accept", {"request_id": r1, "quote_id": q1})
    assert await status_of(server, q3) == "live"
    await requester.ok("/trade/accept", {"request_id": r2, "quote_id": q2})
    assert await status_of(server, q3) == "cancelled"
    events = (await maker.get("/events?since=0")).json()["events"]
    (mmp,) = [e for e in events if e["type"] == "mmp_triggered"]
    assert mmp["data"]["reason"] == "notional" and mmp["data"]["notional_usdc"] == "2000.000000"


async def test_no_limit_no_freeze(server: Server) -> None:
    requester, maker = await setup(server, 1)
    await maker.ok("/maker/protection", {"window_s": 60, "max_fills": 1, "cooldown_s": 5})
    off = await maker.ok("/maker/protection", {"window_s": 60, "cooldown_s": 5})
    assert off["max_fills"] is None and off["max_notional_usdc"] is None
    for _ in range(2):
        rid = await open_request(requester)
        await requester.ok(
            "/trade/accept", {"request_id": rid, "quote_id": await quote(maker, rid)}
        )
    assert (await maker.get("/maker/protection")).json()["frozen_until"] is None


async def test_bad_protection_input_is_refused_and_changes_nothing(server: Server) -> None:
    requester, maker = await setup(server, 1)
    await maker.ok("/maker/protection", LIMITS)
    before = await server.digest()
    bad = [
        {**LIMITS, "window_s": 0},
        {**LIMITS, "window_s": 86_401},
        {**LIMITS, "cooldown_s": -1},
        {**LIMITS, "max_fills": 0},
        {**LIMITS, "max_fills": "two"},
        {**LIMITS, "max_notional_usdc": "abc"},
        {**LIMITS, "max_notional_usdc": "-5"},
        {"window_s": 60, "max_fills": 2},
        {**LIMITS, "extra": 1},
        {**LIMITS, "window_s": True},
    ]
    for body in bad:
        refused(await maker.post("/maker/protection", body), 400, "invalid_request")
    refused(
        await maker.post("/maker/protection", {**LIMITS, "agent_id": requester.id}),
        403,
        "forbidden",
    )
    unsigned = await server.http.post("/maker/protection", json=LIMITS)
    refused(unsigned, 401, "unauthorized")
    refused(await server.http.get("/maker/protection"), 401, "unauthorized")
    assert await server.digest() == before
    assert (await maker.get("/maker/protection")).json()["max_fills"] == 2
