"""Issue 13's funding curve: ``GET /markets`` shows, per market and term, the best live
quoted rate, the live quote count and the last fill; a public ``funding_curve`` event
reaches market subscribers when it moves, at most once per second per market."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import trio

from perpd.funding_curve import CurveBook
from perpd.records import Event
from perpd.store.history import CurveSnapshot
from perpd.units import format_rate
from perpd.views import duration_name
from tests.conftest import Agent, Clock, Server, base_config, funded, start_server
from tests.wsclient import connect


async def request(agent: Agent, duration: str, market: str = "BTC-PERP") -> str:
    body = {
        "market": market,
        "side": "long",
        "size_usdc": "1000",
        "leverage": 10,
        "max_funding_rate": "0.01",
        "duration": duration,
        "expires_in": 120,
    }
    return (await agent.ok("/trade/request", body, 201))["request_id"]  # type: ignore[no-any-return]


async def quote(maker: Agent, request_id: str, rate: str, valid_for: int = 60) -> str:
    body = {
        "request_id": request_id,
        "agent_id": maker.id,
        "funding_rate": rate,
        "collateral_usdc": "100",
        "valid_for": valid_for,
    }
    return (await maker.ok("/trade/quote", body, 201))["quote_id"]  # type: ignore[no-any-return]


async def curve(s: Server, market: str = "BTC-PERP") -> list[dict[str, Any]]:
    markets = (await s.http.get("/markets")).json()["markets"]
    return next(m["funding_curve"] for m in markets if m["market"] == market)  # type: ignore[no-any-return]


def point(
    duration: str,
    best: str | None,
    live: int,
    last: str | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    return {
        "duration": duration,
        "best_rate": best,
        "live_quotes": live,
        "last_filled_rate": last,
        "last_filled_at": at,
    }


async def test_curve_shows_best_rates_per_term_and_last_fill(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    config = base_config(tmp_path, funding_curve_events=True)
    clock = Clock()
    s = await start_server(nursery, config, clock)
    r1, r2, r3, m1, m2 = await funded(s, 5)
    await s.pin("BTC-PERP", "50000")
    assert await curve(s) == []
    perp, day, hour = (
        await request(r1, "perpetual"),
        await request(r2, "24h"),
        await request(r3, "1h"),
    )
    await quote(m1, perp, "0.0008")
    best = await quote(m2, perp, "0.0005")
    await quote(m1, day, "0.001")
    await quote(m2, hour, "-0.0002", valid_for=5)
    assert await curve(s) == [
        point("perpetual", "0.0005", 2),
        point("1h", "-0.0002", 1),
        point("24h", "0.001", 1),
    ]
    assert await curve(s, "ETH-PERP") == []

    opened = (await r1.ok("/trade/accept", {"request_id": perp, "quote_id": best}))["position"]
    filled = point("perpetual", None, 0, "0.0005", opened["opened_at"])
    assert await curve(s) == [filled, point("1h", "-0.0002", 1), point("24h", "0.001", 1)]

    clock.advance(6)  # the 1h quote's deadline passes: it leaves the curve at once
    assert await curve(s) == [filled, point("24h", "0.001", 1)]
    await s.expired()
    assert await curve(s) == [filled, point("24h", "0.001", 1)]

    # a restart rebuilds the same curve from the database
    before = await curve(s)
    await s.http.aclose()
    s.shutdown.set()
    await trio.sleep(0.5)
    again = await start_server(nursery, config, clock)
    try:
        assert await curve(again) == before
    finally:
        await again.http.aclose()
        again.shutdown.set()


async def test_funding_curve_event_arrives_on_a_socket_and_is_throttled(
    tmp_path: Path, nursery: trio.Nursery
) -> None:
    server = await start_server(nursery, base_config(tmp_path, funding_curve_events=True))
    watcher, requester, *makers = await funded(server, 8)
    rid = await request(requester, "perpetual")
    got: list[tuple[float, dict[str, Any]]] = []

    async with connect(server.url, watcher) as (ws, _):
        await ws.subscribe(["BTC-PERP"])

        async def listen() -> None:
            while True:
                msg = await ws.recv(timeout=30)
                if msg["type"] == "funding_curve":
                    got.append((trio.current_time(), msg))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(listen)
            # six quotes over ~1.5 s, each a new best: the curve moves six times
            for i, maker in enumerate(makers):
                await quote(maker, rid, f"0.00{9 - i}")
                await trio.sleep(0.25)
            await trio.sleep(1.5)  # the last move is sent within a second
            nursery.cancel_scope.cancel()

    assert 2 <= len(got) <= 3, [m["data"] for _, m in got]
    gaps = [b[0] - a[0] for a, b in zip(got, got[1:], strict=False)]
    assert all(gap >= 0.9 for gap in gaps), gaps
    last = got[-1][1]
    assert last["data"]["market"] == "BTC-PERP"
    assert last["data"]["funding_curve"] == [point("perpetual", "0.004", 6)]
    assert last["data"]["funding_curve"] == await curve(server)
    # the events are in the log like any other (a watcher resumes them with since)
    events = (await watcher.get("/events?limit=10000")).json()["events"]
    logged = [e for e in events if e["type"] == "funding_curve"]
    assert [e["seq"] for e in logged] == [m["seq"] for _, m in got]
    # each names its market (public events go to that market's subscribers)
    assert all(e["market"] == "BTC-PERP" for e in logged)
    await server.http.aclose()
    server.shutdown.set()


async def test_without_events_the_curve_still_shows(server: Server) -> None:
    requester, maker = await funded(server, 2)
    rid = await request(requester, "24h")
    await quote(maker, rid, "0.002")
    assert await curve(server) == [point("24h", "0.002", 1)]
    await trio.sleep(1.2)
    events = (await requester.get("/events?limit=10000")).json()["events"]
    assert "funding_curve" not in {e["type"] for e in events}


def test_the_book_agrees_with_a_scan_through_adds_removals_and_deadlines() -> None:
    """The heaps with lazy removal (and their rebuilds) against a brute-force scan."""
    rng = random.Random(13)
    book = CurveBook()
    terms = [None, 3600, 86400]
    book.load(CurveSnapshot(0, [(f"r{i}", "BTC-PERP", terms[i % 3]) for i in range(50)], [], []))
    live: dict[str, tuple[int | None, int, int]] = {}  # quote: term, rate, deadline
    seq, now = 0, 1000
    for step in range(3000):
        seq += 1
        if live and rng.random() < 0.45:
            qid = rng.choice(sorted(live))
            kind = rng.choice(["quote_accepted", "quote_rejected", "quote_expired"])
            book.apply([Event(seq, now, kind, "BTC-PERP", False, (), {"quote_id": qid})])
            del live[qid]
        else:
            r = rng.randrange(50)
            qid, rate, deadline = f"q{step}", rng.randrange(-500, 500), now + rng.randrange(1, 40)
            data = {"quote_id": qid, "request_id": f"r{r}", "funding_rate": format_rate(rate),
                    "expires_at": deadline}  # fmt: skip
            book.apply([Event(seq, now, "quote", "BTC-PERP", False, (), data)])
            live[qid] = (terms[r % 3], rate, deadline)
        now += rng.choice([0, 0, 1])
        live = {k: v for k, v in live.items() if v[2] > now}
        want = []
        for t in terms:
            rates = [rate for term, rate, _ in live.values() if term == t]
            if rates:
                want.append((duration_name(t), format_rate(min(rates)), len(rates)))
        got = [
            (p["duration"], p["best_rate"], p["live_quotes"]) for p in book.curve("BTC-PERP", now)
        ]
        assert got == want, step
