"""Exact units and typed wire objects: decimal strings to integers, never through a float."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

import agents
from agents import (
    Event,
    LiquidationEvent,
    Position,
    PositionClosedEvent,
    ProtocolError,
    QuoteEvent,
    TradeRequestEvent,
    format_price,
    format_rate,
    format_usdc,
    parse_event,
    parse_price,
    parse_rate,
    parse_usdc,
)
from agents._errors import error_from_wire


@pytest.mark.parametrize(
    "text, micro",
    [
        ("100.000000", 100_000_000),
        ("0.000001", 1),
        ("-0.5", -500_000),
        ("1000000000", 1_000_000_000_000_000),
        ("12.340000", 12_340_000),
        (7, 7_000_000),
        (Decimal("0.1"), 100_000),
        ("0.1000000", 100_000),  # trailing zeros past 6 places are still exact
    ],
)
def test_usdc_parses_exactly(text: Any, micro: int) -> None:
    assert parse_usdc(text) == micro


@pytest.mark.parametrize("bad", ["0.0000001", "1e3", "NaN", "", "1.2.3", " - 1", 0.1, True, None])
def test_usdc_refuses_anything_inexact_or_not_a_decimal(bad: Any) -> None:
    with pytest.raises(ProtocolError):
        parse_usdc(bad)


def test_rates_and_prices() -> None:
    assert parse_rate("0.005") == 5000
    assert parse_rate("-0.0001") == -100
    assert parse_price("65000.12345678") == 6_500_012_345_678
    with pytest.raises(ProtocolError):
        parse_price("1.000000001")


@pytest.mark.parametrize("micro", [0, 1, -1, 999_999, 1_000_000, -123_456_789, 10**15])
def test_formatting_round_trips(micro: int) -> None:
    assert parse_usdc(format_usdc(micro)) == micro
    assert parse_rate(format_rate(micro)) == micro
    assert parse_price(format_price(micro)) == micro


def test_format_matches_the_wire() -> None:
    assert format_usdc(1_500_000) == "1.500000"
    assert format_rate(5000) == "0.005"
    assert format_rate(0) == "0.0"
    assert format_rate(-100) == "-0.0001"
    assert format_price(6_500_000_000_000) == "65000.00000000"


POSITION = {
    "position_id": "pos_1",
    "market": "BTC-PERP",
    "requester": "R",
    "maker": "M",
    "side": "long",
    "size_usdc": "1000.000000",
    "entry_price": "50000.00000000",
    "leverage": 10,
    "requester_collateral_usdc": "100.000000",
    "maker_collateral_usdc": "40.000000",
    "requester_initial_margin_usdc": "100.000000",
    "maker_initial_margin_usdc": "40.000000",
    "funding_rate": "0.0005",
    "funding_paid_usdc": "0.062500",
    "realized_pnl_usdc": "0.000000",
    "status": "open",
    "opened_at": 1,
    "expires_at": None,
    "closed_at": None,
    "exit_price": None,
    "liquidator": None,
    "mark_price": "50900.00000000",
    "unrealized_pnl_usdc": "18.000000",
    "margin_ratio_requester": "0.115",
    "margin_ratio_maker": "0.021",
}


def test_position_fields_and_liquidatable_side() -> None:
    p = Position.from_wire(POSITION)
    assert p.size == 1_000_000_000 and p.entry_price == 5_000_000_000_000
    assert p.funding_rate == 500 and p.funding_paid == 62_500
    assert p.margin_ratio_requester == 115_000
    assert p.exposure_of("R") == 1_000_000_000 and p.exposure_of("M") == -1_000_000_000
    assert p.role_of("X") is None
    # maker equity 40 − 18 = 22 ≥ 40 / 2: safe; at +21 USDC it is 19 < 20: liquidatable
    assert p.liquidatable_side() is None
    worse = Position.from_wire({**POSITION, "unrealized_pnl_usdc": "21.000000"})
    assert worse.liquidatable_side() == "maker"
    closed = Position.from_wire({**POSITION, "status": "closed", "unrealized_pnl_usdc": "0"})
    assert closed.liquidatable_side() is None


def test_events_parse_to_their_types() -> None:
    request = {
        "request_id": "req_1",
        "agent_id": "A",
        "market": "SOL-PERP",
        "side": "short",
        "size_usdc": "250.5",
        "leverage": 3,
        "max_funding_rate": "-0.001",
        "duration": "24h",
        "expires_at": 99,
    }
    ev = parse_event({"type": "trade_request", "seq": 3, "ts": 9, "data": request})
    assert isinstance(ev, TradeRequestEvent) and ev.seq == 3
    assert ev.request.size == 250_500_000 and ev.request.max_funding_rate == -1000
    assert ev.request.status == "open"  # SPEC's minimal event has no status: open
    quote = {
        "quote_id": "q",
        "request_id": "req_1",
        "agent_id": "M",
        "funding_rate": "0.0002",
        "collateral_usdc": "10",
        "expires_at": 5,
    }
    qe = parse_event({"type": "quote", "seq": 4, "ts": 9, "data": quote})
    assert isinstance(qe, QuoteEvent) and qe.quote.collateral == 10_000_000
    closed = parse_event(
        {
            "type": "position_closed",
            "seq": 5,
            "ts": 9,
            "data": {**POSITION, "realized_pnl_usdc": "-1.5", "released_usdc": "98.5"},
        }
    )
    assert isinstance(closed, PositionClosedEvent)
    assert (closed.realized_pnl, closed.released) == (-1_500_000, 98_500_000)
    liq = parse_event(
        {
            "type": "liquidation",
            "seq": 6,
            "ts": 9,
            "data": {**POSITION, "liquidator": "L", "reward_usdc": "2", "status": "liquidated"},
        }
    )
    assert isinstance(liq, LiquidationEvent) and liq.reward == 2_000_000
    other = parse_event({"type": "something_new", "seq": 7, "ts": 9, "data": {"x": 1}})
    assert type(other) is Event and other.data == {"x": 1}


def test_a_malformed_event_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="size_usdc"):
        parse_event(
            {
                "type": "trade_request",
                "seq": 1,
                "ts": 1,
                "data": {
                    "request_id": "r",
                    "agent_id": "A",
                    "market": "BTC-PERP",
                    "side": "long",
                    "size_usdc": 1.5,  # a float: its exact value is unknowable
                },
            }
        )
    with pytest.raises(ProtocolError):
        parse_event({"type": "quote", "seq": "1", "ts": 1, "data": {}})


@pytest.mark.parametrize(
    "status, code, cls",
    [
        (400, "rate_above_max", agents.RateAboveMax),
        (409, "request_filled", agents.RequestFilled),
        (409, "brand_new_conflict", agents.Conflict),
        (422, "insufficient_collateral", agents.InsufficientCollateral),
        (401, "unauthorized", agents.Unauthorized),
        (418, "teapot", agents.ApiError),
    ],
)
def test_error_bodies_map_to_classes_that_keep_the_code(status: int, code: str, cls: type) -> None:
    exc = error_from_wire(status, {"error": {"code": code, "message": "m"}})
    assert type(exc) is cls
    assert exc.code == code and exc.status == status and exc.message == "m"
