"""Issue 8, finding 3: bounded units of work, and pruning of finished rows.

- 12,000 requests sharing one expiry second expire in units of at most
  ``expiry_batch`` rows, and a call queued meanwhile runs between two of them;
- the accept's writer time with the cap of live quotes per request against 4,000
  would-be quotes (the issue measured 227 ms for those);
- finished requests and quotes are deleted after the retention, events stay, and
  nothing that reads them breaks (GET /requests/{id}, positions, verify, a restart).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from perpd import engine
from perpd.records import Quote, TradeRequest
from perpd.store import queries as q
from perpd.views import quote_view, request_view
from tests.conftest import Clock, Server, base_config, start_server

REQUEST = {
    "market": "BTC-PERP",
    "side": "long",
    "size_usdc": "100",
    "leverage": 10,
    "max_funding_rate": "0.001",
}


async def until(done: Callable[[], Awaitable[bool]], timeout: float) -> None:  # noqa: ASYNC109
    with trio.fail_after(timeout):
        while True:
            if await done():
                return
            await trio.sleep(0.01)


def seed_requests(
    conn: sqlite3.Connection, agent: str, n: int, now: int, expires_at: int
) -> list[str]:
    """``n`` open requests written directly (as if many agents had made them)."""
    ids = []
    for i in range(n):
        r = TradeRequest(
            f"req_seed{i:06d}",
            agent,
            "BTC-PERP",
            1,
            100_000_000,
            10,
            1000,
            None,
            now,
            expires_at,
            "open",
        )
        q.insert_request(conn, r)
        q.append_event(conn, now, "trade_request", request_view(r), market=r.market, public=True)
        ids.append(r.request_id)
    return ids


async def test_twelve_thousand_deadlines_in_one_second_expire_in_bounded_units(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = int(server.clock())
    await server.venue.store.write(lambda c: seed_requests(c, "seeder", 12_000, now, now + 5))
    units: list[tuple[int, float]] = []
    started = threading.Event()
    real = engine.expire_due

    def timed(conn: sqlite3.Connection, ctx: engine.Ctx) -> int:
        started.set()
        t = time.perf_counter()
        n = real(conn, ctx)
        units.append((n, time.perf_counter() - t))
        return n

    monkeypatch.setattr(engine, "expire_due", timed)
    honest = server.agent()
    await honest.fund("1000")
    server.clock.advance(10)

    async def began() -> bool:
        return started.is_set()

    await until(began, 10)
    await honest.ok("/trade/request", REQUEST, 201)  # queued behind at most one unit
    units_before_honest_done = len(units)

    async def all_expired() -> bool:
        return sum(n for n, _ in units) == 12_000

    await until(all_expired, 60)
    done = [n for n, _ in units if n]
    batch = server.venue.limits.expiry_batch
    assert sum(done) == 12_000 and max(done) <= batch
    assert len(done) >= 12_000 // batch
    assert units_before_honest_done < len(done)  # it ran between batches, not after all
    longest = max(t for _, t in units)
    print(f"expiry: {len(done)} units, longest {longest * 1000:.1f} ms")
    events = await server.venue.read(lambda c: q.count_events(c))
    assert events >= 24_000


def seed_quotes(conn: sqlite3.Connection, request_id: str, n: int, now: int) -> None:
    """``n`` live quotes by ``n`` makers written directly (today, nothing stops them)."""
    for i in range(n):
        qt = Quote(
            f"quo_{request_id[4:]}_{i:05d}",
            request_id,
            f"maker{i}",
            0,
            10_000_000,
            now,
            now + 60,
            "live",
        )
        q.insert_quote(conn, qt)
        q.append_event(
            conn, now, "quote", quote_view(qt), market="BTC-PERP", audience=["requester"]
        )


async def test_accept_writer_time_with_the_cap_against_four_thousand_quotes(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    requester, maker, late = server.agent(), server.agent(), server.agent()
    for a in (requester, maker, late):
        await a.fund("100000")
    await server.pin("BTC-PERP", "50000")
    cap = server.venue.limits.max_live_quotes_per_request
    times: list[float] = []
    real = engine.accept

    def timed(conn: sqlite3.Connection, ctx: engine.Ctx, **kw: Any) -> Any:
        t = time.perf_counter()
        out = real(conn, ctx, **kw)
        times.append(time.perf_counter() - t)
        return out

    monkeypatch.setattr(engine, "accept", timed)
    now = int(server.clock())
    rejected = []
    for others in (cap - 1, 3999):  # the cap, and the 4,000 (seeded past the cap)
        rid = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        quote = {"request_id": rid, "funding_rate": "0", "collateral_usdc": "10"}
        qid = (await maker.ok("/trade/quote", quote, 201))["quote_id"]
        await server.venue.store.write(lambda c, rid=rid, n=others: seed_quotes(c, rid, n, now))
        r = await late.post("/trade/quote", quote)  # the request is full
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        await requester.ok("/trade/accept", {"request_id": rid, "quote_id": qid})
        rejected.append(
            await server.venue.read(lambda c, rid=rid: len(q.quotes_of_request(c, rid, "rejected")))
        )
    assert rejected == [cap - 1, 3999]
    capped, flood = times
    print(
        f"accept writer time: {cap} quotes {capped * 1000:.1f} ms, "
        f"4,000 quotes {flood * 1000:.1f} ms"
    )
    assert capped < flood / 5
    await server.assert_balanced()


async def test_finished_requests_and_quotes_are_pruned_after_the_retention(
    tmp_path: Path, mock_clock: MockClock
) -> None:
    clock = Clock()
    cfg = base_config(tmp_path, retention_s=600, prune_interval_s=0.05, prune_batch=2)
    async with trio.open_nursery() as nursery:
        s = await start_server(nursery, cfg, clock)
        requester, maker, other = s.agent(), s.agent(), s.agent()
        for a in (requester, maker, other):
            await a.fund("100000")
        await s.pin("BTC-PERP", "50000")
        filled = (await requester.ok("/trade/request", REQUEST, 201))["request_id"]
        q1 = (
            await maker.ok(
                "/trade/quote",
                {"request_id": filled, "funding_rate": "0", "collateral_usdc": "10"},
                201,
            )
        )["quote_id"]
        await other.ok(
            "/trade/quote",
            {"request_id": filled, "funding_rate": "0.0001", "collateral_usdc": "10"},
            201,
        )  # to be rejected
        pos = (await requester.ok("/trade/accept", {"request_id": filled, "quote_id": q1}))[
            "position"
        ]
        expired = [
            (await requester.ok("/trade/request", {**REQUEST, "expires_in": 5}, 201))["request_id"]
            for _ in range(4)
        ]
        await maker.ok(
            "/trade/quote",
            {
                "request_id": expired[0],
                "funding_rate": "0",
                "collateral_usdc": "10",
                "valid_for": 5,
            },
            201,
        )
        clock.advance(10)
        await s.expired()
        await s.pin("BTC-PERP", "50000")
        events_before = await s.venue.read(q.count_events)
        clock.advance(640)  # past the retention, counted from each deadline
        await s.pin("BTC-PERP", "50000")
        young = (await requester.ok("/trade/request", {**REQUEST, "expires_in": 300}, 201))[
            "request_id"
        ]
        await maker.ok(
            "/trade/quote",
            {"request_id": young, "funding_rate": "0", "collateral_usdc": "10", "valid_for": 60},
            201,
        )

        def rows(c: sqlite3.Connection) -> tuple[int, int]:
            return (
                c.execute("SELECT count(*) FROM requests").fetchone()[0],
                c.execute("SELECT count(*) FROM quotes").fetchone()[0],
            )

        async def pruned() -> bool:
            return await s.venue.read(rows) == (1, 1)  # the young request and its quote

        await until(pruned, 10)
        assert s.venue.services["pruner"].statistics()["units"] >= 3  # batches of 2
        gone = await s.http.get(f"/requests/{filled}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
        assert (await s.http.get(f"/requests/{young}")).json()["status"] == "open"
        body = (await s.http.get(f"/positions/{pos['position_id']}")).json()
        assert body["request_id"] == filled and body["status"] == "open"
        # the log keeps what was announced
        assert await s.venue.read(q.count_events) == events_before + 2  # young request, quote
        evs = (await requester.get("/events?since=0")).json()["events"]
        assert filled in [e["data"].get("request_id") for e in evs if e["type"] == "trade_request"]
        await s.assert_balanced()
        await s.http.aclose()
        s.shutdown.set()

    async with trio.open_nursery() as nursery:  # a restart on the pruned file
        s = await start_server(nursery, cfg, clock)
        await s.pin("BTC-PERP", "50000")
        r2 = s.agent(requester.keypair)
        closed = await r2.ok("/trade/close", {"position_id": pos["position_id"]})
        assert closed["position"]["status"] == "closed"
        await s.assert_balanced()
        await s.http.aclose()
        s.shutdown.set()
