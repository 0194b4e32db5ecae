"""`Desk`: the one agent `perpd mcp` acts as, its limits, and the checks made before a
trade is sent. The MCP tools are thin wrappers over it.

Every check reads the agent's positions fresh from the venue (open notional, today's
loss), so two MCP clients sharing one server, or the agent trading elsewhere too, cannot
walk past a limit with stale numbers. A trade the person confirmed is remembered by its
request id, so accepting a quote on a request confirmed in `ask_quotes` does not ask
twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents import ApiError, Client, TradeRequest
from agents._errors import ProtocolError, TransportError
from perpd.mcp.limits import Exposure, LimitError, Limits, check_quote, check_trade, exposure_of
from perpd.mcp.views import market_view, position_view


class ToolRefusal(Exception):
    """A refusal a model can act on: ``source`` is ``limits``, ``venue`` or ``input``."""

    def __init__(self, source: str, code: str, message: str, status: int | None = None) -> None:
        where = f"{source} refused ({code}" + (f", HTTP {status}" if status else "") + ")"
        super().__init__(f"{where}: {message}")
        self.source, self.code, self.message, self.status = source, code, message, status


def venue_refusal(exc: ApiError | TransportError | ProtocolError) -> ToolRefusal:
    """The venue's own code and message, for the model to correct itself."""
    if isinstance(exc, ApiError):
        return ToolRefusal("venue", exc.code, exc.message, exc.status)
    if isinstance(exc, TransportError):
        return ToolRefusal(
            "venue",
            "unreachable",
            f"{exc}; a trade may or may not have happened: read positions before retrying",
        )
    return ToolRefusal("venue", "protocol_error", str(exc))


def limit_refusal(exc: LimitError) -> ToolRefusal:
    return ToolRefusal("limits", exc.code, exc.message + "; nothing was sent to the venue")


@dataclass
class Desk:
    client: Client
    limits: Limits
    clock: Callable[[], float] = time.time
    confirmed: dict[str, int] = field(default_factory=dict)  # request id -> its expires_at

    @property
    def agent_id(self) -> str:
        return self.client.agent_id

    async def market_views(self) -> list[dict[str, Any]]:
        """The venue's markets as the `markets` tool and resource show them."""
        allowed = self.limits.markets
        found = await self.client.markets()
        return [market_view(m, allowed is None or m.market in allowed) for m in found]

    async def position_views(self) -> list[dict[str, Any]]:
        """This agent's open positions, from its side."""
        return [position_view(p, self.agent_id) for p in await self.client.my_positions("open")]

    async def exposure(self) -> Exposure:
        positions = [
            p
            for status in ("open", "closed", "liquidated")
            for p in await self.client.my_positions(status)
        ]
        return exposure_of(positions, self.agent_id, self.clock())

    async def check_trade(self, market: str, notional: int, leverage: int) -> bool:
        """Refuse (`ToolRefusal`) what the limits refuse; else whether to confirm."""
        try:
            return check_trade(self.limits, await self.exposure(), market, notional, leverage)
        except LimitError as exc:
            raise limit_refusal(exc) from None

    async def check_quote(self, request: TradeRequest, collateral: int) -> bool:
        try:
            return check_quote(
                self.limits, await self.exposure(), request.market, request.size, collateral
            )
        except LimitError as exc:
            raise limit_refusal(exc) from None

    def note_confirmed(self, request: TradeRequest) -> None:
        """Remember a request the person confirmed, until it expires."""
        now = self.clock()
        for rid in [r for r, until in self.confirmed.items() if until < now]:
            del self.confirmed[rid]
        self.confirmed[request.request_id] = request.expires_at

    async def own_request(self, request_id: str) -> TradeRequest:
        """One of this agent's requests (a model may only accept quotes on its own)."""
        request = await self.client.trade_request(request_id)
        if request.agent_id != self.agent_id:
            raise ToolRefusal("input", "not_your_request", f"{request_id} is another agent's")
        return request
