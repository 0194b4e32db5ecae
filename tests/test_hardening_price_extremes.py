"""Issue 8 finding 5: a price that moves 10^12× (BTC pinned at 0.00000001, then at
10,000) must not turn close or liquidate into a 500, nor kill the keeper, before or
after a restart; and one position that fails in the keeper must not stop the others."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from perpd.bounds import MAX_PRICE, PNL_LIMIT
from perpd.errors import OracleUnavailable
from perpd.markets import MARKETS
from perpd.oracle import PriceBook
from perpd.pyth import parse_latest
from perpd.sim_feed import SimulatedFeed
from perpd.units import format_usdc
from tests.conftest import Agent, Clock, Server, base_config, start_server
from tests.daemon_proc import daemon, open_position, verify

BIG = {"size_usdc": "1000000", "leverage": 50}  # N = 10^12 micro-USDC
COLLATERAL = "20000"


async def test_price_moving_1e12_times_closes_liquidates_and_survives_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "perpd.db"
    async with daemon(db, "--no-keeper") as d:
        agents = [d.agent() for _ in range(7)]
        for a in agents:
            await a.fund("100000")
        r1, m1, r2, m2, r3, m3, liquidator = agents
        assert (await d.pin("BTC-PERP", "0.00000001")).status_code == 200
        a = await open_position(r1, m1, "BTC-PERP", collateral=COLLATERAL, **BIG)
        b = await open_position(r2, m2, "BTC-PERP", collateral=COLLATERAL, **BIG)
        c = await open_position(r3, m3, "BTC-PERP", collateral=COLLATERAL, **BIG)
        assert a["entry_price"] == "0.00000001"
        assert (await d.pin("BTC-PERP", "10000")).status_code == 200

        # half of A: the PnL is exact (10^23 micro-USDC, far past 64 bits); what moves is
        # the pool, capped by the collateral on the table
        half = await r1.ok("/trade/close", {"position_id": a["position_id"], "size_percent": 50})
        n, p0, p = 10**12, 1, 10**12
        assert half["realized_pnl_usdc"] == format_usdc(n * 50 * (p - p0) // (100 * p0))
        assert half["released_usdc"] == "20000.000000"  # 10,000 of each collateral
        assert half["position"]["realized_pnl_usdc"] == format_usdc(PNL_LIMIT)  # saturated
        rest = await r1.ok("/trade/close", {"position_id": a["position_id"]})
        assert rest["position"]["status"] == "closed"
        assert rest["released_usdc"] == "20000.000000"

        liq = await liquidator.ok("/trade/liquidate", {"position_id": b["position_id"]})
        assert liq["position"]["status"] == "liquidated" and liq["liquidated_side"] == "maker"
        # the long requester took the maker's whole collateral: 20,000 + its own 20,000
        free, locked = await r2.balances()
        assert (free, locked) == (100_000_000_000 - 500_000_000 + 20_000_000_000, 0)

        view = await d.http.get(f"/positions/{c['position_id']}")
        assert view.status_code == 200 and view.json()["status"] == "open"
        assert (await d.http.get("/positions?status=closed")).status_code == 200

    # restarted with the keeper on, the open position that is past 64 bits of PnL gets
    # liquidated by the keeper, and the daemon stays up
    async with daemon(db, "--keeper-grace", "0") as d:
        with trio.fail_after(10):
            while True:
                pos = (await d.http.get(f"/positions/{c['position_id']}")).json()
                if pos["status"] == "liquidated":
                    break
                await trio.sleep(0.1)
        assert pos["liquidator"] == "keeper"
        metrics = (await d.http.get("/metrics")).text
        assert "perpd_watcher_failures 0" in metrics
        assert d.alive()
    code, out = await verify(db)
    assert code == 0 and "books balance" in out, out


async def test_keeper_isolates_a_position_that_fails(tmp_path: Path, mock_clock: MockClock) -> None:
    """A position whose liquidation raises (here: an account row edited by hand so that
    its locked balance no longer covers the position) is logged, counted and skipped;
    the keeper liquidates the others and the venue keeps running."""
    cfg = base_config(tmp_path, keeper=True, keeper_grace_s=0.0)
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, Clock(mock=True, start=time.time()))
        bad, good, (good_r, good_m) = await _damaged_pair(s, cfg.db)
        await s.pin("ETH-PERP", "2500")  # both long requesters are now under margin
        watcher = s.venue.services["watcher"]
        with trio.fail_after(10):
            while True:
                pos = (await s.http.get(f"/positions/{good['position_id']}")).json()
                if pos["status"] == "liquidated" and watcher.statistics()["failures"] >= 1:
                    break
                await trio.sleep(0.05)
        assert pos["liquidator"] == "keeper"
        stuck = (await s.http.get(f"/positions/{bad['position_id']}")).json()
        assert stuck["status"] == "open"
        assert watcher.statistics()["quarantined"] == 1
        await trio.sleep(1.5)  # skipped for a while, not retried every pass
        assert watcher.statistics()["failures"] <= 2
        # and the venue still trades
        assert (await s.http.get("/health")).status_code == 200
        await _open(good_r, good_m, BODY)
        await s.http.aclose()
        s.shutdown.set()


async def test_funding_isolates_a_position_that_fails(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    """The same damage on a position's requester: its funding settlement fails; the
    scheduler settles the others one by one, quarantines it and keeps running."""
    cfg = base_config(tmp_path, funding_period_s=2)
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, Clock(mock=True, start=time.time()))
        bad, good, (good_r, _) = await _damaged_pair(s, cfg.db)
        scheduler = s.venue.services["funding"]
        with trio.fail_after(10):
            while True:
                events = (await good_r.get("/events?since=0")).json()["events"]
                settled = [e for e in events if e["type"] == "funding_settled"]
                if len(settled) >= 2 and scheduler.statistics()["failures"] >= 1:
                    break
                await trio.sleep(0.1)
        assert {e["data"]["position_id"] for e in settled} == {good["position_id"]}
        stuck = (await s.http.get(f"/positions/{bad['position_id']}")).json()
        assert stuck["status"] == "open" and stuck["funding_paid_usdc"] == "0.000000"
        assert scheduler.statistics()["quarantined"] == 1
        assert (await s.http.get("/health")).status_code == 200
        await s.http.aclose()
        s.shutdown.set()


BODY = {"size_usdc": "1000", "leverage": 10}


async def _damaged_pair(
    s: Server, db: str
) -> tuple[dict[str, Any], dict[str, Any], tuple[Agent, Agent]]:
    """Two ETH positions (long requesters); the first's requester account is damaged by
    hand (an operator's, or a bug's): its locked balance no longer covers the position,
    so moving money out of it fails the table's CHECK. Returns (bad, good, good's pair)."""
    agents = [s.agent() for _ in range(4)]
    for a in agents:
        await a.fund("10000")
    bad_r, bad_m, good_r, good_m = agents
    await s.pin("ETH-PERP", "3000")
    bad = await _open(bad_r, bad_m, BODY)
    good = await _open(good_r, good_m, BODY)
    with sqlite3.connect(db) as raw:
        raw.execute(
            "UPDATE accounts SET free = free + locked, locked = 0 WHERE agent_id = ?",
            (bad_r.id,),
        )
    raw.close()
    return bad, good, (good_r, good_m)


async def _open(requester: Agent, maker: Agent, body: dict[str, Any]) -> dict[str, Any]:
    return await open_position(requester, maker, "ETH-PERP", **body)


def test_a_feed_price_past_the_bound_is_unusable() -> None:
    """Hermes int64 prices at exponent -5 reach 10^21 once normalised: recorded, but not
    usable (trading and liquidation wait), like a non-positive price."""
    feed_id = MARKETS["BTC-PERP"].feed_id
    entry = {"price": str(2**63 - 1), "conf": "1", "expo": -5, "publish_time": 1_000}
    [price] = parse_latest({"parsed": [{"id": feed_id, "price": entry}]}, {feed_id: "BTC-PERP"})
    assert price.price > MAX_PRICE
    book = PriceBook(["BTC-PERP"], clock=lambda: 1_000)
    book.update(price)
    with pytest.raises(OracleUnavailable, match="above the supported maximum"):
        book.usable("BTC-PERP")
    book.update(replace(price, price=MAX_PRICE, conf=0, publish_time=1_000))
    assert book.usable("BTC-PERP").price == MAX_PRICE


def test_the_simulated_walk_stays_within_the_price_bounds() -> None:
    book = PriceBook(["BTC-PERP"], clock=lambda: 1_000)
    feed = SimulatedFeed(book, seed=1, clock=lambda: 1_000)
    for start in (MAX_PRICE, 1):
        feed._walk["BTC-PERP"] = start
        for _ in range(2_000):
            feed.tick()
            assert 1 <= book.usable("BTC-PERP").price <= MAX_PRICE
