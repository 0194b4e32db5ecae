"""The wire's typed models (SPEC §6): every request body, list query and response object.

msgspec Structs, so one definition gives both the fields a body may carry (`fields_of`,
used by every POST route to refuse unknown and missing fields) and the JSON Schema of
``/openapi.json`` (`perpd.api._openapi`). The values themselves are still parsed by
`perpd.units` and `perpd.consents`, whose messages SPEC §6's tests pin: the models
describe exactly what those parsers take (decimal strings or numbers, bounded).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from perpd.markets import MARKETS

# what the parsers accept, as JSON Schema can say it (bounds beyond it are 400s)
_USDC = r"^([1-9][0-9]{0,8}(\.[0-9]{1,6})?|0?\.[0-9]{0,5}[1-9])$"
_RATE = r"^-?0(\.0([0-4][0-9]{0,4})?|\.050{0,4})?$"
_PRICE = r"^([1-9][0-9]{0,7}(\.[0-9]{1,8})?|100000000(\.0{1,8})?|0?\.[0-9]{0,7}[1-9])$"
# 1 h to 8760 h (a year), as `perpd.api._trade.parse_duration` takes them
_DURATION = r"^(perpetual|([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-5][0-9]|8760)h)$"
_B58 = r"^[1-9A-HJ-NP-Za-km-z]{32,44}$"
_SIG = r"^[1-9A-HJ-NP-Za-km-z]{64,88}$"

if TYPE_CHECKING:
    MarketName = str
else:  # the listed markets, as an enum of the schema
    MarketName = Literal[tuple(MARKETS)]
Side = Literal["long", "short"]
UsdcIn = (
    Annotated[str, Meta(pattern=_USDC, description="USDC, ≤ 6 decimals")]
    | Annotated[int, Meta(ge=1, le=1_000_000_000)]
)
RateIn = Annotated[str, Meta(pattern=_RATE, description="per funding period, within ±0.05")]
PriceIn = (
    Annotated[str, Meta(pattern=_PRICE, description="≤ 8 decimals")]
    | Annotated[int, Meta(ge=1, le=100_000_000)]
)
Id = Annotated[str, Meta(min_length=1, max_length=64)]
AgentId = Annotated[str, Meta(pattern=_B58, description="base58 ed25519 public key")]
Consent = Annotated[str, Meta(pattern=_SIG, description="base58 ed25519 signature (SPEC §6)")]
UnixS = Annotated[int, Meta(ge=0, le=2**62, description="unix seconds")]
Nonce = Annotated[int, Meta(ge=0, description="0 to 2^64-1")]
ClientId = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z0-9._:-]{1,64}$",
        description="idempotency key, unique per agent and kind (issue 13)",
    ),
]

Usdc = Annotated[str, Meta(pattern=r"^-?[0-9]+\.[0-9]{6}$", description="USDC, 6 decimals")]
Rate = Annotated[str, Meta(pattern=r"^-?[0-9]+\.[0-9]+$", description="decimal")]
Price = Annotated[str, Meta(pattern=r"^[0-9]+\.[0-9]{8}$", description="8 decimals")]
Iso = Annotated[str, Meta(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$")]


class _Body(Struct, forbid_unknown_fields=True, kw_only=True):
    """A request body: unknown fields are refused (a typo is a 400, never ignored)."""


class TradeRequestBody(_Body):
    market: MarketName
    side: Side
    size_usdc: UsdcIn
    leverage: Annotated[int, Meta(ge=1, le=100)]
    max_funding_rate: RateIn
    agent_id: AgentId | None = None
    duration: Annotated[str, Meta(pattern=_DURATION)] | None = None
    expires_in: Annotated[int, Meta(ge=1, le=300)] = 30
    expires_at: UnixS | None = None
    nonce: Nonce | None = None
    consent: Consent | None = None
    client_id: ClientId | None = None


class _QuoteTerms(_Body):
    """What a quote firmly offers: a quote's body, and a replace's new terms."""

    funding_rate: RateIn
    collateral_usdc: UsdcIn
    agent_id: AgentId | None = None
    valid_for: Annotated[int, Meta(ge=1, le=60)] = 10
    valid_until: UnixS | None = None
    consent: Consent | None = None
    client_id: ClientId | None = None


class QuoteBody(_QuoteTerms, kw_only=True):
    request_id: Id


class AcceptBody(_Body):
    request_id: Id
    quote_id: Id
    agent_id: AgentId | None = None


class CloseBody(_Body):
    position_id: Id
    agent_id: AgentId | None = None
    size_percent: Annotated[int, Meta(ge=1, le=100)] = 100
    expires_at: UnixS | None = None
    consent: Consent | None = None


class LiquidateBody(_Body):
    position_id: Id
    agent_id: AgentId | None = None


class WithdrawBody(_Body):
    amount_usdc: UsdcIn
    agent_id: AgentId | None = None
    destination: AgentId | None = None
    expires_at: UnixS | None = None
    consent: Consent | None = None


class CancelQuoteBody(_Body):
    quote_id: Id
    agent_id: AgentId | None = None


class ReplaceQuoteBody(_QuoteTerms, kw_only=True):
    """The new terms of a live quote: one unit cancels it and quotes these."""

    quote_id: Id


class CancelRequestBody(_Body):
    request_id: Id
    agent_id: AgentId | None = None


class ProtectionBody(_Body):
    """Maker protection: limits per trailing ``window_s``; none given switches it off."""

    window_s: Annotated[int, Meta(ge=1, le=86_400)]
    cooldown_s: Annotated[int, Meta(ge=1, le=86_400)]
    agent_id: AgentId | None = None
    max_fills: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    max_notional_usdc: UsdcIn | None = None


class FaucetBody(_Body):
    agent_id: AgentId
    amount_usdc: UsdcIn


class PriceBody(_Body):
    market: MarketName
    price: PriceIn


_GIVEN = {"not": {"type": "null"}}


def _needs(*fields: str) -> dict[str, Any]:
    """A non-null ``consent`` comes with these fields, non-null too (null is absent)."""
    return {
        "if": {"required": ["consent"], "properties": {"consent": {"type": "string"}}},
        "then": {"required": list(fields), "properties": {f: _GIVEN for f in fields}},
    }


def _one_way(a: str, b: str) -> dict[str, Any]:
    """Not both ``a`` and ``b`` (null is absent)."""
    return {"not": {"required": [a, b], "properties": {a: _GIVEN, b: _GIVEN}}}


# What a body's fields require of each other (JSON Schema the Structs cannot carry):
# a consent signs these fields, so it comes with them; a deadline is given one way.
BODY_RULES: dict[str, dict[str, Any]] = {
    "TradeRequestBody": {
        "allOf": [
            _needs("nonce", "expires_at"),
            _one_way("expires_at", "expires_in"),
            *(
                {
                    "if": {"properties": {"market": {"const": name}}},
                    "then": {"properties": {"leverage": {"maximum": market.max_leverage}}},
                }
                for name, market in MARKETS.items()
            ),
        ],
    },
    "QuoteBody": {"allOf": [_needs("valid_until"), _one_way("valid_until", "valid_for")]},
    "WsQuote": {"allOf": [_needs("valid_until"), _one_way("valid_until", "valid_for")]},
    "ReplaceQuoteBody": {"allOf": [_needs("valid_until"), _one_way("valid_until", "valid_for")]},
    "WsReplace": {"allOf": [_needs("valid_until"), _one_way("valid_until", "valid_for")]},
    "CloseBody": _needs("expires_at"),
    "WithdrawBody": _needs("destination", "expires_at"),
}
NONCE_MAX = 2**64 - 1  # above msgspec's int64 bounds: set in the schema by hand


@functools.cache
def fields_of(model: type[Struct]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(required, optional)`` field names of a body model, for `json_object` (cached:
    msgspec resolves the class's annotations on every call, 6% of a busy daemon's CPU)."""
    info = msgspec.structs.fields(model)
    return (
        tuple(f.name for f in info if f.required),
        tuple(f.name for f in info if not f.required),
    )


# -- responses ---------------------------------------------------------------------------


class Account(Struct, kw_only=True):
    agent_id: str
    free_usdc: Usdc
    locked_usdc: Usdc
    withdrawals: int


class TradeRequest(Struct, kw_only=True):
    request_id: str
    agent_id: str
    market: MarketName
    side: Side
    size_usdc: Usdc
    leverage: int
    max_funding_rate: Rate
    duration: str
    status: Literal["open", "pending", "filled", "expired", "cancelled"]
    created_at: int
    expires_at: int
    expires_at_iso: Iso
    position_id: str | None
    nonce: int | None
    consent: str | None
    request_hash: str | None
    client_id: str | None


class Quote(Struct, kw_only=True):
    quote_id: str
    request_id: str
    agent_id: str
    funding_rate: Rate
    collateral_usdc: Usdc
    status: Literal["live", "accepted", "rejected", "expired", "cancelled", "failed"]
    created_at: int
    expires_at: int
    expires_at_iso: Iso
    consent: str | None
    client_id: str | None


class ReplacedQuote(Quote, kw_only=True):
    """The new quote of a replace, naming the one it cancelled."""

    replaced_quote_id: str


class QuoteCancelled(Struct, kw_only=True):
    quote: Quote


class RequestCancelled(Struct, kw_only=True):
    request: TradeRequest


class Protection(Struct, kw_only=True):
    """A maker's protection (nulls: never set); ``frozen_until`` null unless frozen now."""

    agent_id: str
    window_s: int | None
    max_fills: int | None
    max_notional_usdc: Usdc | None
    cooldown_s: int | None
    frozen_until: int | None


class Position(Struct, kw_only=True):
    position_id: str
    request_id: str
    quote_id: str
    market: MarketName
    requester: str
    maker: str
    side: Side
    size_usdc: Usdc
    entry_price: Price
    leverage: int
    requester_collateral_usdc: Usdc
    maker_collateral_usdc: Usdc
    requester_initial_margin_usdc: Usdc
    maker_initial_margin_usdc: Usdc
    funding_rate: Rate
    funding_paid_usdc: Usdc
    realized_pnl_usdc: Usdc
    status: Literal["pending", "open", "closed", "liquidated", "failed"]
    opened_at: int
    opened_at_iso: Iso
    expires_at: int | None
    expires_at_iso: Iso | None
    next_funding_at: int | None
    closed_at: int | None
    exit_price: Price | None
    liquidator: str | None
    nonce: int | None
    position_address: str | None
    closes: int
    lock_signature: str | None
    settle_signature: str | None
    close_signature: str | None
    mark_price: Price | None
    unrealized_pnl_usdc: Usdc | None
    margin_ratio_requester: Rate | None
    margin_ratio_maker: Rate | None


class Accepted(Struct, kw_only=True):
    position: Position


class Closed(Struct, kw_only=True):
    position: Position
    realized_pnl_usdc: Usdc
    released_usdc: Usdc


class Liquidated(Struct, kw_only=True):
    position: Position
    liquidated_side: Side
    reward_usdc: Usdc


class Market(Struct, kw_only=True):
    market: MarketName
    index: int
    oracle_price: Price | None
    oracle_conf: Price | None
    price_source: str | None
    publish_time: int | None
    publish_time_iso: Iso | None
    price_usable: bool
    price_unusable_reason: str | None
    gated_actions: list[Literal["accept", "close", "liquidate"]]
    oracle_age_s: int | None
    oracle_confidence_ratio: Rate | None
    pyth_feed_id: str
    max_leverage: int
    funding_period_s: int
    min_size_usdc: Usdc
    funding_curve: list[FundingCurvePoint]  # i13-history


class Limits(Struct, kw_only=True):
    max_open_requests_per_agent: int
    max_live_quotes_per_agent: int
    max_live_quotes_per_request: int
    max_live_quotes_per_maker_request: int


class Markets(Struct, kw_only=True):
    markets: list[Market]
    limits: Limits


class RequestPage(Struct, kw_only=True):
    requests: list[TradeRequest]
    next_cursor: str | None


class QuotePage(Struct, kw_only=True):
    quotes: list[Quote]
    next_cursor: str | None


class PositionPage(Struct, kw_only=True):
    positions: list[Position]
    next_cursor: str | None


class Event(Struct, kw_only=True):
    seq: int
    type: str
    ts: int
    market: str | None
    data: dict[str, Any]


class EventPage(Struct, kw_only=True):
    events: list[Event]
    next_cursor: str | None


class ChainInfo(Struct, kw_only=True):
    """``mode`` none shows only ``mode``; a chain shows where the money lives."""

    mode: Literal["none", "local", "rpc"]
    program_id: str | None = None
    cluster: str | None = None
    usdc_mint: str | None = None
    vault: str | None = None
    slot: int | None = None


class Health(Struct, kw_only=True):
    status: Literal["ok", "degraded"]
    oracle_usable: dict[str, bool]
    last_seq: int
    time: int
    chain: str
    warning: str | None = None


class PricePinned(Struct, kw_only=True):
    market: MarketName
    oracle_price: Price
    price_source: str
    publish_time: int
    pinned: bool


class ErrorDetail(Struct, kw_only=True):
    code: str
    message: str


class Error(Struct, kw_only=True):
    """Every refusal (SPEC §6): nothing was changed."""

    error: ErrorDetail


# -- the WebSocket (GET /ws) -------------------------------------------------------------


class WsAuth(_Body, tag="auth", tag_field="type"):
    agent_id: AgentId
    timestamp: int
    signature: Consent


class WsSubscribe(_Body, tag="subscribe", tag_field="type"):
    markets: list[MarketName]
    since: int | None = None
    # the agent's live quotes are cancelled when its last such socket goes (issue 13)
    cancel_on_disconnect: bool = False


class WsQuote(QuoteBody, tag="quote", tag_field="type"):
    # a string is the quote's idempotency key (as on POST /trade/quote); any other
    # value is only echoed in its quote_ack or error
    client_id: Any = None


class WsCancel(_Body, tag="cancel", tag_field="type"):
    quote_id: Id
    agent_id: AgentId | None = None
    client_id: Any = None  # echoed


class WsReplace(ReplaceQuoteBody, tag="replace", tag_field="type"):
    client_id: Any = None  # a string: the new quote's idempotency key; else echoed


class WsPing(_Body, tag="ping", tag_field="type"):
    """Also the heartbeat a cancel-on-disconnect socket owes (``ws_heartbeat_timeout_s``)."""

    client_id: Any = None


class WsAuthOk(Struct, tag="auth_ok", tag_field="type"):
    seq: int


class WsQuoteAck(Struct, tag="quote_ack", tag_field="type"):
    quote_id: str
    request_id: str
    client_id: Any = None
    replaced_quote_id: str | None = None  # the answer to a replace


class WsCancelAck(Struct, tag="cancel_ack", tag_field="type"):
    quote_id: str
    client_id: Any = None


class WsPong(Struct, tag="pong", tag_field="type"):
    ts: int


class WsError(Struct, tag="error", tag_field="type"):
    error: ErrorDetail


class WsEvent(Struct, kw_only=True):
    """A server event: ``type`` is the event (trade_request, quote, position_opened, ...)."""

    type: str
    seq: int
    ts: int
    data: dict[str, Any]


WS_MODELS: tuple[type[Struct], ...] = (
    WsAuth,
    WsSubscribe,
    WsQuote,
    WsAuthOk,
    WsQuoteAck,
    WsError,
    WsEvent,
    WsCancel,
    WsReplace,
    WsPing,
    WsCancelAck,
    WsPong,
)


# -- web branch (issue 15): the public stream (GET /ws/public) and chain transactions --


class WsHello(Struct, tag="hello", tag_field="type"):
    """The public stream's greeting: the last ``seq`` dispatched (the default ``since``)."""

    seq: int


class WsPublicSubscribe(_Body, tag="subscribe", tag_field="type"):
    """Markets default to all; ``since`` to the hello's ``seq``."""

    markets: list[MarketName] | None = None
    since: int | None = None


class ChainTx(Struct, kw_only=True):
    """A transaction the daemon landed: ``kind`` lock, settle, close, liquidate, ...;
    ``ref`` the position (or agent) it was for."""

    signature: str
    slot: int
    kind: str
    ref: str | None


class ChainTxs(Struct, kw_only=True):
    """Newest first; empty without a chain (``--chain none``) or where none are kept."""

    transactions: list[ChainTx]


PUBLIC_WS_MODELS: tuple[type[Struct], ...] = (
    WsHello,
    WsPublicSubscribe,
    WsPing,
    WsPong,
    WsEvent,
    WsError,
)


# -- issue 13: history and the funding curve (i13-history) --------------------------------


class FundingCurvePoint(Struct, kw_only=True):
    """One term of a market's funding curve: the best (lowest) live quoted rate for a
    requester, how many quotes are live, and the last filled rate."""

    duration: Annotated[str, Meta(pattern=_DURATION)]
    best_rate: Rate | None
    live_quotes: int
    last_filled_rate: Rate | None
    last_filled_at: int | None


class FundingCurveEvent(Struct, kw_only=True):
    """Data of the public ``funding_curve`` event (at most once per second per market)."""

    market: MarketName
    funding_curve: list[FundingCurvePoint]


class Fill(Struct, kw_only=True):
    fill_id: int
    position_id: str
    request_id: str
    quote_id: str
    market: MarketName
    role: Literal["requester", "maker"]
    side: Side
    size_usdc: Usdc
    entry_price: Price
    funding_rate: Rate
    leverage: int
    collateral_usdc: Usdc
    fee_usdc: Usdc
    filled_at: int


class FillPage(Struct, kw_only=True):
    fills: list[Fill]
    next_cursor: str | None


class FundingPayment(Struct, kw_only=True):
    payment_id: int
    position_id: str
    market: MarketName
    amount_usdc: Usdc
    direction: Literal["paid", "received"]
    period: int
    settled_at: int
    funding_rate: Rate | None
    settled_to: int | None


class FundingPage(Struct, kw_only=True):
    funding: list[FundingPayment]
    next_cursor: str | None


class LiquidationRecord(Struct, kw_only=True):
    position_id: str
    market: MarketName
    role: Literal["requester", "maker", "liquidator"]
    liquidator: str
    reward_usdc: Usdc
    price: Price
    liquidated_at: int
    liquidated_side: Literal["requester", "maker"]
    released_usdc: Usdc


class LiquidationPage(Struct, kw_only=True):
    liquidations: list[LiquidationRecord]
    next_cursor: str | None
