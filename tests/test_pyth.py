"""Parsing Hermes answers: exponents, rounding, ids, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from perpd.markets import MARKETS
from perpd.oracle import Price
from perpd.pyth import HermesFormatError, normalize_conf, parse, parse_latest

BTC = MARKETS["BTC-PERP"].feed_id
ETH = MARKETS["ETH-PERP"].feed_id
FEEDS = {BTC: "BTC-PERP", ETH: "ETH-PERP"}
T = 1_732_612_345


def entry(feed_id: str = BTC, **price: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"price": "6512345678900", "conf": "1234567", "expo": -8}
    p["publish_time"] = T
    p.update(price)
    return {
        "id": feed_id,
        "price": p,
        "ema_price": dict(p),
        "metadata": {"slot": 1, "proof_available_time": T, "prev_publish_time": T - 1},
    }


def answer(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"binary": {"encoding": "hex", "data": ["00"]}, "parsed": list(entries)}


def test_expo_minus_8_is_taken_as_is() -> None:
    assert parse_latest(answer(entry()), FEEDS) == [
        Price("BTC-PERP", 6512345678900, 1234567, T, "pyth")
    ]


def test_expo_minus_5_is_scaled_up() -> None:
    [p] = parse_latest(answer(entry(price="6512345", conf="12", expo=-5)), FEEDS)
    assert (p.price, p.conf) == (6512345000, 12000)


def test_expo_minus_10_truncates_price_and_rounds_conf_up() -> None:
    [p] = parse_latest(answer(entry(price="651234567899", conf="101", expo=-10)), FEEDS)
    assert p.price == 6512345678  # 65.12345678|99 truncated
    assert p.conf == 2  # 1.01e-8 must not become 1e-8


def test_conf_that_divides_exactly_is_not_bumped() -> None:
    [p] = parse_latest(answer(entry(price="100000", conf="300", expo=-10)), FEEDS)
    assert p.conf == 3


@pytest.mark.parametrize(
    ("conf", "expo", "want"),
    [(0, -10, 0), (1, -10, 1), (99, -10, 1), (100, -10, 1), (101, -10, 2), (7, -6, 700)],
)
def test_normalize_conf_never_understates(conf: int, expo: int, want: int) -> None:
    assert normalize_conf(conf, expo) == want


def test_ids_with_0x_and_any_case_match() -> None:
    payload = answer(entry("0x" + BTC.upper()), entry("0X" + ETH, price="320000000000"))
    assert [(p.market, p.price) for p in parse_latest(payload, FEEDS)] == [
        ("BTC-PERP", 6512345678900),
        ("ETH-PERP", 320000000000),
    ]


def test_feed_keys_with_0x_match_too() -> None:
    assert len(parse_latest(answer(entry()), {"0x" + BTC.upper(): "BTC-PERP"})) == 1


def test_ids_not_asked_for_are_ignored_silently() -> None:
    parsed = parse(answer(entry("ab" * 32), entry()), FEEDS)
    assert [p.market for p in parsed.prices] == ["BTC-PERP"]
    assert parsed.skipped == []


def test_stale_or_wide_prices_are_recorded_as_said() -> None:
    """Judging age and confidence is the book's job; parsing must not hide them."""
    [p] = parse_latest(answer(entry(publish_time=1, conf="999999999999")), FEEDS)
    assert (p.publish_time, p.conf) == (1, 999999999999)


def test_non_positive_price_is_passed_on_for_the_book_to_refuse() -> None:
    [p] = parse_latest(answer(entry(price="-5")), FEEDS)
    assert p.price == -5


def test_integers_are_accepted_as_well_as_strings() -> None:
    [p] = parse_latest(answer(entry(price=6512345678900, conf=0)), FEEDS)
    assert (p.price, p.conf) == (6512345678900, 0)


@pytest.mark.parametrize(
    "bad",
    [
        {"price": 65123.45},  # a float, never
        {"price": "65123.45"},
        {"price": "1e9"},
        {"price": " 1"},
        {"price": True},
        {"price": str(2**63)},  # outside int64
        {"conf": "-1"},
        {"conf": None},
        {"expo": "-8"},
        {"expo": -8.0},
        {"expo": 400},
        {"expo": False},
        {"publish_time": "1732612345"},
        {"publish_time": 0},
        {"publish_time": 1732612345.5},
    ],
)
def test_malformed_entry_is_skipped_with_a_reason(bad: dict[str, Any]) -> None:
    parsed = parse(answer(entry(**bad), entry(ETH)), FEEDS)
    assert [p.market for p in parsed.prices] == ["ETH-PERP"]
    [why] = parsed.skipped
    assert why.startswith("BTC-PERP")


@pytest.mark.parametrize(
    "bad_entry",
    [
        "not an object",
        {"price": {}},  # no id
        {"id": 7, "price": {}},
        {"id": BTC},  # no price object
        {"id": BTC, "price": ["6512345678900", "1", -8, T]},
    ],
)
def test_malformed_entry_shapes_are_skipped(bad_entry: object) -> None:
    parsed = parse({"parsed": [bad_entry, entry(ETH)]}, FEEDS)
    assert [p.market for p in parsed.prices] == ["ETH-PERP"]
    assert len(parsed.skipped) == 1


def test_missing_field_reason_names_it() -> None:
    e = entry()
    del e["price"]["conf"]
    [why] = parse(answer(e), FEEDS).skipped
    assert "conf" in why


@pytest.mark.parametrize(
    "payload",
    [None, [], "parsed", 3, {}, {"binary": {}}, {"parsed": None}, {"parsed": {"id": BTC}}],
)
def test_payload_of_the_wrong_shape_raises(payload: object) -> None:
    with pytest.raises(HermesFormatError):
        parse_latest(payload, FEEDS)


def test_empty_parsed_list_is_no_prices() -> None:
    assert parse_latest({"parsed": []}, FEEDS) == []
