"""The limits a person sets on an LLM agent, and their checks: pure logic, no I/O.

`perpd mcp` reads them from its TOML file (``[limits]``) and checks every trade against
them before anything is sent to the venue, so a model cannot talk its way past them:
markets allowed, notional per trade, leverage, open notional, loss per UTC day, and a
notional above which the person is asked to confirm. Money is int micro-USDC; in the
file it is a decimal string (or an integer) of USDC, never a float.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import Position, format_usdc, parse_usdc
from agents._errors import ProtocolError

__all__ = [
    "DAY_S",
    "Exposure",
    "LimitError",
    "Limits",
    "LimitsFileError",
    "check_quote",
    "check_trade",
    "exposure_of",
    "limits_from_file",
    "limits_from_mapping",
]

DAY_S = 86_400
MICRO = 1_000_000


class LimitsFileError(ValueError):
    """The limits file cannot be used; the message names the key."""


class LimitError(Exception):
    """A trade the limits refuse: ``code`` for a model to branch on, ``message`` for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What the agent may do. ``markets`` None: every listed market. ``confirm_above``
    None: never ask; 0: ask for every trade."""

    markets: frozenset[str] | None = None
    max_notional: int = 1_000 * MICRO
    max_leverage: int = 5
    max_open_notional: int = 5_000 * MICRO
    max_daily_loss: int = 250 * MICRO
    confirm_above: int | None = 500 * MICRO

    def view(self) -> dict[str, Any]:
        """The limits as the `account` tool shows them (decimal strings)."""
        return {
            "markets": None if self.markets is None else sorted(self.markets),
            "max_notional_usdc": format_usdc(self.max_notional),
            "max_leverage": self.max_leverage,
            "max_open_notional_usdc": format_usdc(self.max_open_notional),
            "max_daily_loss_usdc": format_usdc(self.max_daily_loss),
            "confirm_above_usdc": None
            if self.confirm_above is None
            else format_usdc(self.confirm_above),
        }


@dataclass(frozen=True)
class Exposure:
    """The agent's state that the limits weigh: notional open now (both sides) and the
    loss counted for today (positive micro-USDC; 0 when the day is flat or up)."""

    open_notional: int
    daily_loss: int


_KEYS = {
    "markets",
    "max_notional_usdc",
    "max_leverage",
    "max_open_notional_usdc",
    "max_daily_loss_usdc",
    "confirm_above_usdc",
}


def _money(data: Mapping[str, Any], key: str, default: int | None) -> int | None:
    if key not in data:
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise LimitsFileError(f'limits.{key} must be a decimal string of USDC, like "1000"')
    try:
        micro = parse_usdc(value)
    except ProtocolError as exc:
        raise LimitsFileError(f"limits.{key}: {exc}") from None
    if micro < 0:
        raise LimitsFileError(f"limits.{key} must not be negative")
    return micro


def limits_from_mapping(data: Mapping[str, Any]) -> Limits:
    """`Limits` from the ``[limits]`` table; unknown keys are refused by name (a typo
    must never leave a default in force)."""
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise LimitsFileError(f"unknown key limits.{unknown[0]}")
    base = Limits()
    markets = data.get("markets")
    if markets is not None and (
        not isinstance(markets, list) or not all(isinstance(m, str) and m for m in markets)
    ):
        raise LimitsFileError("limits.markets must be a list of market names")
    leverage = data.get("max_leverage", base.max_leverage)
    if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
        raise LimitsFileError("limits.max_leverage must be a positive integer")
    return Limits(
        markets=None if markets is None else frozenset(markets),
        max_notional=_money(data, "max_notional_usdc", base.max_notional) or 0,
        max_leverage=leverage,
        max_open_notional=_money(data, "max_open_notional_usdc", base.max_open_notional) or 0,
        max_daily_loss=_money(data, "max_daily_loss_usdc", base.max_daily_loss) or 0,
        confirm_above=_money(data, "confirm_above_usdc", base.confirm_above),
    )


def limits_from_file(path: str | Path | None) -> Limits:
    """The ``[limits]`` of a TOML file (defaults without a file); other tables are refused."""
    if path is None:
        return Limits()
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise LimitsFileError(f"cannot read {p}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise LimitsFileError(f"{p}: {exc}") from None
    other = sorted(set(data) - {"limits"})
    if other:
        raise LimitsFileError(f"{p}: unknown table or key {other[0]!r} (only [limits])")
    table = data.get("limits", {})
    if not isinstance(table, dict):
        raise LimitsFileError(f"{p}: limits must be a table")
    try:
        return limits_from_mapping(table)
    except LimitsFileError as exc:
        raise LimitsFileError(f"{p}: {exc}") from None


def _own_pnl(p: Position, agent_id: str) -> int:
    """The agent's PnL on ``p`` over its life: price PnL realised and unrealised, less
    the funding it paid (the requester's figures, turned for a maker)."""
    pnl = p.realized_pnl + (p.unrealized_pnl or 0) - p.funding_paid
    return pnl if p.role_of(agent_id) == "requester" else -pnl


def exposure_of(positions: Iterable[Position], agent_id: str, now: float) -> Exposure:
    """Open notional and today's loss from the agent's positions.

    Today's loss sums the PnL of every position that is open now or was closed (or
    liquidated) since 00:00 UTC, over each one's whole life: deterministic and readable
    from the venue alone, at the price of counting an older position's earlier PnL on the
    day it is still at risk.
    """
    day_start = int(now) // DAY_S * DAY_S
    open_notional = pnl = 0
    for p in positions:
        if p.role_of(agent_id) is None:
            continue
        if p.is_open:
            open_notional += p.size
            pnl += _own_pnl(p, agent_id)
        elif p.closed_at is not None and p.closed_at >= day_start:
            pnl += _own_pnl(p, agent_id)
    return Exposure(open_notional=open_notional, daily_loss=max(0, -pnl))


def _check_common(limits: Limits, exposure: Exposure, market: str, notional: int) -> None:
    if limits.markets is not None and market not in limits.markets:
        allowed = ", ".join(sorted(limits.markets)) or "none"
        raise LimitError(
            "market_not_allowed", f"{market} is not among the markets allowed ({allowed})"
        )
    if notional > limits.max_notional:
        raise LimitError(
            "notional_above_limit",
            f"notional {format_usdc(notional)} USDC is above the limit of "
            f"{format_usdc(limits.max_notional)} USDC per trade",
        )
    if exposure.open_notional + notional > limits.max_open_notional:
        raise LimitError(
            "open_notional_above_limit",
            f"open notional would be {format_usdc(exposure.open_notional + notional)} USDC, "
            f"above the limit of {format_usdc(limits.max_open_notional)} USDC "
            f"({format_usdc(exposure.open_notional)} open now)",
        )
    if limits.max_daily_loss == 0 or exposure.daily_loss >= limits.max_daily_loss:
        raise LimitError(
            "daily_loss_limit_reached",
            f"today's loss is {format_usdc(exposure.daily_loss)} USDC; the limit of "
            f"{format_usdc(limits.max_daily_loss)} USDC per day allows no new trade until "
            "00:00 UTC",
        )


def _needs_confirmation(limits: Limits, notional: int) -> bool:
    return limits.confirm_above is not None and notional > limits.confirm_above


def check_trade(
    limits: Limits, exposure: Exposure, market: str, notional: int, leverage: int
) -> bool:
    """Raise `LimitError` if the limits refuse a requester's trade; else whether the
    person must confirm it first."""
    if leverage > limits.max_leverage:
        raise LimitError(
            "leverage_above_limit",
            f"leverage {leverage}x is above the limit of {limits.max_leverage}x",
        )
    _check_common(limits, exposure, market, notional)
    return _needs_confirmation(limits, notional)


def check_quote(
    limits: Limits, exposure: Exposure, market: str, notional: int, collateral: int
) -> bool:
    """As `check_trade`, for a maker's quote: its leverage is notional over the
    collateral it posts (rounded up)."""
    if collateral <= 0:
        raise LimitError("leverage_above_limit", "a quote must post collateral")
    leverage = -(-notional // collateral)
    if leverage > limits.max_leverage:
        raise LimitError(
            "leverage_above_limit",
            f"collateral {format_usdc(collateral)} USDC on {format_usdc(notional)} USDC is "
            f"{leverage}x leverage, above the limit of {limits.max_leverage}x",
        )
    _check_common(limits, exposure, market, notional)
    return _needs_confirmation(limits, notional)
