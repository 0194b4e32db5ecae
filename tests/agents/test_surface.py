"""The SDK's public surface: exactly ``agents.__all__``, defined in private modules, no perpd."""

from __future__ import annotations

import subprocess
import sys
import types

import agents

EXPECTED = {
    "AgentError", "ApiError", "Balances", "Chooser", "Client", "ClientStatistics",
    "CloseResult", "Conflict", "ConnectionLost", "Event", "Forbidden", "FundingRateFeed",
    "FundingSettledEvent", "InsufficientCollateral", "InvalidRequest", "Keypair",
    "KeypairError", "LeverageTooHigh", "LiquidationEvent", "LiquidationResult", "MICRO",
    "MakerStatistics", "Market", "MarketMaker", "NotFound", "NotLiquidatable",
    "OracleUnavailable", "PPM", "PRICE_SCALE", "Position", "PositionClosedEvent",
    "PositionNotOpen", "PositionOpenedEvent", "ProtocolError", "Quote",
    "QuoteAcceptedEvent", "QuoteEvent", "QuoteExpired", "QuoteExpiredEvent",
    "QuoteRejectedEvent", "QuoteTerms", "RateAboveMax", "ReferenceRate", "RequestExpired",
    "RequestExpiredEvent", "RequestFilled", "RiskLimits", "SelfQuote", "Session",
    "SessionStatistics", "Side", "Signer", "SimulatedFundingFeed", "StaticFundingFeed",
    "TradeRequest", "TradeRequestEvent", "Trader", "TraderStatistics", "TransportError",
    "Unauthorized", "UnknownMarket", "format_price", "format_rate", "format_usdc",
    "generate_keypair", "load_keypair", "load_or_generate_keypair", "parse_event",
    "parse_price", "parse_rate", "parse_usdc", "signing_message",
    "close_consent", "quote_consent", "request_consent", "request_hash", "sign_consent",
    "withdraw_consent", "ChainInfo", "NonceUsed", "pick_nonce", "position_address",
    "Fill", "FundingCurveEvent", "FundingCurvePoint", "FundingPayment", "HistoryPage",
    "LiquidationRecord", "HistoryTally", "TradeHistory",
    "QuoteCancelledEvent", "RequestCancelledEvent", "MmpTriggeredEvent", "MakerProtection",
}  # fmt: skip


def test_all_is_exactly_the_public_surface() -> None:
    assert set(agents.__all__) == EXPECTED
    assert len(agents.__all__) == len(EXPECTED), "duplicates in __all__"
    public = {
        name
        for name, value in vars(agents).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)  # agents.trader
    }
    assert public == EXPECTED, "a public name is exported without being in __all__"


def test_every_export_lives_in_a_private_module() -> None:
    for name in agents.__all__:
        obj = getattr(agents, name)
        module = getattr(obj, "__module__", None)
        if module is None or name in ("MICRO", "PPM", "PRICE_SCALE", "Side", "Chooser"):
            continue
        if module.startswith("solders"):  # Keypair is re-exported as the identity type
            continue
        assert module.startswith("agents._"), (name, module)


def test_every_error_is_an_agent_error_and_api_errors_carry_their_code() -> None:
    for name in agents.__all__:
        obj = getattr(agents, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, agents.AgentError), name
    assert agents.RequestExpired.code == "request_expired"
    assert issubclass(agents.RequestExpired, agents.Conflict)
    assert agents.InsufficientCollateral.status == 422


def test_the_sdk_does_not_import_perpd() -> None:
    code = (
        "import sys, agents, agents.trader, agents.conservative_mm, agents.aggressive_mm, "
        "agents.arbitrage_mm\n"
        "bad = sorted(m for m in sys.modules if m == 'perpd' or m.startswith('perpd.'))\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
