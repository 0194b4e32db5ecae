"""perpd agent SDK: sign, request, quote, accept, close, subscribe, resume (SPEC §8).

Runs on asyncio and trio alike (anyio + httpx + httpx-ws). Money is ``int``
micro-USDC, rates ``int`` ppm, prices ``int`` with exponent -8; `parse_usdc`,
`parse_rate` and `parse_price` turn decimal text into those exactly.

    async with Client(url, load_keypair("trader.json")) as client:
        position = await Trader(client).open(
            "BTC-PERP", "long", parse_usdc("1000"), leverage=10,
            max_funding_rate=parse_rate("0.001"),
        )

Reference agents: ``python -m agents.conservative_mm | aggressive_mm | arbitrage_mm |
trader --url URL --keypair FILE``.
"""

from agents._client import Client, ClientStatistics
from agents._consent import (
    close_consent,
    pick_nonce,
    position_address,
    quote_consent,
    request_consent,
    request_hash,
    sign_consent,
    withdraw_consent,
)
from agents._errors import (
    AgentError,
    ApiError,
    Conflict,
    ConnectionLost,
    Forbidden,
    InsufficientCollateral,
    InvalidRequest,
    KeypairError,
    LeverageTooHigh,
    NonceUsed,
    NotFound,
    NotLiquidatable,
    OracleUnavailable,
    PositionNotOpen,
    ProtocolError,
    QuoteExpired,
    RateAboveMax,
    RequestExpired,
    RequestFilled,
    SelfQuote,
    TransportError,
    Unauthorized,
    UnknownMarket,
)
from agents._feeds import FundingRateFeed, ReferenceRate, SimulatedFundingFeed, StaticFundingFeed
from agents._keys import Keypair, generate_keypair, load_keypair, load_or_generate_keypair
from agents._market_maker import MakerStatistics, MarketMaker, QuoteTerms, RiskLimits
from agents._models import (
    MICRO,
    PPM,
    PRICE_SCALE,
    Balances,
    ChainInfo,
    CloseResult,
    Event,
    FundingSettledEvent,
    LiquidationEvent,
    LiquidationResult,
    Market,
    Position,
    PositionClosedEvent,
    PositionOpenedEvent,
    Quote,
    QuoteAcceptedEvent,
    QuoteEvent,
    QuoteExpiredEvent,
    QuoteRejectedEvent,
    RequestExpiredEvent,
    Side,
    TradeRequest,
    TradeRequestEvent,
    format_price,
    format_rate,
    format_usdc,
    parse_event,
    parse_price,
    parse_rate,
    parse_usdc,
)
from agents._signing import Signer, signing_message
from agents._trader import Chooser, Trader, TraderStatistics
from agents._ws import Session, SessionStatistics

__all__ = [
    # client and session
    "Client",
    "ClientStatistics",
    "Session",
    "SessionStatistics",
    # identity and signing
    "Keypair",
    "Signer",
    "generate_keypair",
    "load_keypair",
    "load_or_generate_keypair",
    "signing_message",
    # consents (SPEC §6): the bytes an agent signs for the chain, and their signature
    "close_consent",
    "pick_nonce",
    "position_address",
    "quote_consent",
    "request_consent",
    "request_hash",
    "sign_consent",
    "withdraw_consent",
    # agents
    "Chooser",
    "MakerStatistics",
    "MarketMaker",
    "QuoteTerms",
    "RiskLimits",
    "Trader",
    "TraderStatistics",
    # reference funding-rate feeds
    "FundingRateFeed",
    "ReferenceRate",
    "SimulatedFundingFeed",
    "StaticFundingFeed",
    # models and units
    "MICRO",
    "PPM",
    "PRICE_SCALE",
    "Balances",
    "ChainInfo",
    "CloseResult",
    "LiquidationResult",
    "Market",
    "Position",
    "Quote",
    "Side",
    "TradeRequest",
    "format_price",
    "format_rate",
    "format_usdc",
    "parse_price",
    "parse_rate",
    "parse_usdc",
    # events
    "Event",
    "FundingSettledEvent",
    "LiquidationEvent",
    "PositionClosedEvent",
    "PositionOpenedEvent",
    "QuoteAcceptedEvent",
    "QuoteEvent",
    "QuoteExpiredEvent",
    "QuoteRejectedEvent",
    "RequestExpiredEvent",
    "TradeRequestEvent",
    "parse_event",
    # errors
    "AgentError",
    "ApiError",
    "Conflict",
    "ConnectionLost",
    "Forbidden",
    "InsufficientCollateral",
    "InvalidRequest",
    "KeypairError",
    "LeverageTooHigh",
    "NotFound",
    "NonceUsed",
    "NotLiquidatable",
    "OracleUnavailable",
    "PositionNotOpen",
    "ProtocolError",
    "QuoteExpired",
    "RateAboveMax",
    "RequestExpired",
    "RequestFilled",
    "SelfQuote",
    "TransportError",
    "Unauthorized",
    "UnknownMarket",
]
