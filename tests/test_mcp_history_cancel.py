"""`perpd mcp`'s tools over issue 13's endpoints (/work/brief/issue13-contract.md):
``history`` (GET /fills, /funding, /liquidations, paged), ``cancel_quote``
(POST /trade/quote/cancel) and the funding curve in ``markets`` (GET /markets).

These endpoints are built on the i13 branches; on the mcp branch alone these tests fail
(404 from the daemon) until the merge.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from mcp import Client as McpClient

from agents import MICRO, Client, Keypair, parse_rate, parse_usdc
from tests.conftest import Clock, Server, base_config, start_server
from tests.mcp_venue import TRADE, accept_best, call, funded_agent, maker, refused, stdio

PERIOD_S = 2


@pytest.fixture
async def live(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Server]:
    """A daemon on the wall clock with a 2 s funding period, so funding is paid in-test."""
    config = base_config(tmp_path, funding_period_s=PERIOD_S)
    s = await start_server(nursery, config, Clock(real=True, start=time.time()))
    yield s
    await s.http.aclose()
    s.shutdown.set()


async def first_page(mcp: McpClient, kind: str) -> list[dict[str, Any]]:
    """The first non-empty page of history ``kind``, within 15 s."""
    with trio.fail_after(15):
        while True:
            page = (await call(mcp, "history", kind=kind))[kind]
            if page:
                return page  # type: ignore[no-any-return]
            await trio.sleep(0.5)


async def test_history_fills_funding_liquidations_paged(live: Server, tmp_path: Path) -> None:
    key, config, _ = await funded_agent(live, tmp_path)
    async with maker(live.url) as mm, McpClient(stdio(live.url, key, config)) as mcp:
        for market in ("BTC-PERP", "ETH-PERP"):
            asked = await call(
                mcp, "ask_quotes", market=market, size_usdc="500", enough_quotes=1, **TRADE
            )
            await accept_best(mcp, asked)
        fills, cursor, pages = [], None, 0
        while True:  # one fill a page, walked to the end
            page = await call(mcp, "history", kind="fills", limit=1, cursor=cursor)
            fills += page["fills"]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(fills) == 2 and pages >= 2
        assert {f["market"] for f in fills} == {"BTC-PERP", "ETH-PERP"}
        assert all(f["role"] == "requester" and f["side"] == "long" for f in fills)
        assert all(f["size_usdc"] == "500.000000" for f in fills)
        only_eth = await call(mcp, "history", kind="fills", market="ETH-PERP")
        assert [f["market"] for f in only_eth["fills"]] == ["ETH-PERP"]

        paid = (await first_page(mcp, "funding"))[0]  # a period or two: the long pays
        assert paid["direction"] == "paid" and paid["market"] in ("BTC-PERP", "ETH-PERP")
        assert 0 < parse_usdc(paid["amount_usdc"]) <= 1 * MICRO  # 0.002 x 500 a whole period

        await live.pin("BTC-PERP", "52000")  # -13 %: the 5x long is under maintenance
        liquidation = (await first_page(mcp, "liquidations"))[0]  # the maker liquidates it
        assert liquidation["market"] == "BTC-PERP" and liquidation["role"] == "requester"
        assert liquidation["liquidator"] == mm.agent_id


async def test_quote_then_cancel_and_the_funding_curve(live: Server, tmp_path: Path) -> None:
    key, config, keypair = await funded_agent(live, tmp_path)
    me = str(keypair.pubkey())
    async with (
        Client(live.url, Keypair()) as requester,
        McpClient(stdio(live.url, key, config)) as mcp,
    ):
        await requester.faucet(10_000 * MICRO)
        request = await requester.request_trade(
            "BTC-PERP", "long", 1_000 * MICRO, leverage=5, max_funding_rate=parse_rate("0.01")
        )
        quoted = await call(
            mcp,
            "quote_request",
            request_id=request.request_id,
            funding_rate="0.003",
            collateral_usdc="1000",
            valid_for=30,
        )
        quote_id = quoted["quote"]["quote_id"]
        assert quoted["quote"]["maker"] == me and quoted["quote"]["status"] == "live"

        markets = {m["market"]: m for m in (await call(mcp, "markets"))["markets"]}
        curve = {c["duration"]: c for c in markets["BTC-PERP"]["funding_curve"]}
        assert curve["perpetual"]["best_rate"] == "0.003"
        assert curve["perpetual"]["live_quotes"] == 1

        cancelled = await call(mcp, "cancel_quote", quote_id=quote_id)
        assert cancelled["quote"]["quote_id"] == quote_id
        assert cancelled["quote"]["status"] == "cancelled"
        assert await requester.quotes(request.request_id) == []
        again = await refused(mcp, "cancel_quote", quote_id=quote_id)
        assert "venue refused (quote_cancelled, HTTP 409)" in again, again
        unknown = await refused(mcp, "cancel_quote", quote_id="q_does_not_exist")
        assert "venue refused (not_found, HTTP 404)" in unknown, unknown
