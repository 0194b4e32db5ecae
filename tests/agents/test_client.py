"""Every REST call through the SDK against the real daemon: typed results, exact money,
and each refusal raised as the exception class of its SPEC code."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio

import agents
from agents import Client, Keypair, parse_price, parse_rate
from tests.agents.conftest import usdc
from tests.conftest import Server


@pytest.fixture
async def trio_clients(server: Server) -> AsyncIterator[tuple[Client, Client, Client]]:
    """Requester, maker and a third agent, on the daemon's (frozen) clock, 10 000 USDC each."""
    made = [Client(server.url, Keypair(), clock=server.clock) for _ in range(3)]
    for c in made:
        await c.faucet(usdc(10_000))
    yield made[0], made[1], made[2]
    for c in made:
        await c.aclose()


async def test_full_lifecycle_with_exact_balances(
    server: Server, trio_clients: tuple[Client, Client, Client]
) -> None:
    requester, maker, other = trio_clients
    await requester.set_price("BTC-PERP", parse_price("50000"))
    req = await requester.request_trade(
        "BTC-PERP", "long", usdc(1000), leverage=10, max_funding_rate=parse_rate("0.001")
    )
    assert req.status == "open" and req.agent_id == requester.agent_id
    assert [r.request_id for r in await other.open_requests("BTC-PERP")] == [req.request_id]
    assert (await other.trade_request(req.request_id)).size == usdc(1000)

    q1 = await maker.quote(req.request_id, funding_rate=500, collateral=usdc(200), valid_for=30)
    q2 = await other.quote(req.request_id, funding_rate=800, collateral=usdc(100), valid_for=30)
    assert {q.quote_id for q in await requester.quotes(req.request_id)} == {
        q1.quote_id,
        q2.quote_id,
    }
    position = await requester.accept(req.request_id, q1.quote_id)
    assert position.maker == maker.agent_id and position.entry_price == parse_price("50000")
    assert position.funding_rate == 500 and position.requester_collateral == usdc(100)
    # IMr = 100, open fee = 0.5
    assert (await requester.balances()).free == usdc("9899.5")
    assert (await maker.balances()).locked == usdc(200)
    assert (await other.balances()).locked == 0

    server.clock.advance(3600)
    await requester.set_price("BTC-PERP", parse_price("52000"))
    assert (await requester.position(position.position_id)).unrealized_pnl == usdc(40)
    half = await requester.close(position.position_id, 50)
    # Same figures as tests/test_lifecycle_http.py: funding 0.0625 then half closed.
    assert half.realized_pnl == usdc(20) and half.released == usdc("69.96875")
    assert half.position.size == usdc(500) and half.position.is_open
    full = await requester.close(position.position_id)
    assert full.position.status == "closed"
    with pytest.raises(agents.PositionNotOpen) as exc:
        await requester.close(position.position_id)
    assert exc.value.code == "position_not_open" and exc.value.status == 409

    mine = await maker.my_positions(status="closed")
    assert [p.position_id for p in mine] == [position.position_id]
    assert await maker.my_positions() == []
    events = await requester.events()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["trade_request", "quote"] and "position_closed" in kinds
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert [e.type for e in await requester.events(since=events[-1].seq)] == []
    await server.assert_balanced()


async def test_withdraw_markets_health_metrics_openapi(
    trio_clients: tuple[Client, Client, Client],
) -> None:
    requester, _, _ = trio_clients
    after = await requester.withdraw(usdc("0.000001"))
    assert after.free == usdc(10_000) - 1
    markets = {m.market: m for m in await requester.markets()}
    assert set(markets) == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
    assert markets["SOL-PERP"].max_leverage == 20 and markets["SOL-PERP"].index == 2
    assert markets["BTC-PERP"].min_collateral(usdc(1000)) == usdc(20)
    assert (await requester.market("ETH-PERP")).price_source == "simulated"
    assert (await requester.health())["status"] in ("ok", "degraded")
    assert "perpd_ledger_deposits_micro_usdc" in await requester.metrics()
    assert (await requester.openapi())["openapi"].startswith("3")
    stats = requester.statistics()
    assert stats.calls >= 5 and stats.refused == 0


async def test_refusals_raise_their_spec_exception(
    server: Server, trio_clients: tuple[Client, Client, Client]
) -> None:
    requester, maker, other = trio_clients
    await requester.set_price("BTC-PERP", parse_price("50000"))

    async def refused(cls: type[agents.ApiError], call: object) -> agents.ApiError:
        with pytest.raises(cls) as info:
            await call  # type: ignore[misc]
        return info.value

    await refused(
        agents.UnknownMarket,
        requester.request_trade("DOGE-PERP", "long", 1, leverage=1, max_funding_rate=0),
    )
    await refused(
        agents.LeverageTooHigh,
        requester.request_trade("SOL-PERP", "long", usdc(10), leverage=21, max_funding_rate=0),
    )
    await refused(
        agents.InvalidRequest,
        requester.request_trade("BTC-PERP", "long", usdc(10), leverage=2, max_funding_rate=60_000),
    )
    await refused(
        agents.InsufficientCollateral,
        requester.request_trade("BTC-PERP", "long", usdc(10**6), leverage=1, max_funding_rate=0),
    )
    req = await requester.request_trade(
        "BTC-PERP", "short", usdc(100), leverage=5, max_funding_rate=100, expires_in=5
    )
    await refused(
        agents.SelfQuote, requester.quote(req.request_id, funding_rate=0, collateral=usdc(10))
    )
    await refused(
        agents.RateAboveMax, maker.quote(req.request_id, funding_rate=101, collateral=usdc(10))
    )
    low = await refused(
        agents.InsufficientCollateral,
        maker.quote(req.request_id, funding_rate=0, collateral=usdc(1)),
    )
    assert low.status == 422
    await refused(agents.NotFound, maker.quote("req_nope", funding_rate=0, collateral=usdc(10)))
    q = await maker.quote(req.request_id, funding_rate=-50, collateral=usdc(10))
    await refused(agents.Forbidden, other.accept(req.request_id, q.quote_id))
    pos = await requester.accept(req.request_id, q.quote_id)
    assert pos.funding_rate == -50
    await refused(agents.RequestFilled, requester.accept(req.request_id, q.quote_id))
    await refused(agents.Forbidden, maker.close(pos.position_id))
    await refused(agents.NotLiquidatable, other.liquidate(pos.position_id))
    await refused(agents.InsufficientCollateral, other.withdraw(usdc(10**6)))

    late = await requester.request_trade(
        "BTC-PERP", "long", usdc(100), leverage=5, max_funding_rate=100, expires_in=5
    )
    server.clock.advance(6)
    expired = await refused(
        agents.RequestExpired, maker.quote(late.request_id, funding_rate=0, collateral=usdc(10))
    )
    assert isinstance(expired, agents.Conflict) and expired.code == "request_expired"
    await server.assert_balanced()


async def test_a_wrong_clock_is_unauthorized(server: Server) -> None:
    async with Client(server.url, Keypair(), clock=lambda: server.clock() - 31) as late:
        with pytest.raises(agents.Unauthorized):
            await late.balances()


async def test_an_unreachable_daemon_is_a_transport_error() -> None:
    async with Client("http://127.0.0.1:9", Keypair(), timeout=2) as nowhere:
        with pytest.raises(agents.TransportError) as info:
            await nowhere.markets()
    assert isinstance(info.value.__cause__, httpx.HTTPError)


async def test_a_non_json_answer_is_a_protocol_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="<html>hello</html>")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://x")
    async with http, Client("http://x", Keypair(), http=http) as c:
        with pytest.raises(agents.ProtocolError):
            await c.markets()
    await trio.lowlevel.checkpoint()
