"""`perpd mcp` over stdio, driven by the `mcp` SDK's own client: a real daemon, the MCP
server as a real subprocess, the conservative reference maker quoting in-process.

- the tools, their JSON schemas (decimal-string amounts) and honest annotations;
- ask for quotes, accept the best, close half, read positions and the account, and the
  positions resource announced as updated on its `subscriptions/listen` stream;
- every limit refused with a tool error naming it, and nothing reaching the venue (no
  request, balances unchanged); a confirmation answered yes, one no, one cancelled.
"""

from __future__ import annotations

from pathlib import Path

import trio
from mcp import Client as McpClient

from perpd.mcp.resources import MARKETS_URI, POSITIONS_URI
from perpd.units import parse_usdc
from tests.conftest import Server
from tests.mcp_venue import (
    TRADE,
    Person,
    accept_best,
    account_of,
    call,
    funded_agent,
    live,
    maker,
    refused,
    stdio,
    venue_requests,
)

__all__ = ["live"]  # the fixture

TOOLS = {
    # name: (readOnly, destructive, idempotent, openWorld)
    "markets": (True, False, True, True),
    "ask_quotes": (False, False, False, True),
    "accept_quote": (False, True, False, True),
    "positions": (True, False, True, False),
    "close_position": (False, True, False, True),
    "account": (True, False, True, False),
    "history": (True, False, True, False),
    "quote_request": (False, False, False, True),
    "cancel_quote": (False, True, True, True),
}
DECIMAL = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"


async def check_tools(mcp: McpClient) -> None:
    listed = {t.name: t for t in (await mcp.list_tools()).tools}
    assert set(listed) == set(TOOLS)
    for name, (ro, destructive, idempotent, open_world) in TOOLS.items():
        tool = listed[name]
        a = tool.annotations
        assert a is not None, name
        assert (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint) == (
            ro,
            destructive,
            idempotent,
            open_world,
        ), name
        assert tool.description and len(tool.description) > 60, name
        assert tool.input_schema["type"] == "object"
    ask = listed["ask_quotes"].input_schema
    assert set(ask["required"]) == {"market", "side", "size_usdc", "leverage", "max_funding_rate"}
    assert ask["properties"]["size_usdc"] == {
        "description": 'notional in USDC, e.g. "1000"',
        "pattern": DECIMAL,
        "title": "Size Usdc",
        "type": "string",
    }
    assert ask["properties"]["side"]["enum"] == ["long", "short"]
    assert "confirmation" not in ask["properties"]  # filled by the person, not the model
    quote = listed["quote_request"].input_schema["properties"]
    assert quote["collateral_usdc"]["type"] == "string"
    assert listed["history"].input_schema["properties"]["kind"]["enum"] == [
        "fills",
        "funding",
        "liquidations",
    ]


async def test_quotes_accept_close_half_positions_account(live: Server, tmp_path: Path) -> None:
    key, config, keypair = await funded_agent(live, tmp_path)
    me = str(keypair.pubkey())
    async with maker(live.url) as mm, McpClient(stdio(live.url, key, config)) as mcp:
        await check_tools(mcp)
        uris = {str(r.uri) for r in (await mcp.list_resources()).resources}
        assert uris == {MARKETS_URI, POSITIONS_URI}

        markets = {m["market"]: m for m in (await call(mcp, "markets"))["markets"]}
        assert markets["BTC-PERP"]["oracle_price"] == "60000.00000000"
        assert markets["BTC-PERP"]["price_usable"] is True
        assert markets["BTC-PERP"]["allowed_by_limits"] is True
        assert markets["SOL-PERP"]["allowed_by_limits"] is False

        asked = await call(
            mcp,
            "ask_quotes",
            market="BTC-PERP",
            side="long",
            size_usdc="1000",
            leverage=5,
            max_funding_rate="0.005",
            wait_s=5,
            enough_quotes=1,
        )
        assert asked["request"]["size_usdc"] == "1000.000000"
        best = asked["quotes"][0]
        assert best["maker"] == mm.agent_id
        assert best["funding_rate"] == "0.002" and best["collateral_usdc"] == "1000.000000"

        async with mcp.listen(resource_subscriptions=[POSITIONS_URI]) as updates:
            opened = await accept_best(mcp, asked)
            with trio.fail_after(10):
                event = await updates.__anext__()
            assert getattr(event, "uri", None) == POSITIONS_URI
        position = opened["position"]
        assert position["role"] == "requester" and position["side"] == "long"
        assert position["size_usdc"] == "1000.000000" and position["funding_rate"] == "0.002"
        assert position["collateral_usdc"] == "200.000000"

        closed = await call(
            mcp, "close_position", position_id=position["position_id"], size_percent=50
        )
        assert closed["position"]["size_usdc"] == "500.000000"
        assert closed["position"]["status"] == "open"
        # half of the 200 of collateral, less the funding settled first (SPEC §4: a
        # close settles funding to now; 1000 USDC at 0.2% per 8 h is 69 micro-USDC a
        # second, so a slow machine that crosses a second boundary pays some)
        paid = parse_usdc(closed["position"]["funding_paid_usdc"], "paid", allow_zero=True)
        assert 0 <= paid < 1_000
        assert parse_usdc(closed["released_usdc"], "released") == (200_000_000 - paid) * 50 // 100

        held = (await call(mcp, "positions"))["positions"]
        assert [(p["position_id"], p["size_usdc"]) for p in held] == [
            (position["position_id"], "500.000000")
        ]
        resource = await mcp.read_resource(POSITIONS_URI)
        assert position["position_id"] in resource.contents[0].text  # type: ignore[union-attr]

        account = await call(mcp, "account")
        assert account["agent_id"] == me
        assert account["locked_usdc"] == "100.000000"
        assert account["open_notional_usdc"] == "500.000000"
        assert account["limits"] == {
            "markets": ["BTC-PERP", "ETH-PERP"],
            "max_notional_usdc": "3000.000000",
            "max_leverage": 5,
            "max_open_notional_usdc": "3000.000000",
            "max_daily_loss_usdc": "20.000000",
            "confirm_above_usdc": "1500.000000",
        }
        assert account["room"]["open_notional_usdc"] == "2500.000000"
        assert (account["free_usdc"], account["locked_usdc"]) == await account_of(live, keypair)


async def test_every_limit_refused_and_confirmations(live: Server, tmp_path: Path) -> None:
    key, config, keypair = await funded_agent(live, tmp_path)
    me = str(keypair.pubkey())
    person = Person("no", "cancel", "false", "yes")
    async with (
        maker(live.url),
        McpClient(stdio(live.url, key, config), elicitation_callback=person) as mcp,
    ):
        before = await account_of(live, keypair)
        cases = [
            ({"market": "SOL-PERP", "size_usdc": "100"}, "market_not_allowed"),
            ({"market": "BTC-PERP", "size_usdc": "3000.000001"}, "notional_above_limit"),
            ({"market": "BTC-PERP", "size_usdc": "100", "leverage": 6}, "leverage_above_limit"),
        ]
        for changes, code in cases:
            text = await refused(mcp, "ask_quotes", **(TRADE | changes))
            assert f"limits refused ({code})" in text and "nothing was sent" in text, text
        for answer in ("declined", "cancelled", "declined"):  # no, cancel, accept + false
            text = await refused(mcp, "ask_quotes", market="BTC-PERP", size_usdc="2000", **TRADE)
            assert f"(confirmation_{answer})" in text, text
        assert len(person.asked) == 3 and "2000.000000 USDC on BTC-PERP" in person.asked[0]
        assert await venue_requests(live, me) == [] and await account_of(live, keypair) == before

        asked = await call(
            mcp, "ask_quotes", market="BTC-PERP", size_usdc="2000", enough_quotes=1, **TRADE
        )  # yes
        await accept_best(mcp, asked)
        assert len(person.asked) == 4  # confirmed once, for the request and its acceptance

        text = await refused(mcp, "ask_quotes", market="ETH-PERP", size_usdc="1000.000001", **TRADE)
        assert "(open_notional_above_limit)" in text and "3000.000001 USDC" in text, text
        text = await refused(
            mcp,
            "quote_request",
            request_id=asked["request"]["request_id"],
            funding_rate="0.001",
            collateral_usdc="100",
        )
        assert "(leverage_above_limit)" in text, text  # 2000 on 100 is 20x

        await live.pin("BTC-PERP", "59400")  # -1 %: the long 2000 is down 20 USDC
        text = await refused(mcp, "ask_quotes", market="BTC-PERP", size_usdc="10", **TRADE)
        assert "(daily_loss_limit_reached)" in text and "20.000000 USDC" in text, text
        assert await venue_requests(live, me) == []
        account = await call(mcp, "account")
        assert account["daily_loss_usdc"] == "20.000000"
        assert account["room"]["daily_loss_usdc"] == "0.000000"
