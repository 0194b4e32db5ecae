"""Parsing Pyth Hermes answers into `Price`s: pure, no I/O, no floats.

Hermes ``GET /v2/updates/price/latest?ids[]=<id>&parsed=true`` answers::

    {"binary": {...},
     "parsed": [{"id": "e62d...", "price": {"price": "6512345678900", "conf": "1234567",
                 "expo": -8, "publish_time": 1732612345}, "ema_price": {...}, ...}]}

Prices and confidences are decimal strings (int64 / uint64 on Pythnet), ``expo`` an int.
We normalise to exponent -8 (`perpd.oracle.PRICE_EXPO`): the price truncated toward zero
like every other feed, the confidence rounded *up* so it is never understated. Whether a
price may be traded on (age, confidence, sign) is not decided here: that is
`PriceBook.usable()`'s job, and we pass on exactly what Hermes said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeGuard

from perpd.errors import PerpdError
from perpd.oracle import PRICE_EXPO, Price, normalize

__all__ = [
    "HermesError",
    "HermesFormatError",
    "Parsed",
    "normalize_conf",
    "normalize_feed_id",
    "parse",
    "parse_latest",
]

SOURCE = "pyth"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1
# Pyth exponents are small (-5 .. -12 in practice); the bound keeps 10**shift cheap.
MAX_ABS_EXPO = 30

_DECIMAL = re.compile(r"-?[0-9]{1,20}")


class HermesError(PerpdError):
    """Hermes could not be read (transport, status) or its answer was not understood."""


class HermesFormatError(HermesError):
    """The Hermes answer is not the expected shape at all (not one bad entry)."""


@dataclass(frozen=True)
class Parsed:
    """What one Hermes answer yielded: the prices, and why any entries were dropped."""

    prices: list[Price]
    skipped: list[str]


def normalize_feed_id(feed_id: str) -> str:
    """``feed_id`` lowercased without ``0x``: the one spelling we compare on."""
    s = feed_id.strip().lower()
    return s[2:] if s.startswith("0x") else s


def normalize_conf(conf: int, expo: int) -> int:
    """``conf × 10^expo`` at exponent -8, rounded up so confidence is never understated."""
    shift = expo - PRICE_EXPO
    if shift >= 0:
        return conf * 10**shift
    return -(-conf // 10**-shift)


def parse_latest(payload: object, feeds: dict[str, str]) -> list[Price]:
    """The prices in a decoded Hermes ``latest`` answer for the feeds we list.

    ``feeds`` maps feed id (hex; ``0x`` and case are ignored) to market name. Entries for
    other ids are ignored; malformed entries are dropped (see `parse` for the reasons).
    Raises `HermesFormatError` if ``payload`` is not a Hermes answer at all.
    """
    return parse(payload, feeds).prices


def parse(payload: object, feeds: dict[str, str]) -> Parsed:
    """Like `parse_latest`, and also says why each malformed entry was dropped."""
    if not isinstance(payload, dict):
        raise HermesFormatError(f"expected a JSON object, got {type(payload).__name__}")
    entries = payload.get("parsed")
    if not isinstance(entries, list):
        raise HermesFormatError("no 'parsed' list in the answer (was parsed=true sent?)")
    wanted = {normalize_feed_id(k): v for k, v in feeds.items()}
    prices: list[Price] = []
    skipped: list[str] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            skipped.append(f"entry {i}: not an object")
            continue
        raw_id = entry.get("id")
        if not isinstance(raw_id, str):
            skipped.append(f"entry {i}: no string 'id'")
            continue
        feed_id = normalize_feed_id(raw_id)
        market = wanted.get(feed_id)
        if market is None:
            continue  # a feed we did not ask for: not an error
        try:
            prices.append(_price(market, entry.get("price")))
        except ValueError as exc:
            skipped.append(f"{market} ({feed_id[:8]}…): {exc}")
    return Parsed(prices, skipped)


def _price(market: str, p: object) -> Price:
    """One ``price`` object as a `Price`; ValueError says what is wrong with it."""
    if not isinstance(p, dict):
        raise ValueError("'price' is not an object")
    price = _integer(p.get("price"), "price", INT64_MIN, INT64_MAX)
    conf = _integer(p.get("conf"), "conf", 0, UINT64_MAX)
    expo = p.get("expo")
    if not _is_int(expo) or abs(expo) > MAX_ABS_EXPO:
        raise ValueError(f"expo {expo!r} is not an integer within ±{MAX_ABS_EXPO}")
    publish_time = p.get("publish_time")
    if not _is_int(publish_time) or publish_time <= 0:
        raise ValueError(f"publish_time {publish_time!r} is not a positive integer")
    # A non-positive price is recorded as such: `unusable_reason` refuses it, which is
    # safer than keeping an older positive price alive.
    return Price(
        market=market,
        price=normalize(price, expo),
        conf=normalize_conf(conf, expo),
        publish_time=publish_time,
        source=SOURCE,
    )


def _is_int(v: object) -> TypeGuard[int]:
    return isinstance(v, int) and not isinstance(v, bool)


def _integer(v: object, name: str, lo: int, hi: int) -> int:
    """A decimal string (Hermes' encoding) or a JSON integer, within [lo, hi]; never a float."""
    if isinstance(v, str) and _DECIMAL.fullmatch(v):
        n = int(v)
    elif _is_int(v):
        n = v
    else:
        raise ValueError(f"{name} {v!r} is not a decimal integer")
    if not lo <= n <= hi:
        raise ValueError(f"{name} {n} is out of range")
    return n
