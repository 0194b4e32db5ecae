"""Issue 13 history over real HTTP: fills, funding payments, liquidations and closed
positions for each party, their amounts against the balances, time and market filters,
csv, and every bad input refused with its code and nothing changed."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from perpd.auth import sign_headers
from tests.conftest import Agent, Server, base_config, start_server, usdc

PERIOD = 60  # a short funding period: the clock is moved across two of them
M = 1_000_000


@pytest.fixture
async def srv(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    s = await start_server(nursery, base_config(tmp_path, funding_period_s=PERIOD))
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def open_position(
    requester: Agent,
    maker: Agent,
    *,
    market: str = "BTC-PERP",
    size: str = "1000",
    leverage: int = 10,
    rate: str = "0.0005",
    collateral: str = "100",
    duration: str = "perpetual",
) -> dict[str, Any]:
    req = await requester.ok(
        "/trade/request",
        {
            "market": market,
            "side": "long",
            "size_usdc": size,
            "leverage": leverage,
            "max_funding_rate": "0.01",
            "duration": duration,
            "expires_in": 60,
        },
        201,
    )
    quote = await maker.ok(
        "/trade/quote",
        {
            "request_id": req["request_id"],
            "agent_id": maker.id,
            "funding_rate": rate,
            "collateral_usdc": collateral,
            "valid_for": 60,
        },
        201,
    )
    body = {"request_id": req["request_id"], "quote_id": quote["quote_id"]}
    return (await requester.ok("/trade/accept", body))["position"]  # type: ignore[no-any-return]


async def page(agent: Agent, path: str, status: int = 200) -> dict[str, Any]:
    r = await agent.get(path)
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


async def wait_funding(agent: Agent, n: int) -> list[dict[str, Any]]:
    with trio.fail_after(10):
        while len(items := (await page(agent, "/funding"))["funding"]) < n:  # noqa: ASYNC110
            await trio.sleep(0.05)  # the scheduler settles on its own time
    return items


async def test_fills_funding_and_closes_for_both_parties(srv: Server) -> None:
    requester, maker = srv.agent(), srv.agent()
    await requester.fund("10000")
    await maker.fund("10000")
    await srv.pin("BTC-PERP", "50000")
    pos = await open_position(requester, maker)
    pid = pos["position_id"]

    mine = (await page(requester, "/fills"))["fills"]
    theirs = (await page(maker, "/fills"))["fills"]
    assert len(mine) == len(theirs) == 1
    r, m = mine[0], theirs[0]
    assert r["fill_id"] == m["fill_id"] and r["position_id"] == m["position_id"] == pid
    assert (r["role"], r["side"], m["role"], m["side"]) == ("requester", "long", "maker", "short")
    # IMr = 1000 / 10 = 100; open fee ceil(1000 × 0.0005) = 0.5, the requester's only
    assert (r["collateral_usdc"], r["fee_usdc"]) == ("100.000000", "0.500000")
    assert (m["collateral_usdc"], m["fee_usdc"]) == ("100.000000", "0.000000")
    assert r["size_usdc"] == "1000.000000" and r["entry_price"] == "50000.00000000"
    assert r["funding_rate"] == "0.0005" and r["leverage"] == 10
    assert r["request_id"] == pos["request_id"] and r["quote_id"] == pos["quote_id"]
    assert r["filled_at"] == pos["opened_at"]

    before_r, before_m = await requester.balances(), await maker.balances()
    # opened at T0 + 100, boundaries every 60 s: to T0 + 120 trunc(1000e6 × 500 × 20 /
    # (1e6 × 60)) = 166 666, then 1000 USDC × 500 ppm = 0.5 USDC, requester -> maker
    srv.clock.advance(PERIOD)
    await wait_funding(requester, 1)
    srv.clock.advance(PERIOD)
    paid = await wait_funding(requester, 2)
    received = await wait_funding(maker, 2)
    assert [p["direction"] for p in paid] == ["paid", "paid"]
    assert [p["direction"] for p in received] == ["received", "received"]
    assert [p["payment_id"] for p in paid] == [p["payment_id"] for p in received]
    assert all(p["position_id"] == pid and p["market"] == "BTC-PERP" for p in paid)
    assert [p["amount_usdc"] for p in paid] == ["0.166666", "0.500000"]
    assert paid[0]["period"] + 1 == paid[1]["period"]
    assert all(p["period"] == p["settled_at"] // PERIOD for p in paid)
    after_r, after_m = await requester.balances(), await maker.balances()
    total = sum(usdc(p["amount_usdc"]) for p in paid)
    assert total == 666_666
    assert before_r[1] - after_r[1] == total == after_m[1] - before_m[1]  # locked moved

    await requester.ok("/trade/close", {"position_id": pid, "size_percent": 100})
    for agent in (requester, maker):
        closed = (await page(agent, f"/positions?agent_id={agent.id}&status=closed"))["positions"]
        assert [p["position_id"] for p in closed] == [pid]
        assert closed[0]["status"] == "closed"
    # the other agent's list is public, as /positions always was; its window is closed_at
    t = closed[0]["closed_at"]
    path = f"/positions?agent_id={maker.id}&status=closed"
    assert len((await page(maker, f"{path}&since={t}&until={t + 1}"))["positions"]) == 1
    assert (await page(maker, f"{path}&since={t + 1}"))["positions"] == []
    assert (await page(maker, f"{path}&until={t}"))["positions"] == []
    assert (await page(maker, f"{path}&market=ETH-PERP"))["positions"] == []
    await srv.assert_balanced()


async def test_liquidation_for_both_parties_and_the_liquidator(srv: Server) -> None:
    requester, maker, liquidator = srv.agent(), srv.agent(), srv.agent()
    await requester.fund("1000")
    await maker.fund("10000")
    await liquidator.fund("1")
    await srv.pin("BTC-PERP", "50000")
    pos = await open_position(requester, maker, size="1000", leverage=2, collateral="500")
    # -30 %: the long requester's equity 500 - 300 < IM / 2 = 250; the maker takes 300, the
    # liquidator min(5 % of 1000, 200) = 50, the requester keeps 150
    await srv.pin("BTC-PERP", "35000")
    done = await liquidator.ok("/trade/liquidate", {"position_id": pos["position_id"]})
    reward = done["reward_usdc"]
    assert reward == "50.000000"
    seen = {}
    for agent, role in ((requester, "requester"), (maker, "maker"), (liquidator, "liquidator")):
        items = (await page(agent, "/liquidations"))["liquidations"]
        assert len(items) == 1, (role, items)
        item = items[0]
        assert item["role"] == role and item["position_id"] == pos["position_id"]
        assert item["liquidator"] == liquidator.id and item["reward_usdc"] == reward
        assert item["price"] == "35000.00000000" and item["liquidated_side"] == "requester"
        seen[role] = item
    assert seen["liquidator"]["released_usdc"] == reward
    assert seen["requester"]["released_usdc"] == "150.000000"
    assert seen["maker"]["released_usdc"] == "800.000000"
    # the free balances moved by exactly those amounts (the requester paid a 0.5 fee)
    assert await requester.balances() == (usdc("1000") - usdc("500.5") + 150 * M, 0)
    assert await maker.balances() == (usdc("10000") + 300 * M, 0)
    assert await liquidator.balances() == (51 * M, 0)
    liquidated = await page(requester, f"/positions?agent_id={requester.id}&status=liquidated")
    assert [p["position_id"] for p in liquidated["positions"]] == [pos["position_id"]]
    # the liquidator was no party: its list of liquidated positions is empty
    theirs = await page(liquidator, f"/positions?agent_id={liquidator.id}&status=liquidated")
    assert theirs["positions"] == []
    await srv.assert_balanced()


async def test_time_and_market_filters_and_csv(srv: Server) -> None:
    requester, maker = srv.agent(), srv.agent()
    await requester.fund("100000")
    await maker.fund("100000")
    await srv.pin("BTC-PERP", "50000")
    await srv.pin("ETH-PERP", "3000")
    t0 = int(srv.clock())
    first = await open_position(requester, maker)
    srv.clock.advance(10)
    second = await open_position(requester, maker, market="ETH-PERP", rate="0.0007")
    srv.clock.advance(10)
    third = await open_position(requester, maker, duration="1h")
    ids = lambda items: [f["position_id"] for f in items]  # noqa: E731
    fills = (await page(requester, "/fills"))["fills"]
    assert ids(fills) == [first["position_id"], second["position_id"], third["position_id"]]
    assert ids((await page(requester, f"/fills?since={t0 + 10}"))["fills"]) == ids(fills[1:])
    assert ids((await page(requester, f"/fills?until={t0 + 10}"))["fills"]) == ids(fills[:1])
    window = f"/fills?since={t0 + 10}&until={t0 + 11}"
    assert ids((await page(requester, window))["fills"]) == ids(fills[1:2])
    assert ids((await page(requester, f"/fills?since={t0}&until={t0}"))["fills"]) == []
    btc = (await page(requester, "/fills?market=BTC-PERP"))["fills"]
    assert ids(btc) == [first["position_id"], third["position_id"]]
    # pages of one with the market filter: the cursor walks on
    one = await page(requester, "/fills?market=BTC-PERP&limit=1")
    assert ids(one["fills"]) == [first["position_id"]] and one["next_cursor"]
    two = await page(requester, f"/fills?market=BTC-PERP&limit=1&cursor={one['next_cursor']}")
    assert ids(two["fills"]) == [third["position_id"]] and two["next_cursor"] is None

    r = await requester.get("/fills?format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [list(row) for row in rows[:1]] == [list(fills[0])]  # the same fields, in order
    assert rows == [{k: str(v) for k, v in f.items()} for f in fills]
    r = await requester.get("/fills?format=csv&limit=2")
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 2
    cursor = r.headers["X-Next-Cursor"]
    rest = await requester.get(f"/fills?format=csv&cursor={cursor}")
    assert [row["position_id"] for row in csv.DictReader(io.StringIO(rest.text))] == ids(fills[2:])
    empty = await requester.get(f"/liquidations?format=csv&since={t0}&until={t0}")
    assert empty.text.splitlines() == [
        "position_id,market,role,liquidator,reward_usdc,price,liquidated_at,"
        "liquidated_side,released_usdc"
    ]

    # closed positions in csv: the position object's fields, parsed back equal
    await requester.ok("/trade/close", {"position_id": first["position_id"], "size_percent": 100})
    path = f"/positions?agent_id={requester.id}&status=closed"
    as_json = (await page(requester, path))["positions"]
    r = await requester.get(f"{path}&format=csv")
    assert r.headers["content-type"].startswith("text/csv")
    back = list(csv.DictReader(io.StringIO(r.text)))
    assert back == [{k: "" if v is None else str(v) for k, v in p.items()} for p in as_json]
    # csv works for the other lists of positions too
    r = await srv.http.get(f"/positions?agent_id={maker.id}&format=csv&market=ETH-PERP")
    assert [row["position_id"] for row in csv.DictReader(io.StringIO(r.text))] == [
        second["position_id"]
    ]


async def test_bad_input_is_refused_with_its_code_and_changes_nothing(srv: Server) -> None:
    requester, maker, other = srv.agent(), srv.agent(), srv.agent()
    await requester.fund("10000")
    await maker.fund("10000")
    await srv.pin("BTC-PERP", "50000")
    await open_position(requester, maker)
    await open_position(requester, maker)
    before = await srv.digest()
    cursor = (await page(requester, "/fills?limit=1"))["next_cursor"]
    funding_cursor = "ZnU6MQ"  # base64 of "fu:1": a cursor of the funding list
    cases = [
        ("/fills?cursor=nope!", 400, "invalid_request"),
        ("/fills?cursor=bm90LWEtY3Vyc29y", 400, "invalid_request"),
        (f"/fills?cursor={funding_cursor}", 400, "invalid_request"),
        (f"/funding?cursor={cursor}", 400, "invalid_request"),  # a fills cursor
        (f"/positions?agent_id={requester.id}&status=closed&cursor={cursor}", 400, None),
        ("/fills?limit=0", 400, "invalid_request"),
        ("/fills?limit=501", 400, "invalid_request"),
        ("/fills?limit=99999999999999999999", 400, "invalid_request"),
        ("/fills?limit=2.5", 400, "invalid_request"),
        ("/fills?limit=ten", 400, "invalid_request"),
        ("/fills?since=10&until=5", 400, "invalid_request"),
        ("/fills?since=-1", 400, "invalid_request"),
        ("/fills?until=soon", 400, "invalid_request"),
        ("/funding?market=DOGE-PERP", 400, "unknown_market"),
        ("/liquidations?format=xml", 400, "invalid_request"),
        (f"/fills?agent_id={other.id}", 403, "forbidden"),
        ("/positions?status=closed&since=10&until=5", 400, "invalid_request"),
        ("/positions?format=pdf", 400, "invalid_request"),
        ("/positions?market=NOPE", 400, "unknown_market"),
    ]
    for path, status, code in cases:
        r = await requester.get(path)
        assert r.status_code == status, (path, r.text)
        body = r.json()["error"]
        assert body["message"], path
        if code is not None:
            assert body["code"] == code, (path, body)
    # unsigned, stale, forged, and signed by someone else for this agent
    for path in ("/fills", "/funding", "/liquidations"):
        assert (await srv.http.get(path)).status_code == 401
        r = await srv.http.get(path, headers={"X-Agent-Id": requester.id, "X-Timestamp": "1"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        signed = await other.get(path)  # another agent: its own (empty) history, never ours
        assert signed.status_code == 200
        assert all(v == [] for k, v in signed.json().items() if k != "next_cursor")
        forged = sign_headers(requester.keypair, "GET", path, b"", timestamp_ms=requester.stamp())
        forged["X-Agent-Id"] = other.id  # requester's signature presented as the other's
        r = await srv.http.get(path, headers=forged)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert await srv.digest() == before
