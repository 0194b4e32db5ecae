"""The ranges that keep every stored integer inside SQLite's signed 64 bits, by construction.

SQLite stores an INTEGER in at most 8 bytes: binding a Python int past ±(2^63 − 1)
raises OverflowError, and SQL arithmetic that overflows (``free = free + ?``) silently
becomes a REAL. So every integer the venue writes is bounded where it enters:

- an amount (size, collateral, faucet, withdrawal): 1 … ``MAX_AMOUNT`` = 10^15 micro-USDC
  (SPEC §2: 1e9 USDC), checked by the wire parser;
- a price: 1 … ``MAX_PRICE`` = 10^16 (1e8 USD at exponent −8): the pin refuses anything
  else, and the price book treats any feed's price outside it as unusable;
- the venue's cumulative deposits ≤ ``MAX_TOTAL_DEPOSITS`` = 2^62 (deposits past it are
  refused). Conservation (deposits − withdrawals = free + locked + fees) then bounds
  every balance, every locked collateral, the fee account and every SUM over them by
  2^62 < 2^63 − 1, whatever trading does; one agent's deposits stop at ``MAX_BALANCE``;
- a position: N ≤ 10^15, Cr + Cm ≤ 2 × 10^15 at open and funding only moves money
  between them, so collaterals, funding paid and funding totals stay ≤ 2 × 10^15;
  liquidation-index prices are clamped to 2^63 − 1 (`money.liquidation_price_bounds`).

The one quantity that cannot be bounded is price PnL: |pnl| ≤ N × P / P0 reaches
10^15 × 10^16 = 10^31 when a price moves 10^16×. What it moves is exact and small (the
winner gets at most the loser's collateral: no vault, no socialised loss), and each
close reports its PnL exactly (responses and events are decimal strings); only the
stored running total of a position's realized PnL saturates at ±``PNL_LIMIT``.
"""

from __future__ import annotations

from perpd.units import MAX_PRICE, MAX_USDC

INT64_MAX = 2**63 - 1
MAX_AMOUNT = MAX_USDC  # 10^15 micro-USDC
MIN_PRICE = 1  # 0.00000001 at exponent -8
MAX_BALANCE = 10 * MAX_AMOUNT  # 10^16: one agent's free + locked, as far as deposits go
MAX_TOTAL_DEPOSITS = 2**62  # ~4.6e12 USDC over the venue's life
PNL_LIMIT = 2**62  # a stored realized-PnL total saturates here

__all__ = [
    "INT64_MAX",
    "MAX_AMOUNT",
    "MAX_BALANCE",
    "MAX_PRICE",
    "MAX_TOTAL_DEPOSITS",
    "MIN_PRICE",
    "PNL_LIMIT",
    "price_in_range",
    "saturate_pnl",
]


def price_in_range(price: int) -> bool:
    return MIN_PRICE <= price <= MAX_PRICE


def saturate_pnl(pnl: int) -> int:
    """``pnl`` clamped to ±PNL_LIMIT: what a stored running total may hold."""
    return max(-PNL_LIMIT, min(PNL_LIMIT, pnl))
