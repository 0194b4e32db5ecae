"""The MCP tools: what a model may read and do as this agent.

No ``from __future__ import annotations`` here: the SDK reads each tool's parameters
(and the ``Resolve(...)`` confirmation markers, closures over the `Desk`) at
registration, so the annotations must be real objects.

Every trade goes through the limits (`Desk.check_*`) before anything is sent; one
above the confirmation threshold is put to the person through MCP elicitation by a
resolver that runs before the tool body (on 2026-07-28 connections the SDK carries the
question in an ``input_required`` result and the body runs on the retry; on older ones
it sends ``elicitation/create`` mid-call). A client that cannot ask gets a tool error.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

import anyio
from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from agents import ApiError, Quote, format_usdc, parse_rate, parse_usdc
from agents._errors import ProtocolError, TransportError
from perpd.mcp.desk import Desk, ToolRefusal, venue_refusal
from perpd.mcp.views import (
    balances_view,
    close_view,
    page_view,
    position_view,
    quote_view,
    request_view,
    wire_view,
)

T = TypeVar("T")
USDC_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
RATE_PATTERN = r"^-?[0-9]{1,6}(\.[0-9]{1,6})?$"
POLL_S = 0.2  # how often ask_quotes looks for new quotes

Usdc = Annotated[str, Field(pattern=USDC_PATTERN)]
Rate = Annotated[str, Field(pattern=RATE_PATTERN)]


class Confirm(BaseModel):
    """What the person answers when asked to confirm a trade."""

    confirm: bool = Field(description="true to place this trade, false to refuse it")


@dataclass(frozen=True)
class NoQuestion:
    """A confirmation resolver's outcome when nothing was asked, and why."""

    reason: Literal["below_threshold", "already_confirmed", "client_cannot_ask"]


def _ann(read_only: bool, destructive: bool, idempotent: bool, open_world: bool) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


READ_VENUE = _ann(True, False, True, True)
READ_OWN = _ann(True, False, True, False)


def _amount(text: str, name: str, parse: Callable[[str], int]) -> int:
    try:
        return parse(text)
    except ProtocolError as exc:
        raise ToolError(f"input refused (invalid_amount): {name}: {exc}") from None


async def _venue(call: Awaitable[T]) -> T:
    """Await a venue call, turning a refusal into the tool error a model can read."""
    try:
        return await call
    except (ApiError, TransportError, ProtocolError) as exc:
        raise ToolError(str(venue_refusal(exc))) from None
    except ToolRefusal as exc:
        raise ToolError(str(exc)) from None


def _can_ask(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def _question(needed: bool, ctx: Context, text: str) -> Elicit[Confirm] | NoQuestion:
    if not needed:
        return NoQuestion("below_threshold")
    if not _can_ask(ctx):
        return NoQuestion("client_cannot_ask")
    return Elicit(text, Confirm)


def _confirmed(outcome: ElicitationResult[Confirm], what: str) -> None:
    """Go on only if nothing needed asking or the person said yes."""
    if isinstance(outcome, AcceptedElicitation):
        data = outcome.data
        if isinstance(data, Confirm) and data.confirm:
            return
        if isinstance(data, NoQuestion) and data.reason != "client_cannot_ask":
            return
        if isinstance(data, NoQuestion):
            raise ToolError(
                "limits refused (confirmation_unavailable): "
                f"{what} is above the confirmation threshold and this MCP client cannot ask "
                "the person (no elicitation support); nothing was sent to the venue"
            )
        raise ToolError(
            f"limits refused (confirmation_declined): the person refused {what}; "
            "nothing was sent to the venue"
        )
    code = "confirmation_declined" if outcome.action == "decline" else "confirmation_cancelled"
    raise ToolError(
        f"limits refused ({code}): the person did not confirm {what} "
        f"(answer: {outcome.action}); nothing was sent to the venue"
    )


def _best_first(quotes: list[Quote]) -> list[Quote]:
    """Lowest rate first (the requester pays it), then more maker collateral, then older."""
    return sorted(quotes, key=lambda q: (q.funding_rate, -q.collateral, q.created_at or 0))


def register(server: MCPServer, desk: Desk) -> None:
    """Add every tool to ``server``, acting through ``desk``."""
    client = desk.client
    me = desk.agent_id

    @server.tool(
        annotations=READ_VENUE,
        description="The venue's markets: oracle price and its health (price_usable, "
        "publish_time), the largest leverage, the funding period, the funding curve (best "
        "live quoted rate and last filled rate per duration), and whether your limits allow "
        "trading it. Prices and rates are decimal strings.",
    )
    async def markets() -> dict[str, Any]:
        return {"markets": await _venue(desk.market_views())}

    async def ask_confirmation(
        market: str, side: str, size_usdc: str, leverage: int, ctx: Context
    ) -> Elicit[Confirm] | NoQuestion:
        size = _amount(size_usdc, "size_usdc", parse_usdc)
        needed = await _venue(desk.check_trade(market, size, leverage))
        text = (
            f"Your AI agent wants to open a {side} position of {format_usdc(size)} USDC on "
            f"{market} at {leverage}x leverage (agent {me}). Allow it?"
        )
        return _question(needed, ctx, text)

    @server.tool(
        annotations=_ann(False, False, False, True),
        description="Ask the venue's makers for a position: posts a request for quotes and "
        "collects the quotes that arrive within wait_s seconds (at most the request's life, "
        "expires_in), best first (lowest funding rate; the requester pays it each funding "
        'period). Amounts are USDC decimal strings, e.g. "1000" or "250.5"; '
        'max_funding_rate is a decimal rate per period, e.g. "0.001". Nothing is traded '
        "yet: take a quote with accept_quote before the request or quote expires. Your "
        "limits are checked first; a large trade is put to the person to confirm.",
    )
    async def ask_quotes(
        market: Annotated[str, Field(description="e.g. BTC-PERP (see the markets tool)")],
        side: Literal["long", "short"],
        size_usdc: Annotated[Usdc, Field(description='notional in USDC, e.g. "1000"')],
        leverage: Annotated[int, Field(ge=1, le=100)],
        max_funding_rate: Annotated[
            Rate, Field(description="highest rate per funding period you will pay")
        ],
        confirmation: Annotated[ElicitationResult[Confirm], Resolve(ask_confirmation)],
        duration: Annotated[
            str, Field(pattern=r"^(perpetual|[0-9]{1,4}h)$", description="perpetual or <n>h")
        ] = "perpetual",
        wait_s: Annotated[
            float, Field(ge=0, le=300, description="seconds to wait for quotes")
        ] = 3.0,
        expires_in: Annotated[
            int, Field(ge=2, le=300, description="seconds the request stays open")
        ] = 30,
        enough_quotes: Annotated[
            int | None, Field(ge=1, description="return as soon as this many quotes arrived")
        ] = None,
    ) -> dict[str, Any]:
        _confirmed(confirmation, f"a {side} of {size_usdc} USDC on {market}")
        size = _amount(size_usdc, "size_usdc", parse_usdc)
        rate = _amount(max_funding_rate, "max_funding_rate", parse_rate)
        await _venue(desk.check_trade(market, size, leverage))  # again: the answer took time
        request = await _venue(
            client.request_trade(
                market,
                side,
                size,
                leverage=leverage,
                max_funding_rate=rate,
                duration=duration,
                expires_in=expires_in,
            )
        )
        if isinstance(confirmation, AcceptedElicitation) and isinstance(confirmation.data, Confirm):
            desk.note_confirmed(request)
        deadline = anyio.current_time() + min(wait_s, max(0.0, expires_in - 1.0))
        quotes: list[Quote] = []
        while True:
            quotes = await _venue(client.quotes(request.request_id))
            left = deadline - anyio.current_time()
            if left <= 0 or (enough_quotes is not None and len(quotes) >= enough_quotes):
                break
            await anyio.sleep(min(POLL_S, left))
        return {
            "request": request_view(request),
            "quotes": [quote_view(q) for q in _best_first(quotes)],
            "note": "accept_quote takes one of these before its expires_at (unix seconds)"
            if quotes
            else "no quote yet: wait and call positions/ask again, or let the request lapse",
        }

    async def accept_confirmation(request_id: str, ctx: Context) -> Elicit[Confirm] | NoQuestion:
        request = await _venue(desk.own_request(request_id))
        needed = await _venue(desk.check_trade(request.market, request.size, request.leverage))
        if needed and request_id in desk.confirmed:
            return NoQuestion("already_confirmed")
        text = (
            f"Your AI agent wants to open a {request.side} position of "
            f"{format_usdc(request.size)} USDC on {request.market} at {request.leverage}x "
            f"leverage (agent {me}). Allow it?"
        )
        return _question(needed, ctx, text)

    @server.tool(
        annotations=_ann(False, True, False, True),
        description="Take one quote on your own request: the position opens at the oracle "
        "price now, with the quote's funding rate, and your collateral is locked. Fails with "
        "the venue's code (quote_expired, request_expired, insufficient_collateral, ...) if "
        "it cannot; then pick another quote or ask again. Your limits are checked again first.",
    )
    async def accept_quote(
        request_id: str,
        quote_id: str,
        confirmation: Annotated[ElicitationResult[Confirm], Resolve(accept_confirmation)],
    ) -> dict[str, Any]:
        _confirmed(confirmation, f"the trade of request {request_id}")
        request = await _venue(desk.own_request(request_id))
        await _venue(desk.check_trade(request.market, request.size, request.leverage))
        position = await _venue(client.accept(request_id, quote_id))
        desk.confirmed.pop(request_id, None)
        return {"position": position_view(position, me)}

    @server.tool(
        annotations=READ_OWN,
        description="Your open positions (as requester or maker), from your side: side, "
        "size, entry and mark price, collateral, unrealized PnL, margin ratio, funding rate.",
    )
    async def positions() -> dict[str, Any]:
        return {"positions": await _venue(desk.position_views())}

    @server.tool(
        annotations=_ann(False, True, False, True),
        description="Close size_percent (1-100) of a position you requested, at the oracle "
        "price now: realizes PnL and frees collateral. Closing 50 twice closes 75 percent. "
        "Limits never block a close (it only lowers risk).",
    )
    async def close_position(
        position_id: str,
        size_percent: Annotated[int, Field(ge=1, le=100)] = 100,
    ) -> dict[str, Any]:
        result = await _venue(client.close(position_id, size_percent))
        return close_view(result, me)

    @server.tool(
        annotations=READ_OWN,
        description="Your account: free and locked collateral (USDC decimal strings), the "
        "limits the person set (markets, max notional per trade, max leverage, max open "
        "notional, max loss per day, confirmation threshold), your open notional, today's "
        "loss (UTC day) and the room left under each limit.",
    )
    async def account() -> dict[str, Any]:
        balances = await _venue(client.balances())
        exposure = await _venue(desk.exposure())
        lim = desk.limits
        return {
            "agent_id": me,
            **balances_view(balances),
            "limits": lim.view(),
            "open_notional_usdc": format_usdc(exposure.open_notional),
            "daily_loss_usdc": format_usdc(exposure.daily_loss),
            "room": {
                "open_notional_usdc": format_usdc(
                    max(0, lim.max_open_notional - exposure.open_notional)
                ),
                "daily_loss_usdc": format_usdc(max(0, lim.max_daily_loss - exposure.daily_loss)),
            },
        }

    @server.tool(
        annotations=READ_OWN,
        description="Your history, newest pages via cursor: kind fills (each trade you made, "
        "as requester or maker), funding (payments paid or received) or liquidations. "
        "Optional market, since/until (unix seconds), limit (1-500). Pass next_cursor back "
        "as cursor for the next page; null means the end.",
    )
    async def history(
        kind: Literal["fills", "funding", "liquidations"],
        limit: Annotated[int, Field(ge=1, le=500)] = 100,
        cursor: str | None = None,
        since: Annotated[int | None, Field(ge=0)] = None,
        until: Annotated[int | None, Field(ge=0)] = None,
        market: str | None = None,
    ) -> dict[str, Any]:
        fetch = {
            "fills": client.fills,
            "funding": client.funding,
            "liquidations": client.liquidations,
        }[kind]
        page = await _venue(
            fetch(limit=limit, cursor=cursor, since=since, until=until, market=market)
        )
        return page_view(page, kind)

    async def quote_confirmation(
        request_id: str, collateral_usdc: str, ctx: Context
    ) -> Elicit[Confirm] | NoQuestion:
        collateral = _amount(collateral_usdc, "collateral_usdc", parse_usdc)
        request = await _venue(client.trade_request(request_id))
        needed = await _venue(desk.check_quote(request, collateral))
        maker_side = "short" if request.side == "long" else "long"
        text = (
            f"Your AI agent wants to quote {format_usdc(request.size)} USDC on "
            f"{request.market} (you would be {maker_side}), posting {format_usdc(collateral)} "
            f"USDC of collateral (agent {me}). Allow it?"
        )
        return _question(needed, ctx, text)

    @server.tool(
        annotations=_ann(False, False, False, True),
        description="As a maker, quote someone's open request: a firm offer to take the "
        "other side at funding_rate per period (positive: the requester pays you), posting "
        "collateral_usdc (at least size / the market's max leverage), good for valid_for "
        "seconds. The requester may accept it at once. Your limits apply (the quote's "
        "leverage is size / collateral); a large one is put to the person to confirm.",
    )
    async def quote_request(
        request_id: str,
        funding_rate: Rate,
        collateral_usdc: Usdc,
        confirmation: Annotated[ElicitationResult[Confirm], Resolve(quote_confirmation)],
        valid_for: Annotated[int, Field(ge=1, le=60)] = 10,
    ) -> dict[str, Any]:
        _confirmed(confirmation, f"the quote on request {request_id}")
        rate = _amount(funding_rate, "funding_rate", parse_rate)
        collateral = _amount(collateral_usdc, "collateral_usdc", parse_usdc)
        request = await _venue(client.trade_request(request_id))
        await _venue(desk.check_quote(request, collateral))
        quote = await _venue(
            client.quote(request, funding_rate=rate, collateral=collateral, valid_for=valid_for)
        )
        return {"quote": quote_view(quote), "request": request_view(request)}

    @server.tool(
        annotations=_ann(False, True, True, True),
        description="Withdraw one of your live quotes before anyone accepts it. Fails with "
        "quote_filled, quote_expired, quote_cancelled or quote_rejected when it is no "
        "longer live.",
    )
    async def cancel_quote(quote_id: str) -> dict[str, Any]:
        quote = await _venue(client.cancel_quote(quote_id))
        return {"quote": quote_view(quote) if isinstance(quote, Quote) else wire_view(quote)}
