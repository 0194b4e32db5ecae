"""The MCP server wiring: one `agents.Client` for the agent, the tools and resources on
the SDK's `MCPServer`, and the transport (stdio, or streamable HTTP on loopback), with
the venue watcher running beside it. Runs on asyncio (the SDK's HTTP server is uvicorn)."""

from __future__ import annotations

import logging

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus
from solders.keypair import Keypair

from agents import Client
from perpd import __version__
from perpd.mcp import resources, tools
from perpd.mcp.desk import Desk
from perpd.mcp.limits import Limits

INSTRUCTIONS = """\
You trade perpetual futures on a perpd venue as one agent, within limits a person set
(see the account tool). A trade is a request for quotes: ask_quotes posts it and returns
the makers' quotes, best first; accept_quote opens the position. Amounts are USDC decimal
strings ("1000"), rates decimal strings per funding period ("0.001"). A refusal comes
back as a tool error naming who refused (limits, venue or input) and a code: read it,
correct the call, or stop. Trades above the confirmation threshold are put to the person.
"""


def build(
    desk: Desk,
) -> tuple[MCPServer, InMemorySubscriptionBus, resources.LegacySubscribers]:
    """The server with every tool and resource, and where its resource updates go."""
    bus = InMemorySubscriptionBus()
    server: MCPServer = MCPServer(
        "perpd",
        instructions=INSTRUCTIONS,
        version=__version__,
        subscriptions=bus,
        log_level="WARNING",
    )
    tools.register(server, desk)
    legacy = resources.register(server, desk)
    return server, bus, legacy


async def serve(
    url: str, keypair: Keypair, limits: Limits, http: tuple[str, int] | None = None
) -> None:
    """Serve until the transport ends (stdin closes) or the process is interrupted."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per venue call
    async with Client(url, keypair) as client:
        desk = Desk(client, limits)
        server, bus, legacy = build(desk)
        async with anyio.create_task_group() as tg:
            await tg.start(resources.watch, desk, bus, legacy)
            if http is None:
                await server.run_stdio_async()
            else:
                host, port = http
                await server.run_streamable_http_async(host=host, port=port)
            tg.cancel_scope.cancel()
