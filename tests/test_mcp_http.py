"""`perpd mcp --http` over streamable HTTP, driven by the `mcp` SDK's streamable-HTTP
client: the same main flow as over stdio (quotes from the reference maker, accept the
best, close half, positions, account), a limit refused with nothing sent, confirmations
answered yes and no, and a client that cannot be asked refused with a clear tool error."""

from __future__ import annotations

import signal
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from mcp import Client as McpClient
from mcp import MCPDeprecationWarning
from mcp.types import ResourceUpdatedNotification

from perpd.mcp.resources import POSITIONS_URI
from tests.conftest import Server
from tests.daemon_proc import free_port
from tests.mcp_venue import (
    TRADE,
    Person,
    accept_best,
    account_of,
    call,
    funded_agent,
    live,
    maker,
    mcp_args,
    refused,
    venue_requests,
)

__all__ = ["live"]  # the fixture


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen([sys.executable, *args], stdout=sink, stderr=sink)


@asynccontextmanager
async def http_server(url: str, key: Path, config: Path) -> AsyncIterator[str]:
    """`perpd mcp --http` as a subprocess on a free loopback port; its /mcp URL.
    Stopped with SIGINT, which must end it cleanly."""
    port = free_port()
    log = key.with_name("mcp-http.log")
    proc = spawn(mcp_args(url, key, config, "--http", f"127.0.0.1:{port}"), log)
    try:
        with trio.fail_after(30):
            while True:
                assert proc.poll() is None, log.read_text(errors="replace")
                try:
                    await (await trio.open_tcp_stream("127.0.0.1", port)).aclose()
                    break
                except OSError:
                    await trio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        assert code == 0, log.read_text(errors="replace")[-3000:]


# The 2025 client's standalone GET stream reads httpx2 async generators that the SDK
# leaves to the garbage collector on close; trio warns about them. Only those are ignored.
@pytest.mark.filterwarnings(
    r"ignore:Exception ignored in. <async_generator object (EventSource|Response|PoolByteStream)\."
    ":pytest.PytestUnraisableExceptionWarning"
)
async def test_main_flow_limits_and_confirmations_over_http(live: Server, tmp_path: Path) -> None:
    key, config, keypair = await funded_agent(live, tmp_path)
    me = str(keypair.pubkey())
    person = Person("yes", "no")
    async with maker(live.url) as mm, http_server(live.url, key, config) as url:
        async with McpClient(url, elicitation_callback=person) as mcp:
            names = {t.name for t in (await mcp.list_tools()).tools}
            assert {"ask_quotes", "accept_quote", "close_position", "history"} <= names

            asked = await call(
                mcp, "ask_quotes", market="BTC-PERP", size_usdc="1000", enough_quotes=1, **TRADE
            )
            best = asked["quotes"][0]
            assert best["maker"] == mm.agent_id and best["funding_rate"] == "0.002"
            request_id = asked["request"]["request_id"]
            opened = await call(
                mcp, "accept_quote", request_id=request_id, quote_id=best["quote_id"]
            )
            pid = opened["position"]["position_id"]
            closed = await call(mcp, "close_position", position_id=pid, size_percent=50)
            assert closed["position"]["size_usdc"] == "500.000000"
            held = (await call(mcp, "positions"))["positions"]
            assert [p["size_usdc"] for p in held] == ["500.000000"]
            account = await call(mcp, "account")
            assert account["open_notional_usdc"] == "500.000000"
            assert (account["free_usdc"], account["locked_usdc"]) == await account_of(live, keypair)

            before = await account_of(live, keypair)
            text = await refused(mcp, "ask_quotes", market="ETH-PERP", size_usdc="2600", **TRADE)
            assert "(open_notional_above_limit)" in text, text

            confirmed = await call(
                mcp, "ask_quotes", market="BTC-PERP", size_usdc="1600", enough_quotes=1, **TRADE
            )
            assert confirmed["quotes"] and "1600.000000 USDC on BTC-PERP" in person.asked[0]
            text = await refused(mcp, "ask_quotes", market="BTC-PERP", size_usdc="1600", **TRADE)
            assert "(confirmation_declined)" in text, text
            assert len(person.asked) == 2
            mine = await venue_requests(live, me)
            assert [r["request_id"] for r in mine] == [confirmed["request"]["request_id"]]
            assert await account_of(live, keypair) == before

        async with McpClient(url) as cannot_ask:  # no elicitation callback: no capability
            text = await refused(
                cannot_ask, "ask_quotes", market="BTC-PERP", size_usdc="1600", **TRADE
            )
            assert "(confirmation_unavailable)" in text and "nothing was sent" in text, text
            assert len(await venue_requests(live, me)) == 1

        # A 2025-11-25 client: the question comes as elicitation/create mid-call, and
        # resource updates as notifications/resources/updated after resources/subscribe.
        positions_updated = trio.Event()

        async def on_message(message: object) -> None:
            if isinstance(message, ResourceUpdatedNotification):
                if message.params.uri == POSITIONS_URI:
                    positions_updated.set()

        older = McpClient(
            url, mode="legacy", elicitation_callback=Person("yes"), message_handler=on_message
        )
        async with older:
            assert older.protocol_version == "2025-11-25"
            with warnings.catch_warnings():  # deprecated as of 2026-07-28: the point here
                warnings.simplefilter("ignore", MCPDeprecationWarning)
                await older.subscribe_resource(POSITIONS_URI)
            asked = await call(
                older, "ask_quotes", market="BTC-PERP", size_usdc="1600", enough_quotes=1, **TRADE
            )
            await accept_best(older, asked)
            with trio.fail_after(10):
                await positions_updated.wait()
