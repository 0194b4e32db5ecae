"""The venue's records as typed values: what the store returns and the engine works on.

Plain frozen dataclasses with integer money (micro-USDC), ppm rates and exponent -8
prices; no I/O, so the engine and the wire formatting can be tested without a database.
Statuses are `enum.StrEnum`s: a member is its string (SPEC §6's values, byte for byte, in
SQL, JSON and f-strings), and a record made from a plain string (a database row) holds
the member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from perpd.money import PositionState


class RequestStatus(StrEnum):
    OPEN = "open"
    PENDING = "pending"  # a quote was accepted; the chain lock is under way
    FILLED = "filled"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class QuoteStatus(StrEnum):
    LIVE = "live"
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # another quote of its request was accepted
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    FAILED = "failed"  # accepted, but the chain refused the lock


class PositionStatus(StrEnum):
    PENDING = "pending"  # the chain lock is under way
    OPEN = "open"
    CLOSED = "closed"
    LIQUIDATED = "liquidated"
    FAILED = "failed"  # the chain refused the lock: it never opened


@dataclass(frozen=True)
class Account:
    agent_id: str
    free: int
    locked: int
    withdrawals: int = 0  # consented withdrawals so far: the next withdraw consent's count


@dataclass(frozen=True)
class TradeRequest:
    request_id: str
    agent_id: str
    market: str
    side: int  # +1 long, -1 short
    size: int  # notional, micro-USDC
    leverage: int
    max_rate: int  # ppm
    duration_s: int | None  # None = perpetual
    created_at: int
    expires_at: int
    status: RequestStatus
    position_id: str | None = None
    nonce: int | None = None  # u64, unique per requester: the position's on-chain seed
    consent: str | None = None  # base58 signature of the request consent (SPEC §6)
    consent_expires_at: int | None = None  # the expires_at the consent signs
    request_hash: str | None = None  # hex sha256 of the request consent bytes
    client_id: str | None = None  # the requester's idempotency key (`perpd.idempotency`)

    def __post_init__(self) -> None:
        if type(self.status) is not RequestStatus:  # a row's plain string
            object.__setattr__(self, "status", RequestStatus(self.status))


@dataclass(frozen=True)
class Quote:
    quote_id: str
    request_id: str
    agent_id: str
    rate: int  # ppm
    collateral: int
    created_at: int
    expires_at: int
    status: QuoteStatus
    consent: str | None = None  # base58 signature of the maker's quote consent
    valid_until: int | None = None  # the deadline the consent signs (= expires_at)
    client_id: str | None = None  # the maker's idempotency key (`perpd.idempotency`)

    def __post_init__(self) -> None:
        if type(self.status) is not QuoteStatus:  # a row's plain string
            object.__setattr__(self, "status", QuoteStatus(self.status))


@dataclass(frozen=True)
class Position:
    position_id: str
    request_id: str
    quote_id: str
    market: str
    requester: str
    maker: str
    leverage: int
    state: PositionState
    funding_total: int  # cumulative funding requester -> maker (signed), for reporting
    realized_pnl: int  # cumulative price PnL of the requester on closed parts
    status: PositionStatus
    opened_at: int
    expires_at: int | None  # term positions
    next_funding_at: int
    closed_at: int | None = None
    exit_price: int | None = None
    liquidator: str | None = None
    nonce: int | None = None  # the request's nonce
    position_address: str | None = None  # ["position", requester, nonce] of the program
    closes: int = 0  # closes so far: the next close consent's count
    # with a chain: the transactions that locked it, last settled it, last closed it
    lock_signature: str | None = None
    settle_signature: str | None = None
    close_signature: str | None = None

    def __post_init__(self) -> None:
        if type(self.status) is not PositionStatus:  # a row's plain string
            object.__setattr__(self, "status", PositionStatus(self.status))

    def with_state(self, state: PositionState, **changes: Any) -> Position:
        return replace(self, state=state, **changes)


@dataclass(frozen=True)
class Event:
    seq: int
    ts: int
    type: str
    market: str | None
    public: bool
    audience: tuple[str, ...]
    data: dict[str, Any]

    @cached_property
    def wire(self) -> str:
        """The socket message (SPEC §6), built once for every socket that gets it."""
        return json.dumps(
            {"type": self.type, "seq": self.seq, "ts": self.ts, "data": self.data},
            separators=(",", ":"),
        )
