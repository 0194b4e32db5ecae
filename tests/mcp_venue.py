"""What the `perpd mcp` tests share: a daemon on the wall clock, a funded agent keypair
file, a limits file, a reference maker quoting, a person answering confirmations, and
helpers to call tools through the `mcp` SDK's own client."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client as McpClient
from mcp import StdioServerParameters
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

from agents import MICRO, Client, Keypair, generate_keypair
from agents.conservative_mm import ConservativeMM
from tests.agents.conftest import live
from tests.conftest import Server

__all__ = ["live"]  # the daemon on the wall clock: the MCP server signs with its own clock

LIMITS = """\
[limits]
markets = ["BTC-PERP", "ETH-PERP"]
max_notional_usdc = "3000"
max_leverage = 5
max_open_notional_usdc = "3000"
max_daily_loss_usdc = "20"
confirm_above_usdc = "1500"
"""


TRADE = {"side": "long", "leverage": 5, "max_funding_rate": "0.005", "wait_s": 5}


async def funded_agent(s: Server, tmp_path: Path) -> tuple[Path, Path, Keypair]:
    """BTC-PERP pinned at 60,000; an agent's files (`agent_files`), 10,000 USDC in it."""
    await s.pin("BTC-PERP", "60000")
    key, config, keypair = agent_files(tmp_path)
    r = await s.http.post(
        "/dev/faucet", json={"agent_id": str(keypair.pubkey()), "amount_usdc": "10000"}
    )
    assert r.status_code == 200, r.text
    return key, config, keypair


def agent_files(tmp_path: Path, limits: str = LIMITS) -> tuple[Path, Path, Keypair]:
    """A fresh keypair file (mode 0600) and a limits file; and the keypair."""
    key = tmp_path / "agent.json"
    keypair = generate_keypair(key)
    config = tmp_path / "mcp.toml"
    config.write_text(limits)
    return key, config, keypair


def mcp_args(url: str, key: Path, config: Path, *extra: str) -> list[str]:
    args = ["-m", "perpd", "mcp", "--url", url, "--keypair", str(key), "--config", str(config)]
    return [*args, *extra]


def stdio(url: str, key: Path, config: Path) -> StdioServerParameters:
    """`perpd mcp` as a real subprocess on stdio, in this test's environment."""
    return StdioServerParameters(
        command=sys.executable, args=mcp_args(url, key, config), env=dict(os.environ)
    )


@asynccontextmanager
async def maker(url: str) -> AsyncIterator[Client]:
    """The conservative reference maker (asks 0.002, posts collateral = notional),
    funded and quoting every request until the block ends."""
    async with Client(url, Keypair()) as client:
        await client.faucet(100_000 * MICRO)
        mm = ConservativeMM(client, refresh_s=0.2)
        async with anyio.create_task_group() as tg:
            await tg.start(mm.run)
            yield client
            tg.cancel_scope.cancel()


class Person:
    """The person behind the MCP client: answers each confirmation from a script
    ("yes", "no" = decline, "cancel", "false" = accept with confirm false)."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    async def __call__(self, context: Any, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        answer = self.answers.pop(0)
        if answer == "yes":
            return ElicitResult(action="accept", content={"confirm": True})
        if answer == "false":
            return ElicitResult(action="accept", content={"confirm": False})
        return ElicitResult(action="decline" if answer == "no" else "cancel")


async def call(mcp: McpClient, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool's structured result; fails the test on a tool error."""
    result = await mcp.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    return result.structured_content


async def accept_best(mcp: McpClient, asked: dict[str, Any]) -> dict[str, Any]:
    """Accept the first (best) quote of an `ask_quotes` result."""
    request_id, quote_id = asked["request"]["request_id"], asked["quotes"][0]["quote_id"]
    return await call(mcp, "accept_quote", request_id=request_id, quote_id=quote_id)


async def refused(mcp: McpClient, tool: str, **arguments: Any) -> str:
    """The text of a tool error (fails the test if the call succeeded)."""
    result = await mcp.call_tool(tool, arguments)
    assert isinstance(result, CallToolResult)
    assert result.is_error, f"{tool} should have been refused: {result.structured_content}"
    return text_of(result)


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def venue_requests(s: Server, agent_id: str) -> list[dict[str, Any]]:
    """The open requests the daemon holds for ``agent_id``."""
    r = await s.http.get("/requests")
    return [q for q in r.json()["requests"] if q["agent_id"] == agent_id]


async def account_of(s: Server, keypair: Keypair) -> tuple[str, str]:
    """The agent's free and locked USDC, read by the test itself (signed)."""
    async with Client(s.url, keypair) as c:
        b = (await c.balances()).raw
        return str(b["free_usdc"]), str(b["locked_usdc"])
