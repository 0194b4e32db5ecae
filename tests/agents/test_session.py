"""The WebSocket session against the real daemon: typed events, quotes on the socket,
and resumption without loss or duplicates when connections are cut or the daemon restarts."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

import agents
from agents import (
    Client,
    Keypair,
    PositionOpenedEvent,
    QuoteAcceptedEvent,
    QuoteEvent,
    QuoteRejectedEvent,
    TradeRequestEvent,
)
from tests.agents.conftest import Proxy, clients, live_server, usdc
from tests.conftest import DEFAULT_PUBLIC_RATE, Clock, Server, base_config, start_server

ALL = ["BTC-PERP", "ETH-PERP", "SOL-PERP"]


async def _request(c: Client, market: str = "BTC-PERP", expires_in: int = 60) -> str:
    r = await c.request_trade(
        market, "long", usdc(100), leverage=5, max_funding_rate=1000, expires_in=expires_in
    )
    return r.request_id


@pytest.fixture
async def ladder(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """As ``live``, on a venue that lets a maker keep 5 live quotes on one request."""
    async with live_server(tmp_path, nursery, max_live_quotes_per_maker_request=5) as s:
        yield s


async def test_events_are_typed_and_quotes_go_over_the_socket(ladder: Server) -> None:
    async with clients(ladder.url, 2, fund=usdc(10_000)) as (requester, maker):
        async with (
            requester.subscribe(["BTC-PERP"]) as rs,
            maker.subscribe(["BTC-PERP"]) as ms,
        ):
            await _request(requester, "ETH-PERP")  # not subscribed: the maker never sees it
            rid = await _request(requester)
            seen = await ms.next_event()
            assert isinstance(seen, TradeRequestEvent) and seen.request.request_id == rid
            assert seen.request.size == usdc(100) and seen.request.agent_id == requester.agent_id

            qid = await ms.quote(rid, funding_rate=300, collateral=usdc(10), valid_for=30)
            with pytest.raises(agents.RateAboveMax) as info:
                await ms.quote(rid, funding_rate=5000, collateral=usdc(10))
            assert info.value.code == "rate_above_max"
            # Several quotes in flight at once are matched to their own answers.
            async with trio.open_nursery() as n:
                results: dict[int, str] = {}

                async def one(i: int) -> None:
                    try:
                        results[i] = await ms.quote(rid, funding_rate=i, collateral=usdc(2))
                    except agents.ApiError as exc:
                        results[i] = exc.code

                for i in (100, 200, 60_000, 400):
                    n.start_soon(one, i)
            assert results[60_000] == "invalid_request"
            assert all(results[i].startswith("quo_") for i in (100, 200, 400))

            kinds: list[type[agents.Event]] = []
            while len(kinds) < 5:  # its BTC request, then the four quotes that were taken
                ev = await rs.next_event()
                kinds.append(type(ev))
                if isinstance(ev, QuoteEvent) and ev.quote.quote_id == qid:
                    assert ev.quote.funding_rate == 300 and ev.quote.agent_id == maker.agent_id
            assert kinds == [TradeRequestEvent] + [QuoteEvent] * 4

            pos = await requester.accept(rid, qid)
            got = [await ms.next_event() for _ in range(5)]  # its 3 other quotes are rejected
            assert isinstance(got[0], QuoteAcceptedEvent) and got[0].position_id == pos.position_id
            assert [type(e) for e in got[1:4]] == [QuoteRejectedEvent] * 3
            assert isinstance(got[4], PositionOpenedEvent)
            assert got[4].position.maker_collateral == usdc(10)
            stats = ms.statistics()
            assert stats.connected and stats.connects == 1 and stats.last_seq == got[4].seq


async def test_since_replays_what_happened_before_subscribing(live: Server) -> None:
    async with clients(live.url, 1, fund=usdc(1_000)) as (a,):
        first = await _request(a)
        second = await _request(a, "SOL-PERP")
        async with a.subscribe(ALL, since=0) as s:
            replayed = [await s.next_event() for _ in range(2)]
        assert all(isinstance(e, TradeRequestEvent) for e in replayed)
        assert [e.data["request_id"] for e in replayed] == [first, second]
        async with a.subscribe(ALL) as s:  # default: from now on
            third = await _request(a)
            ev = await s.next_event()
            assert isinstance(ev, TradeRequestEvent) and ev.request.request_id == third


async def test_body_exceptions_come_out_unwrapped(live: Server) -> None:
    async with clients(live.url, 1) as (a,):
        with pytest.raises(KeyError):
            async with a.subscribe(ALL):
                raise KeyError("mine")


async def test_refused_auth_and_subscription_are_fatal(live: Server) -> None:
    async with Client(live.url, Keypair(), clock=lambda: time.time() - 60) as stale:
        with pytest.raises(agents.Unauthorized):
            async with stale.subscribe(ALL):
                pass
    async with clients(live.url, 1) as (a,):
        async with a.subscribe(["DOGE-PERP"]) as s:
            with pytest.raises(agents.UnknownMarket):
                await s.next_event()


async def _produce(cs: list[Client], watcher: Client, n: int, stop_cuts: trio.Event) -> None:
    """``n`` requests from ``cs`` on random markets, and quotes on the watcher's requests."""
    rng = random.Random(5)
    maker = cs[0]
    for i in range(n):
        c = rng.choice([*cs, watcher])
        try:
            rid = await _request(c, rng.choice(ALL), expires_in=30)
        except agents.TransportError:
            continue  # the watcher's calls cross the proxy too: a cut may take one
        if c is watcher and i % 3 == 0:
            await maker.quote(rid, funding_rate=10, collateral=usdc(10), valid_for=2)
        await trio.sleep(rng.uniform(0, 0.01))
    stop_cuts.set()


async def _drain(s: agents.Session, watcher: Client, into: list[int]) -> None:
    """Read until the session has every event ``GET /events`` shows the watcher."""
    expected = [e.seq for e in await watcher.events(0, limit=10_000)]
    with trio.fail_after(20):
        while not into or into[-1] < expected[-1]:
            into.append((await s.next_event()).seq)
    assert into == expected  # every event, in order, exactly once


async def test_cut_connections_resume_without_loss_or_duplicates(live: Server) -> None:
    proxy = Proxy(int(live.url.rsplit(":", 1)[1]))
    async with trio.open_nursery() as n:
        await n.start(proxy.run)
        async with (
            clients(live.url, 3, fund=usdc(100_000)) as producers,
            Client(proxy.url, Keypair()) as watcher,
        ):
            await watcher.faucet(usdc(100_000))
            received: list[int] = []
            cuts = 0
            async with watcher.subscribe(ALL, since=0, backoff_initial=0.05) as s:
                done = trio.Event()
                n.start_soon(_produce, producers, watcher, 150, done)
                while not done.is_set():
                    with trio.move_on_after(random.uniform(0.05, 0.3)):
                        while True:
                            received.append((await s.next_event()).seq)
                    cuts += proxy.cut()
                await _drain(s, watcher, received)
                stats = s.statistics()
            n.cancel_scope.cancel()
    assert cuts >= 3, "the test must really cut connections mid-stream"
    assert stats.connects >= 3 and stats.disconnects >= stats.connects - 1
    assert len(received) > 150


async def test_a_daemon_restart_is_resumed_from_the_last_seq(tmp_path: Path) -> None:
    config = base_config(tmp_path, **DEFAULT_PUBLIC_RATE)
    clock = Clock(real=True, start=time.time())

    async def daemon(
        stopped: trio.Event, *, task_status: trio.TaskStatus[Server] = trio.TASK_STATUS_IGNORED
    ) -> None:
        async with trio.open_nursery() as n:
            task_status.started(await start_server(n, config, clock))
        stopped.set()  # daemon.run has returned: the database is closed

    async def stop(server: Server, stopped: trio.Event) -> None:
        await server.http.aclose()
        server.shutdown.set()
        await stopped.wait()

    received: list[int] = []
    async with trio.open_nursery() as n:
        a_stopped = trio.Event()
        a: Server = await n.start(daemon, a_stopped)
        proxy = Proxy(int(a.url.rsplit(":", 1)[1]))
        await n.start(proxy.run)
        async with Client(proxy.url, Keypair()) as watcher:
            await watcher.faucet(usdc(10_000))
            async with watcher.subscribe(ALL, since=0, backoff_max=0.3) as s:
                for _ in range(5):
                    await _request(watcher)
                received += [(await s.next_event()).seq for _ in range(5)]
                await stop(a, a_stopped)  # the daemon closes the socket with 1001
                for _ in range(1000):
                    if not s.statistics().connected:
                        break
                    await trio.sleep(0.01)
                assert s.statistics().last_close_code == 1001

                b_stopped = trio.Event()
                b: Server = await n.start(daemon, b_stopped)
                proxy.upstream_port = int(b.url.rsplit(":", 1)[1])
                for _ in range(5):
                    await _request(watcher)
                await _drain(s, watcher, received)
                assert s.statistics().connects >= 2  # (a draining daemon may take one more)
            await stop(b, b_stopped)
        n.cancel_scope.cancel()
    assert len(received) == 10
