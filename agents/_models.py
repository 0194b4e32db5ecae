"""Typed views of the wire objects (SPEC §6), with exact units.

Units, everywhere in the SDK: money is ``int`` micro-USDC (``1_000_000`` = 1 USDC),
funding rates and ratios are ``int`` ppm (``5000`` = 0.005), prices are ``int`` with
exponent -8 (Pyth's), times are unix seconds. The wire carries decimal strings; they
are parsed here digit by digit, never through a float, and anything that is not an
exact decimal with the allowed number of places is a `ProtocolError` (a daemon bug
must not turn into a silently rounded balance).

Every model keeps the object it was parsed from in ``raw`` so that fields this SDK does
not type yet stay reachable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from agents._errors import ProtocolError

__all__ = [
    "MICRO",
    "PPM",
    "PRICE_SCALE",
    "Balances",
    "ChainInfo",
    "CloseResult",
    "Event",
    "Fill",
    "FundingCurveEvent",
    "FundingCurvePoint",
    "FundingPayment",
    "FundingSettledEvent",
    "HistoryPage",
    "LiquidationEvent",
    "LiquidationRecord",
    "LiquidationResult",
    "Market",
    "Position",
    "PositionClosedEvent",
    "PositionOpenedEvent",
    "Quote",
    "QuoteAcceptedEvent",
    "QuoteEvent",
    "QuoteExpiredEvent",
    "QuoteRejectedEvent",
    "RequestExpiredEvent",
    "Side",
    "TradeRequest",
    "TradeRequestEvent",
    "format_price",
    "format_rate",
    "format_usdc",
    "parse_event",
    "parse_price",
    "parse_rate",
    "parse_usdc",
]

MICRO = 1_000_000  # micro-USDC per USDC
PPM = 1_000_000  # ppm per unit rate
PRICE_SCALE = 100_000_000  # exponent -8

T = TypeVar("T")
Side = Literal["long", "short"]
Role = Literal["requester", "maker"]

_DECIMAL = re.compile(r"(-?)([0-9]{1,20})(?:\.([0-9]{1,20}))?")


# ---------------------------------------------------------------- exact units


def _scaled(value: object, places: int, what: str) -> int:
    """``value × 10^places`` as an exact int from a decimal string, int or `Decimal`."""
    if isinstance(value, bool):
        raise ProtocolError(f"{what}: expected a decimal, got {value!r}")
    if isinstance(value, int):
        return value * 10**places
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ProtocolError(f"{what}: {value} is not finite")
        scaled = value.scaleb(places)
        if scaled != scaled.to_integral_value():
            raise ProtocolError(f"{what}: {value} has more than {places} decimals")
        return int(scaled)
    if not isinstance(value, str):
        raise ProtocolError(f"{what}: expected a decimal string, got {type(value).__name__}")
    m = _DECIMAL.fullmatch(value.strip())
    if m is None:
        raise ProtocolError(f"{what}: {value!r} is not a decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac.rstrip("0")) > places:
        raise ProtocolError(f"{what}: {value!r} has more than {places} decimals")
    magnitude = int(whole) * 10**places + int((frac + "0" * places)[:places])
    return -magnitude if sign else magnitude


def parse_usdc(value: str | int | Decimal) -> int:
    """A USDC amount (``"12.5"``, ``12``, ``Decimal("12.5")``) as micro-USDC, exactly.

    Floats are refused: ``0.1`` has no exact binary value, and money must not depend
    on how a float happened to round.
    """
    return _scaled(value, 6, "USDC amount")


def parse_rate(value: str | int | Decimal) -> int:
    """A rate per funding period (``"0.005"``) as ppm (``5000``), exactly."""
    return _scaled(value, 6, "rate")


def parse_price(value: str | int | Decimal) -> int:
    """A price (``"65000.5"``) as an integer with exponent -8, exactly."""
    return _scaled(value, 8, "price")


def _fixed(value: int, places: int) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def format_usdc(micro: int) -> str:
    """Micro-USDC as the wire's decimal string: ``1_500_000`` → ``"1.500000"``."""
    return _fixed(micro, 6)


def format_rate(ppm: int) -> str:
    """Ppm as the shortest exact decimal: ``5000`` → ``"0.005"``."""
    text = _fixed(ppm, 6).rstrip("0")
    return text + "0" if text.endswith(".") else text


def format_price(price: int) -> str:
    """An exponent -8 integer as a decimal string: ``6_500_000_000_000`` → ``"65000.00000000"``."""
    return _fixed(price, 8)


def duration_seconds(duration: str) -> int:
    """``"perpetual"`` → 0, ``"<n>h"`` → n × 3600: a term as the request consent signs it."""
    if duration == "perpetual":
        return 0
    hours = duration.removesuffix("h")
    if not duration.endswith("h") or not hours.isdigit() or not hours.isascii():
        raise ValueError(f"{duration!r} is not 'perpetual' or '<n>h'")
    return int(hours) * 3600


# ---------------------------------------------------------------- field reader


class _Fields:
    """Reads typed fields out of one wire object; any mismatch is a `ProtocolError`."""

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, Mapping):
            raise ProtocolError(f"{what}: expected a JSON object, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data
        self.what = what

    def _get(self, key: str, optional: bool) -> Any:
        if key not in self.data:
            if optional:
                return None
            raise ProtocolError(f"{self.what}: missing field {key!r}")
        return self.data[key]

    def text(self, key: str) -> str:
        v = self._get(key, False)
        if not isinstance(v, str):
            raise ProtocolError(f"{self.what}.{key}: expected a string, got {v!r}")
        return v

    def opt_text(self, key: str) -> str | None:
        v = self._get(key, True)
        return None if v is None else self.text(key)

    def integer(self, key: str) -> int:
        v = self._get(key, False)
        if isinstance(v, bool) or not isinstance(v, int):
            raise ProtocolError(f"{self.what}.{key}: expected an integer, got {v!r}")
        return v

    def opt_integer(self, key: str) -> int | None:
        v = self._get(key, True)
        return None if v is None else self.integer(key)

    def flag(self, key: str, default: bool) -> bool:
        v = self._get(key, True)
        if v is None:
            return default
        if not isinstance(v, bool):
            raise ProtocolError(f"{self.what}.{key}: expected a boolean, got {v!r}")
        return v

    def _scaled(self, key: str, places: int, optional: bool) -> int | None:
        v = self._get(key, optional)
        if v is None and optional:
            return None
        return _scaled(v, places, f"{self.what}.{key}")

    def usdc(self, key: str) -> int:
        return self._scaled(key, 6, False)  # type: ignore[return-value]

    def opt_usdc(self, key: str) -> int | None:
        return self._scaled(key, 6, True)

    def rate(self, key: str) -> int:
        return self._scaled(key, 6, False)  # type: ignore[return-value]

    def opt_rate(self, key: str) -> int | None:
        return self._scaled(key, 6, True)

    def opt_price(self, key: str) -> int | None:
        return self._scaled(key, 8, True)

    def price(self, key: str) -> int:
        return self._scaled(key, 8, False)  # type: ignore[return-value]

    def side(self, key: str) -> Side:
        v = self.text(key)
        if v not in ("long", "short"):
            raise ProtocolError(f"{self.what}.{key}: expected long or short, got {v!r}")
        return v  # type: ignore[return-value]


# ---------------------------------------------------------------- objects


@dataclass(frozen=True, slots=True)
class Market:
    """A listed market and its oracle state (``GET /markets``)."""

    market: str
    index: int
    max_leverage: int
    funding_period_s: int
    oracle_price: int | None
    price_source: str | None
    publish_time: int | None
    price_usable: bool
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    # per term, the best live quoted rate and the last fill (issue 13)
    funding_curve: tuple[FundingCurvePoint, ...] = ()

    @classmethod
    def from_wire(cls, data: object) -> Market:
        f = _Fields(data, "market")
        return cls(
            market=f.text("market"),
            index=f.integer("index"),
            max_leverage=f.integer("max_leverage"),
            funding_period_s=f.integer("funding_period_s"),
            oracle_price=f.opt_price("oracle_price"),
            price_source=f.opt_text("price_source"),
            publish_time=f.opt_integer("publish_time"),
            price_usable=f.flag("price_usable", f.data.get("oracle_price") is not None),
            raw=f.data,
            funding_curve=funding_curve_of(f.data, "market"),
        )

    def min_collateral(self, size: int) -> int:
        """The least a maker may post on ``size`` (SPEC §3: ``size / max_leverage``, up)."""
        return -(-size // self.max_leverage)


@dataclass(frozen=True, slots=True)
class TradeRequest:
    """A request for quotes. ``size`` micro-USDC; ``max_funding_rate`` ppm per period."""

    request_id: str
    agent_id: str
    market: str
    side: Side
    size: int
    leverage: int
    max_funding_rate: int
    duration: str
    expires_at: int
    status: str
    created_at: int | None
    position_id: str | None
    nonce: int | None  # with a consent: the position's on-chain seed (SPEC §6)
    consent: str | None  # the requester's base58 request consent
    request_hash: str | None  # hex sha256 of the request consent bytes
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    client_id: str | None = None  # the requester's idempotency key, if it gave one

    @property
    def duration_s(self) -> int:
        """The term in seconds, 0 for perpetual (as the request consent signs it)."""
        try:
            return duration_seconds(self.duration)
        except ValueError as exc:
            raise ProtocolError(f"request.duration: {exc}") from None

    @classmethod
    def from_wire(cls, data: object) -> TradeRequest:
        f = _Fields(data, "request")
        return cls(
            request_id=f.text("request_id"),
            agent_id=f.text("agent_id"),
            market=f.text("market"),
            side=f.side("side"),
            size=f.usdc("size_usdc"),
            leverage=f.integer("leverage"),
            max_funding_rate=f.rate("max_funding_rate"),
            duration=f.opt_text("duration") or "perpetual",
            expires_at=f.integer("expires_at"),
            status=f.opt_text("status") or "open",
            created_at=f.opt_integer("created_at"),
            position_id=f.opt_text("position_id"),
            nonce=f.opt_integer("nonce"),
            consent=f.opt_text("consent"),
            request_hash=f.opt_text("request_hash"),
            raw=f.data,
            client_id=f.opt_text("client_id"),
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """A maker's firm quote. ``funding_rate`` ppm per period (positive: requester pays)."""

    quote_id: str
    request_id: str
    agent_id: str
    funding_rate: int
    collateral: int
    expires_at: int
    status: str
    created_at: int | None
    consent: str | None  # the maker's base58 quote consent, if it gave one
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    client_id: str | None = None  # the maker's idempotency key, if it gave one
    replaced_quote_id: str | None = None  # the answer to a replace: the quote it cancelled

    @classmethod
    def from_wire(cls, data: object) -> Quote:
        f = _Fields(data, "quote")
        return cls(
            quote_id=f.text("quote_id"),
            request_id=f.text("request_id"),
            agent_id=f.text("agent_id"),
            funding_rate=f.rate("funding_rate"),
            collateral=f.usdc("collateral_usdc"),
            expires_at=f.integer("expires_at"),
            status=f.opt_text("status") or "live",
            created_at=f.opt_integer("created_at"),
            consent=f.opt_text("consent"),
            raw=f.data,
            client_id=f.opt_text("client_id"),
            replaced_quote_id=f.opt_text("replaced_quote_id"),
        )


@dataclass(frozen=True, slots=True)
class Position:
    """A position between a requester and a maker. ``side`` and PnL are the requester's.

    Collaterals and initial margins are the current (settled) values; ``unrealized_pnl``
    and the margin ratios are at ``mark_price`` and are None when the daemon had no
    usable price, or the position is not open.
    """

    position_id: str
    market: str
    requester: str
    maker: str
    side: Side
    size: int
    entry_price: int
    leverage: int
    requester_collateral: int
    maker_collateral: int
    requester_initial_margin: int | None
    maker_initial_margin: int | None
    funding_rate: int
    funding_paid: int
    realized_pnl: int
    status: str
    opened_at: int
    expires_at: int | None
    closed_at: int | None
    exit_price: int | None
    liquidator: str | None
    mark_price: int | None
    unrealized_pnl: int | None
    margin_ratio_requester: int | None
    margin_ratio_maker: int | None
    position_address: str | None  # its on-chain account (its request had a nonce)
    closes: int  # closes so far: what the next close consent names
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> Position:
        f = _Fields(data, "position")
        return cls(
            position_id=f.text("position_id"),
            market=f.text("market"),
            requester=f.text("requester"),
            maker=f.text("maker"),
            side=f.side("side"),
            size=f.usdc("size_usdc"),
            entry_price=f.price("entry_price"),
            leverage=f.integer("leverage"),
            requester_collateral=f.usdc("requester_collateral_usdc"),
            maker_collateral=f.usdc("maker_collateral_usdc"),
            requester_initial_margin=f.opt_usdc("requester_initial_margin_usdc"),
            maker_initial_margin=f.opt_usdc("maker_initial_margin_usdc"),
            funding_rate=f.rate("funding_rate"),
            funding_paid=f.opt_usdc("funding_paid_usdc") or 0,
            realized_pnl=f.opt_usdc("realized_pnl_usdc") or 0,
            status=f.text("status"),
            opened_at=f.integer("opened_at"),
            expires_at=f.opt_integer("expires_at"),
            closed_at=f.opt_integer("closed_at"),
            exit_price=f.opt_price("exit_price"),
            liquidator=f.opt_text("liquidator"),
            mark_price=f.opt_price("mark_price"),
            unrealized_pnl=f.opt_usdc("unrealized_pnl_usdc"),
            margin_ratio_requester=f.opt_rate("margin_ratio_requester"),
            margin_ratio_maker=f.opt_rate("margin_ratio_maker"),
            position_address=f.opt_text("position_address"),
            closes=f.opt_integer("closes") or 0,
            raw=f.data,
        )

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def role_of(self, agent_id: str) -> Role | None:
        """Which side ``agent_id`` is on, or None if it is neither party."""
        if agent_id == self.requester:
            return "requester"
        if agent_id == self.maker:
            return "maker"
        return None

    def exposure_of(self, agent_id: str) -> int:
        """``agent_id``'s signed notional in micro-USDC: positive long, negative short."""
        sign = 1 if self.side == "long" else -1
        role = self.role_of(agent_id)
        if role == "requester":
            return sign * self.size
        if role == "maker":
            return -sign * self.size
        return 0

    def liquidatable_side(self) -> Role | None:
        """The side under maintenance at ``mark_price`` (SPEC §4: equity < IM / 2).

        Computed from this snapshot: the daemon decides at the moment of the call, so a
        `NotLiquidatable` answer is still possible when the price moved in between.
        """
        if not self.is_open or self.unrealized_pnl is None:
            return None
        er = self.requester_collateral + self.unrealized_pnl
        em = self.maker_collateral - self.unrealized_pnl
        imr = self.requester_initial_margin
        imm = self.maker_initial_margin
        requester_down = imr is not None and 2 * er < imr
        maker_down = imm is not None and 2 * em < imm
        if requester_down and maker_down:
            return "requester" if self.unrealized_pnl <= 0 else "maker"
        if requester_down:
            return "requester"
        if maker_down:
            return "maker"
        return None


@dataclass(frozen=True, slots=True)
class MakerProtection:
    """A maker's protection (issue 13): limits per trailing window; None: not set.

    ``max_notional`` micro-USDC; ``frozen_until`` unix s while frozen, else None."""

    agent_id: str
    window_s: int | None
    max_fills: int | None
    max_notional: int | None
    cooldown_s: int | None
    frozen_until: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> MakerProtection:
        f = _Fields(data, "maker protection")
        return cls(
            f.text("agent_id"),
            f.opt_integer("window_s"),
            f.opt_integer("max_fills"),
            f.opt_usdc("max_notional_usdc"),
            f.opt_integer("cooldown_s"),
            f.opt_integer("frozen_until"),
            f.data,
        )


@dataclass(frozen=True, slots=True)
class Balances:
    """An agent's account: ``free`` and ``locked`` micro-USDC."""

    agent_id: str
    free: int
    locked: int
    withdrawals: int  # consented withdrawals so far: what the next withdraw consent names
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> Balances:
        f = _Fields(data, "account")
        return cls(
            f.text("agent_id"),
            f.usdc("free_usdc"),
            f.usdc("locked_usdc"),
            f.opt_integer("withdrawals") or 0,
            f.data,
        )

    @property
    def total(self) -> int:
        return self.free + self.locked


@dataclass(frozen=True, slots=True)
class ChainInfo:
    """``GET /chain``: where custody lives and the program id that consents name.

    ``mode`` is ``local``, ``rpc`` or ``none`` (off chain: nothing to sign for)."""

    mode: str
    program_id: str | None
    usdc_mint: str | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> ChainInfo:
        f = _Fields(data, "chain")
        return cls(f.text("mode"), f.opt_text("program_id"), f.opt_text("usdc_mint"), f.data)

    @property
    def signs(self) -> bool:
        """Whether calls carry consents: with a chain, every money-moving one must."""
        return self.mode != "none" and self.program_id is not None


@dataclass(frozen=True, slots=True)
class CloseResult:
    """``POST /trade/close``: the position after the close, PnL realised, collateral freed."""

    position: Position
    realized_pnl: int
    released: int

    @classmethod
    def from_wire(cls, data: object) -> CloseResult:
        f = _Fields(data, "close")
        return cls(
            Position.from_wire(f.data.get("position")),
            f.usdc("realized_pnl_usdc"),
            f.usdc("released_usdc"),
        )


@dataclass(frozen=True, slots=True)
class LiquidationResult:
    """``POST /trade/liquidate``: the liquidated position and the caller's reward."""

    position: Position
    reward: int
    liquidated_side: str | None

    @classmethod
    def from_wire(cls, data: object) -> LiquidationResult:
        f = _Fields(data, "liquidation")
        return cls(
            Position.from_wire(f.data.get("position")),
            f.usdc("reward_usdc"),
            f.opt_text("liquidated_side"),
        )


# ---------------------------------------------------------------- events


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One event of the stream: ``seq`` orders them all (SPEC §6).

    Events of a type this SDK does not know come as a plain `Event`, with ``data``.
    """

    type: str
    seq: int
    ts: int
    data: Mapping[str, Any] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRequestEvent(Event):
    request: TradeRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestExpiredEvent(Event):
    request_id: str
    market: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelledEvent(Event):
    request_id: str
    market: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteCancelledEvent(Event):
    """A quote died before its deadline: ``reason`` maker | replaced | disconnect | mmp |
    request_cancelled; ``replaced_by`` names the new quote of a replace."""

    quote_id: str
    request_id: str
    reason: str
    replaced_by: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MmpTriggeredEvent(Event):
    """This maker's protection froze its quoting until ``frozen_until``."""

    agent_id: str
    reason: str  # fills | notional
    frozen_until: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteEvent(Event):
    """A quote on one of this agent's requests."""

    quote: Quote


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteAcceptedEvent(Event):
    quote_id: str
    request_id: str
    position_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteRejectedEvent(Event):
    quote_id: str
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QuoteExpiredEvent(Event):
    quote_id: str
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionOpenedEvent(Event):
    position: Position


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosedEvent(Event):
    """A close (partial: ``position.status`` is still open); PnL and release are the requester's."""

    position: Position
    realized_pnl: int | None
    released: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingSettledEvent(Event):
    """Funding moved ``amount`` micro-USDC from ``payer`` to ``receiver``."""

    position_id: str
    amount: int
    payer: str
    receiver: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationEvent(Event):
    position: Position
    liquidator: str
    reward: int
    liquidated_side: str | None


def parse_event(message: object) -> Event:
    """A server event ``{"type", "seq", "ts", "data"}`` (WebSocket or ``GET /events``)."""
    env = _Fields(message, "event")
    kind, seq, ts = env.text("type"), env.integer("seq"), env.integer("ts")
    raw = env.data.get("data")
    f = _Fields(raw, f"{kind} event data")
    base: dict[str, Any] = {"type": kind, "seq": seq, "ts": ts, "data": f.data}
    if kind == "trade_request":
        return TradeRequestEvent(**base, request=TradeRequest.from_wire(f.data))
    if kind == "request_expired":
        return RequestExpiredEvent(**base, request_id=f.text("request_id"), market=f.text("market"))
    if kind == "request_cancelled":
        return RequestCancelledEvent(
            **base, request_id=f.text("request_id"), market=f.text("market")
        )
    if kind == "quote_cancelled":
        return QuoteCancelledEvent(
            **base,
            quote_id=f.text("quote_id"),
            request_id=f.text("request_id"),
            reason=f.text("reason"),
            replaced_by=f.opt_text("replaced_by"),
        )
    if kind == "mmp_triggered":
        return MmpTriggeredEvent(
            **base,
            agent_id=f.text("agent_id"),
            reason=f.text("reason"),
            frozen_until=f.integer("frozen_until"),
        )
    if kind == "quote":
        return QuoteEvent(**base, quote=Quote.from_wire(f.data))
    if kind == "quote_accepted":
        return QuoteAcceptedEvent(
            **base,
            quote_id=f.text("quote_id"),
            request_id=f.text("request_id"),
            position_id=f.text("position_id"),
        )
    if kind == "quote_rejected":
        return QuoteRejectedEvent(
            **base, quote_id=f.text("quote_id"), request_id=f.text("request_id")
        )
    if kind == "quote_expired":
        return QuoteExpiredEvent(
            **base, quote_id=f.text("quote_id"), request_id=f.text("request_id")
        )
    if kind == "position_opened":
        return PositionOpenedEvent(**base, position=Position.from_wire(f.data))
    if kind == "position_closed":
        return PositionClosedEvent(
            **base,
            position=Position.from_wire(f.data),
            realized_pnl=f.opt_usdc("realized_pnl_usdc"),
            released=f.opt_usdc("released_usdc"),
        )
    if kind == "funding_settled":
        return FundingSettledEvent(
            **base,
            position_id=f.text("position_id"),
            amount=f.usdc("amount_usdc"),
            payer=f.text("payer"),
            receiver=f.text("receiver"),
        )
    if kind == "liquidation":
        return LiquidationEvent(
            **base,
            position=Position.from_wire(f.data),
            liquidator=f.text("liquidator"),
            reward=f.usdc("reward_usdc"),
            liquidated_side=f.opt_text("liquidated_side"),
        )
    if kind == "funding_curve":
        return FundingCurveEvent(
            **base, market=f.text("market"), funding_curve=funding_curve_of(f.data, kind)
        )
    return Event(**base)


# ---------------------------------------------------------------- history (issue 13)


@dataclass(frozen=True, slots=True)
class FundingCurvePoint:
    """One term of a market's funding curve: the lowest live quoted rate (the best for a
    requester; None when no quote is live), the live quote count, the last fill."""

    duration: str
    best_rate: int | None
    live_quotes: int
    last_filled_rate: int | None
    last_filled_at: int | None

    @classmethod
    def from_wire(cls, data: object) -> FundingCurvePoint:
        f = _Fields(data, "funding_curve point")
        return cls(
            duration=f.text("duration"),
            best_rate=f.opt_rate("best_rate"),
            live_quotes=f.integer("live_quotes"),
            last_filled_rate=f.opt_rate("last_filled_rate"),
            last_filled_at=f.opt_integer("last_filled_at"),
        )


def funding_curve_of(data: Mapping[str, Any], what: str) -> tuple[FundingCurvePoint, ...]:
    """A ``funding_curve`` list (absent from daemons before issue 13: empty)."""
    points = data.get("funding_curve", [])
    if not isinstance(points, list):
        raise ProtocolError(f"{what}.funding_curve: expected a list")
    return tuple(FundingCurvePoint.from_wire(p) for p in points)


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingCurveEvent(Event):
    """A market's funding curve moved (public, at most once per second per market)."""

    market: str
    funding_curve: tuple[FundingCurvePoint, ...]


@dataclass(frozen=True, slots=True)
class Fill:
    """One of this agent's fills (``GET /fills``): side, collateral and fee are its own."""

    fill_id: int
    position_id: str
    request_id: str
    quote_id: str
    market: str
    role: Role
    side: Side
    size: int
    entry_price: int
    funding_rate: int
    leverage: int
    collateral: int
    fee: int
    filled_at: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> Fill:
        f = _Fields(data, "fill")
        role = f.text("role")
        if role not in ("requester", "maker"):
            raise ProtocolError(f"fill.role: expected requester or maker, got {role!r}")
        return cls(
            fill_id=f.integer("fill_id"),
            position_id=f.text("position_id"),
            request_id=f.text("request_id"),
            quote_id=f.text("quote_id"),
            market=f.text("market"),
            role=role,  # type: ignore[arg-type]
            side=f.side("side"),
            size=f.usdc("size_usdc"),
            entry_price=f.price("entry_price"),
            funding_rate=f.rate("funding_rate"),
            leverage=f.integer("leverage"),
            collateral=f.usdc("collateral_usdc"),
            fee=f.usdc("fee_usdc"),
            filled_at=f.integer("filled_at"),
            raw=f.data,
        )


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding payment on this agent's position (``GET /funding``): ``amount`` is
    positive; ``direction`` says whether this agent paid or received it."""

    payment_id: int
    position_id: str
    market: str
    amount: int
    direction: Literal["paid", "received"]
    period: int
    settled_at: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> FundingPayment:
        f = _Fields(data, "funding payment")
        direction = f.text("direction")
        if direction not in ("paid", "received"):
            raise ProtocolError(f"funding.direction: expected paid or received, got {direction!r}")
        return cls(
            payment_id=f.integer("payment_id"),
            position_id=f.text("position_id"),
            market=f.text("market"),
            amount=f.usdc("amount_usdc"),
            direction=direction,  # type: ignore[arg-type]
            period=f.integer("period"),
            settled_at=f.integer("settled_at"),
            raw=f.data,
        )

    @property
    def signed_amount(self) -> int:
        """What it did to this agent's collateral: negative when paid."""
        return -self.amount if self.direction == "paid" else self.amount


@dataclass(frozen=True, slots=True)
class LiquidationRecord:
    """A liquidation this agent was party to or made (``GET /liquidations``)."""

    position_id: str
    market: str
    role: Literal["requester", "maker", "liquidator"]
    liquidator: str
    reward: int
    price: int
    liquidated_at: int
    liquidated_side: str
    released: int  # what came back to this agent (the reward, for the liquidator)
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_wire(cls, data: object) -> LiquidationRecord:
        f = _Fields(data, "liquidation")
        role = f.text("role")
        if role not in ("requester", "maker", "liquidator"):
            raise ProtocolError(f"liquidation.role: unexpected {role!r}")
        return cls(
            position_id=f.text("position_id"),
            market=f.text("market"),
            role=role,  # type: ignore[arg-type]
            liquidator=f.text("liquidator"),
            reward=f.usdc("reward_usdc"),
            price=f.price("price"),
            liquidated_at=f.integer("liquidated_at"),
            liquidated_side=f.text("liquidated_side"),
            released=f.usdc("released_usdc"),
            raw=f.data,
        )


@dataclass(frozen=True, slots=True)
class HistoryPage(Generic[T]):
    """One page of a history list; ``next_cursor`` is None on the last page."""

    items: tuple[T, ...]
    next_cursor: str | None
