"""The nursery's services against the real daemon: expiry, funding, term, keeper, restarts.

Every test runs under trio's autojump clock (`mock_clock`), the daemon on a clock that
follows it: the services' sleeps, the 2 s funding periods and the grace periods take no
real time, and the deadlines they assert are exact to trio's clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tests.conftest import T0, Agent, Clock, Server, base_config, start_server, usdc
from tests.wsclient import connect

M = 1_000_000
REQUEST = {
    "market": "SOL-PERP",
    "side": "long",
    "size_usdc": "1000",
    "leverage": 10,
    "max_funding_rate": "0.02",
}


async def open_position(
    s: Server, requester: Agent, maker: Agent, *, rate: str = "0.01", **extra: object
) -> dict[str, object]:
    rid = (await requester.ok("/trade/request", {**REQUEST, **extra}, 201))["request_id"]
    qid = (
        await maker.ok(
            "/trade/quote", {"request_id": rid, "funding_rate": rate, "collateral_usdc": "100"}, 201
        )
    )["quote_id"]
    return (await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid}))["position"]


@pytest.fixture
async def live(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A daemon on a clock that follows trio's (a test's `mock_clock`) with a 2 s
    funding period and the keeper on."""
    cfg = base_config(tmp_path, funding_period_s=2, keeper=True, keeper_grace_s=0.0)
    s = await start_server(nursery, cfg, Clock(mock=True, start=time.time()))
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def test_request_expires_with_nobody_quoting(live: Server, mock_clock: MockClock) -> None:
    requester, watcher = live.agent(), live.agent()
    await requester.fund("1000")
    await live.pin("SOL-PERP", "150")
    async with connect(live.url, watcher) as (ws, _):
        await ws.subscribe(["SOL-PERP"])
        rid = (await requester.ok("/trade/request", {**REQUEST, "expires_in": 1}, 201))[
            "request_id"
        ]
        assert (await ws.until("trade_request"))["data"]["request_id"] == rid
        started = trio.current_time()
        expired = await ws.until("request_expired", timeout=4)
        assert expired["data"] == {"request_id": rid, "market": "SOL-PERP"}
        assert trio.current_time() - started < 2.5
    assert (await live.http.get(f"/requests/{rid}")).json()["status"] == "expired"


async def test_funding_every_two_seconds_pays_the_exact_amount(
    live: Server, mock_clock: MockClock
) -> None:
    requester, maker = live.agent(), live.agent()
    await requester.fund("1000")
    await maker.fund("1000")
    await live.pin("SOL-PERP", "150")
    async with connect(live.url, maker) as (ws, _):
        await ws.subscribe([])
        pos = await open_position(live, requester, maker, rate="0.01")
        opened_at = pos["opened_at"]
        assert isinstance(opened_at, int)
        paid, last = 0, opened_at
        for _ in range(2):
            ev = (await ws.until("funding_settled", timeout=5))["data"]
            assert ev["payer"] == requester.id and ev["receiver"] == maker.id
            # due(t) = trunc(N × f × (t − t_base) / (10^6 × T)) = 1000e6 × 10 000 × dt / 2e6
            due = 1000 * M * 10_000 * (ev["settled_to"] - opened_at) // (M * 2)
            assert usdc(ev["amount_usdc"]) == due - paid
            assert ev["settled_to"] % 2 == 0 and ev["settled_to"] > last
            paid, last = due, ev["settled_to"]
    body = (await live.http.get(f"/positions/{pos['position_id']}")).json()
    settled = usdc(body["funding_paid_usdc"])
    assert settled >= paid
    assert usdc(body["requester_collateral_usdc"]) == 100 * M - settled
    assert usdc(body["maker_collateral_usdc"]) == 100 * M + settled
    await live.assert_balanced()


async def test_watcher_liquidates_after_a_price_move(live: Server, mock_clock: MockClock) -> None:
    requester, maker = live.agent(), live.agent()
    await requester.fund("1000")
    await maker.fund("1000")
    await live.pin("SOL-PERP", "150")
    pos = await open_position(live, requester, maker, rate="0")
    fees_before = (await live.books())["fees"]
    async with connect(live.url, requester) as (ws, _):
        await ws.subscribe([])
        await live.pin("SOL-PERP", "136")  # pnl = −1000 × 14/150 = −93.33: Er = 6.67 < 50
        ev = (await ws.until("liquidation", timeout=5))["data"]
    assert ev["position_id"] == pos["position_id"]
    assert ev["liquidator"] == "keeper" and ev["status"] == "liquidated"
    # reward = min(5% × 1000, 100 − 93.333334) = 6.666666 → the fee account
    assert ev["reward_usdc"] == "6.666666"
    assert (await live.books())["fees"] - fees_before == 6_666_666
    await live.assert_balanced()


async def test_term_position_closes_itself_at_expiry(
    tmp_path: Path, nursery: trio.Nursery, mock_clock: MockClock
) -> None:
    clock = Clock()
    s = await start_server(nursery, base_config(tmp_path), clock)
    requester, maker = s.agent(), s.agent()
    await requester.fund("1000")
    await maker.fund("1000")
    await s.pin("SOL-PERP", "150")
    pos = await open_position(s, requester, maker, rate="0", duration="1h")
    assert pos["expires_at"] == pos["opened_at"] + 3600
    await s.pin("SOL-PERP", "153")
    clock.advance(3600)
    await s.pin("SOL-PERP", "153")  # keep the pinned price fresh on the moved clock
    with trio.fail_after(5):
        while True:
            body = (await s.http.get(f"/positions/{pos['position_id']}")).json()
            if body["status"] == "closed":
                break
            await trio.sleep(0.05)
    assert body["exit_price"] == "153.00000000"
    assert body["realized_pnl_usdc"] == "20.000000"  # 1000 × 3/150
    # requester: 1000 − 100 − 0.5 fee + 100 + 20
    assert await requester.balances() == (1019_500_000, 0)
    await s.assert_balanced()
    await s.http.aclose()


async def test_restart_mid_request_expires_it_and_catches_up_funding(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    clock = Clock()
    cfg = base_config(tmp_path)
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, clock)
        requester, maker = s.agent(), s.agent()
        await requester.fund("1000")
        await maker.fund("1000")
        await s.pin("SOL-PERP", "150")
        pos = await open_position(s, requester, maker, rate="0.001")
        rid = (await requester.ok("/trade/request", {**REQUEST, "expires_in": 30}, 201))[
            "request_id"
        ]
        qid = (
            await maker.ok(
                "/trade/quote",
                {
                    "request_id": rid,
                    "funding_rate": "0.001",
                    "collateral_usdc": "100",
                    "valid_for": 60,
                },
                201,
            )
        )["quote_id"]
        await s.http.aclose()
        s.shutdown.set()

    # down for three funding periods and more: the request's and quote's deadlines pass
    clock.advance(3 * 28_800)
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, clock)
        r2, m2 = (s.agent(a.keypair) for a in (requester, maker))
        assert (await s.http.get(f"/requests/{rid}")).json()["status"] == "expired"
        types = [e["type"] for e in (await r2.get("/events?since=0")).json()["events"]]
        assert "request_expired" in types and "quote_expired" in types
        await s.pin("SOL-PERP", "150")
        late = await r2.post("/trade/accept", {"request_id": rid, "quote_id": qid})
        assert late.status_code == 409 and late.json()["error"]["code"] == "request_expired"

        # funding caught up in one settlement, exactly: opened at T0 + 100; without a chain
        # to the last boundary T0 + 3 × 28 800, due = 1000e6 × 1000 × (86 400 − 100)
        # / (1e6 × 28 800) = 2 996 527 (truncated); with one to the crank's time (the
        # program's Clock, T0 + 100 + 86 400: Chain submitter decisions), 3 000 000
        off_chain = s.chain["mode"] == "none"
        to, due = (T0 + 3 * 28_800, 2_996_527) if off_chain else (T0 + 86_500, 3_000_000)
        settled = [
            e["data"]
            for e in (await m2.get("/events?since=0")).json()["events"]
            if e["type"] == "funding_settled"
        ]
        assert len(settled) == 1
        assert settled[0]["settled_to"] == to
        assert usdc(settled[0]["amount_usdc"]) == 1000 * M * 1000 * (to - T0 - 100) // (M * 28_800)
        assert usdc(settled[0]["amount_usdc"]) == due
        await trio.sleep(0.3)  # the scheduler runs again: nothing is charged twice
        body = (await s.http.get(f"/positions/{pos['position_id']}")).json()
        assert usdc(body["funding_paid_usdc"]) == due
        await s.assert_balanced()
        await s.http.aclose()
        s.shutdown.set()
