"""Wire units: parse and format money, rates, prices and small integers exactly.

Inside the daemon money is integer micro-USDC, rates integer ppm, prices integers with
exponent -8. On the wire they are decimal strings (numbers accepted on the way in,
parsed from their JSON text as `Decimal`, never through a float). Every parser raises
`InvalidRequest` naming the field, so bad input is always a 400 and never a 500.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from perpd.errors import InvalidRequest

MICRO = 1_000_000  # micro-USDC per USDC
PPM = 1_000_000
PRICE_SCALE = 100_000_000  # exponent -8
MAX_USDC = 1_000_000_000 * MICRO  # SPEC §2: nothing above 1e9 USDC
MAX_RATE_PPM = 50_000  # SPEC §3: any funding rate within ±0.05 per period
MAX_PRICE = 10**8 * PRICE_SCALE  # 100 million per unit: well above any listed asset
_MAX_TEXT = 64  # longest numeric text we look at
_MAX_MAGNITUDE = 15  # no wire number has more than 16 digits before the point
# A decimal in ASCII only: Python's int() and Decimal() also take "²", "٣" and "1_0".
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?", re.ASCII)
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _json_number(text: str) -> Decimal:
    """A JSON number with a fraction or exponent, bounded before `Decimal` sees it."""
    if len(text) > _MAX_TEXT:
        raise ValueError(f"number {text[:20]}... is too long")
    try:
        return Decimal(text)  # JSON's grammar is ASCII; only the exponent can be out of range
    except InvalidOperation as exc:
        raise ValueError(f"number {text} is out of range") from exc


def _no_lone_surrogates(value: Any) -> None:
    """Refuse a ``\\ud800`` escape anywhere: it is not Unicode, and SQLite cannot store it."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            texts: Iterable[str] = (item,)
        elif isinstance(item, dict):
            texts = item.keys()
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
            continue
        else:
            continue
        for text in texts:
            if not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as exc:
                    raise InvalidRequest(
                        "strings must be valid Unicode (no lone surrogate)"
                    ) from exc


def loads(body: bytes | str) -> Any:
    """JSON with floats parsed as `Decimal` and NaN/Infinity refused (SPEC §2)."""
    try:
        data = json.loads(body, parse_float=_json_number, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InvalidRequest(f"malformed JSON: {exc}") from exc
    _no_lone_surrogates(data)
    return data


def _parts(value: object, field: str) -> tuple[int, int]:
    """``value`` as an exact ``(coefficient, exponent)`` pair, with no trailing zeros."""
    if isinstance(value, bool) or value is None:
        raise InvalidRequest(f"{field} must be a number or a decimal string")
    if isinstance(value, int):
        if abs(value) >= 10 ** (_MAX_MAGNITUDE + 1):
            raise InvalidRequest(f"{field} is too large or too long")
        coefficient, exponent = value, 0
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidRequest(f"{field} must be finite")
        sign, digits, exp = value.as_tuple()
        if len(digits) > _MAX_TEXT:
            raise InvalidRequest(f"{field} is too large or too long")
        magnitude = int("".join(map(str, digits)))
        coefficient, exponent = (-magnitude if sign else magnitude), int(exp)
    elif isinstance(value, str):
        m = _DECIMAL.fullmatch(value) if len(value) <= _MAX_TEXT else None
        if m is None or not (m.group(2) or m.group(3)):
            raise InvalidRequest(f"{field} must be a decimal number, got {value[:_MAX_TEXT]!r}")
        whole, frac = m.group(2), m.group(3) or ""
        magnitude = int(whole + frac)
        coefficient = -magnitude if m.group(1) == "-" else magnitude
        exponent = int(m.group(4) or 0) - len(frac)
    else:
        raise InvalidRequest(f"{field} must be a number or a decimal string")
    if coefficient == 0:
        return 0, 0
    while coefficient % 10 == 0:  # at most _MAX_TEXT steps
        coefficient //= 10
        exponent += 1
    if len(str(abs(coefficient))) - 1 + exponent > _MAX_MAGNITUDE:
        raise InvalidRequest(f"{field} is too large or too long")
    return coefficient, exponent


def _scaled(value: object, field: str, decimals: int) -> int:
    """``value × 10^decimals`` as an exact integer; refuses more decimals than that,
    however the number is written (``"1E-999999999"`` too). Integer arithmetic only:
    no `Decimal` context can round a tiny value to zero or overflow on a huge one."""
    coefficient, exponent = _parts(value, field)
    if exponent < -decimals:
        raise InvalidRequest(f"{field} has more than {decimals} decimals")
    return coefficient * 10 ** (exponent + decimals)


def parse_usdc(value: object, field: str, *, allow_zero: bool = False) -> int:
    """A USDC amount as micro-USDC: positive (or zero), ≤ 6 decimals, ≤ 1e9 USDC."""
    micro = _scaled(value, field, 6)
    if micro < 0 or (micro == 0 and not allow_zero):
        raise InvalidRequest(f"{field} must be positive")
    if micro > MAX_USDC:
        raise InvalidRequest(f"{field} is above the maximum of 1000000000 USDC")
    return micro


def parse_rate(value: object, field: str) -> int:
    """A funding rate per period as signed ppm, within ±0.05 (SPEC §3)."""
    ppm = _scaled(value, field, 6)
    if abs(ppm) > MAX_RATE_PPM:
        raise InvalidRequest(f"{field} must lie within ±0.05 per funding period")
    return ppm


def parse_price(value: object, field: str) -> int:
    """A positive price with exponent -8 (≤ 8 decimals)."""
    p = _scaled(value, field, 8)
    if p <= 0 or p > MAX_PRICE:
        raise InvalidRequest(f"{field} must be positive and below 100000000")
    return p


def parse_int(value: object, field: str, lo: int, hi: int) -> int:
    """An integer in ``[lo, hi]``; JSON integers or digit strings, never 2.0 or true."""
    if isinstance(value, bool):
        raise InvalidRequest(f"{field} must be an integer")
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        value = int(value)
    if not isinstance(value, int):
        raise InvalidRequest(f"{field} must be an integer")
    if not lo <= value <= hi:
        raise InvalidRequest(f"{field} must be between {lo} and {hi}")
    return value


def _fixed(value: int, decimals: int) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


def format_usdc(micro: int) -> str:
    """``123456789`` → ``"123.456789"`` (always 6 decimals, SPEC §6)."""
    return _fixed(micro, 6)


def format_price(price: int) -> str:
    """``6500012345678`` → ``"65000.12345678"`` (exponent -8)."""
    return _fixed(price, 8)


def format_rate(ppm: int) -> str:
    """``5000`` → ``"0.005"``: the shortest exact decimal."""
    text = _fixed(ppm, 6).rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_ratio_ppm(ppm: int) -> str:
    """A ratio held in ppm as a decimal string (``"0.052"``)."""
    return format_rate(ppm)


def iso(ts: int | None) -> str | None:
    """Unix seconds as ISO-8601 UTC (SPEC §2: the API also shows ISO-8601)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
