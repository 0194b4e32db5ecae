"""Writes tests/vectors/pyth_price_update.json: `python -m tests.chain.pyth_vectors [--check]`.

The escrow program's host test (`src/pyth.rs`) reads every case: account bytes built by
`perpd.chain.price_update_v2`, the feed id and clock the program is given, and what it
must answer. Expected prices come from the daemon's own normalisation
(`perpd.oracle.normalize`, `perpd.pyth.normalize_conf`), and each case's stated outcome
is checked here against the daemon's usability rule (`perpd.oracle.unusable_reason`),
so the chain and the daemon accept and refuse the same prices. `test_pyth_account.py`
fails if the committed file is not what this writes; ``--check`` exits 1 instead of
writing.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perpd.chain import (
    BTC_USD_FEED_ID,
    ETH_USD_FEED_ID,
    SOL_USD_FEED_ID,
    Verification,
    price_update_v2,
)
from perpd.oracle import Price, normalize, unusable_reason
from perpd.pyth import normalize_conf

PATH = Path(__file__).resolve().parents[1] / "vectors" / "pyth_price_update.json"
T = 1_700_000_000
U64_MAX = 2**64 - 1
BTC = 65_000_00000000  # 65,000 USD at exponent -8


@dataclass(frozen=True)
class Case:
    name: str
    price: int
    conf: int
    exponent: int = -8
    publish_time: int = T
    now: int = T + 5
    feed: bytes = BTC_USD_FEED_ID  # in the account
    asked: bytes = BTC_USD_FEED_ID  # the market's feed id the program checks
    verification: Verification = "full"
    error: str | None = None  # the refusal the program must give, None = usable
    edit: dict[int, int] = field(default_factory=dict)  # byte offset -> new value
    length: int | None = None  # truncate the account data


def _cases() -> list[Case]:
    p50 = 50 * 1_300_000_000_000  # 65,000 USD, a multiple of 50
    return [
        Case("full_exponent_-8", BTC, 1_234_567),
        Case("exponent_-5_scaled_up", 6_500_012_345, 9_999, exponent=-5),
        Case(
            "exponent_-10_truncated_and_conf_rounded_up", 6_500_000_000_012_399, 101, exponent=-10
        ),
        Case("exponent_-10_exact", 6_500_000_000_000_000, 100, exponent=-10),
        Case("eth_feed", 3_200_12345678, 1_000_000, feed=ETH_USD_FEED_ID, asked=ETH_USD_FEED_ID),
        Case("sol_feed", 150_00000000, 7, feed=SOL_USD_FEED_ID, asked=SOL_USD_FEED_ID),
        Case("zero_conf", BTC, 0),
        Case("exponent_0", 65_000, 1, exponent=0),
        # the 60 s boundary, and a publish time ahead of the clock (accepted, as Pyth's SDK)
        Case("age_60_usable", BTC, 1, now=T + 60),
        Case("age_61_stale", BTC, 1, now=T + 61, error="Stale"),
        Case("published_after_now", BTC, 1, now=T - 30),
        Case("publish_time_far_past", BTC, 1, publish_time=-(2**63), now=T, error="Stale"),
        # the 2 % boundary: conf <= price / 50 on the normalised values
        Case("conf_exactly_2pct", p50, p50 // 50),
        Case("conf_one_above_2pct", p50, p50 // 50 + 1, error="WideConfidence"),
        Case("conf_2pct_price_not_multiple", p50 + 49, p50 // 50),
        Case("conf_2pct_plus_one_not_multiple", p50 + 49, p50 // 50 + 1, error="WideConfidence"),
        Case("conf_2pct_at_exponent_-10", p50 * 100 + 99, p50 // 50 * 100, exponent=-10),
        Case(
            "conf_rounded_up_past_2pct_at_-10",
            p50 * 100 + 99,
            p50 // 50 * 100 + 1,
            exponent=-10,
            error="WideConfidence",
        ),
        Case("conf_u64_max", BTC, U64_MAX, error="WideConfidence"),
        # signs and sizes
        Case("price_zero", 0, 0, error="NonPositive"),
        Case("price_negative", -1, 0, error="NonPositive"),
        Case("price_i64_min", -(2**63), 0, error="NonPositive"),
        Case("price_truncated_to_zero", 99, 0, exponent=-10, error="NonPositive"),
        Case("exponent_-40_truncated_to_zero", 2**63 - 1, 1, exponent=-40, error="NonPositive"),
        Case("price_i64_max_exponent_-8", 2**63 - 1, 0, error="OutOfRange"),
        Case("price_at_the_maximum", 10**16, 0),
        Case("price_one_above_the_maximum", 10**16 + 1, 0, error="OutOfRange"),
        Case("price_above_max_after_scaling", 10**12 + 1, 0, exponent=-4, error="OutOfRange"),
        Case("price_overflows_u64_at_exponent_0", 2 * 10**11, 1, exponent=0, error="Overflow"),
        Case("exponent_i32_max", 1, 0, exponent=2**31 - 1, error="Overflow"),
        Case("conf_overflows_u64", 1, 10**12, exponent=0, error="Overflow"),
        # feed and verification
        Case("wrong_feed", 3_200_00000000, 1, feed=ETH_USD_FEED_ID, error="WrongFeed"),
        Case("partial_5_signatures", BTC, 1, verification=("partial", 5), error="NotFullyVerified"),
        Case(
            "partial_and_wrong_feed",
            BTC,
            1,
            feed=ETH_USD_FEED_ID,
            verification=("partial", 13),
            error="NotFullyVerified",
        ),
        # layouts
        Case("full_without_padding_byte", BTC, 1, length=133),
        Case("full_truncated", BTC, 1, length=132, error="BadLayout"),
        Case(
            "partial_truncated", BTC, 1, verification=("partial", 1), length=133, error="BadLayout"
        ),
        Case("wrong_discriminator", BTC, 1, edit={0: 35}, error="BadLayout"),
        Case("unknown_verification_tag", BTC, 1, edit={40: 2}, error="BadLayout"),
        Case("empty", BTC, 1, length=0, error="BadLayout"),
    ]


def _expected(case: Case) -> dict[str, Any]:
    """What the program must answer, checked against the daemon's own rules."""
    if case.error in ("BadLayout", "WrongFeed", "NotFullyVerified"):
        return {"error": case.error}
    price = normalize(case.price, case.exponent) if abs(case.exponent) < 100 else None
    conf = normalize_conf(case.conf, case.exponent) if abs(case.exponent) < 100 else None
    if case.error == "Overflow":
        assert price is None or price > U64_MAX or (conf is not None and conf > U64_MAX), case
        return {"error": case.error}
    assert price is not None and conf is not None
    reason = unusable_reason(Price("X", price, conf, case.publish_time, "pyth"), case.now)
    want_word = {
        None: None,
        "NonPositive": "positive",
        "OutOfRange": "maximum",
        "Stale": "stale",
        "WideConfidence": "wider",
    }
    if case.error is None:
        assert reason is None, (case, reason)
        return {"price": price, "conf": conf, "publish_time": case.publish_time}
    word = want_word[case.error]
    assert reason is not None and word is not None and word in reason, (case, reason)
    return {"error": case.error}


def _data(case: Case) -> bytes:
    data = bytearray(
        price_update_v2(
            case.feed,
            case.price,
            case.conf,
            case.exponent,
            case.publish_time,
            verification=case.verification,
            posted_slot=123_456,
        )
    )
    for at, value in case.edit.items():
        data[at] = value
    return bytes(data if case.length is None else data[: case.length])


def render() -> str:
    doc = {
        "description": (
            "PriceUpdateV2 account bytes (perpd.chain.price_update_v2) and what the escrow "
            "program's pyth::read_price must return for them; written by "
            "`python -m tests.chain.pyth_vectors`, do not edit by hand. expected is "
            "{price, conf, publish_time} at exponent -8 or {error: <PythError variant>}."
        ),
        "cases": [
            {
                "name": c.name,
                "data": _data(c).hex(),
                "feed_id": c.asked.hex(),
                "now": c.now,
                "expected": _expected(c),
            }
            for c in _cases()
        ],
    }
    return json.dumps(doc, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = PATH.read_text() if PATH.exists() else ""
        return 0 if current == text else 1
    PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
