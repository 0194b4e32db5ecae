"""Consents on the wire (SPEC §6): parse them, rebuild their bytes, verify them.

Pure: no I/O and no clock of its own. The router calls these before the unit of work,
so an ed25519 check (~0.1 ms) never holds the writer; what a consent names that only
the database knows (a request's hash, a position's ``closes``, an account's
``withdrawals``) is read first, and the unit then refuses the call if it changed in
between (the `QuoteConsent`, `CloseConsent` and `WithdrawConsent` it is handed). The
bytes come from `perpd.chain._consent`, the one definition the escrow program and the
agents SDK are tested against.

A consent that does not verify is 401 ``unauthorized``; one that is malformed, or
missing where a chain needs it, is 400 ``invalid_request``.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from solders.pubkey import Pubkey
from solders.signature import Signature

from perpd.chain import _consent as wire
from perpd.errors import InvalidRequest, Unauthorized
from perpd.markets import get_market

__all__ = [
    "CloseConsent",
    "LIFETIMES",
    "MAX_U64",
    "QuoteConsent",
    "WithdrawConsent",
    "check",
    "close_message",
    "parse_address",
    "parse_deadline",
    "parse_nonce",
    "parse_signature",
    "position_address",
    "quote_message",
    "request_hash_hex",
    "request_message",
    "require",
    "withdraw_message",
]

MAX_U64 = 2**64 - 1
# The longest a consent may live, in seconds ahead of now (SPEC §6).
LIFETIMES = {"request": 300, "quote": 60, "close": 60, "withdraw": 60}
_DIGITS = re.compile(r"[0-9]{1,20}", re.ASCII)
SIDE_BYTE = {1: 0, -1: 1}  # +1 long -> 0, -1 short -> 1


# ---------------------------------------------------------------- parsing


def parse_signature(value: object, field: str = "consent") -> Signature:
    """A base58 ed25519 signature (64 bytes)."""
    if not isinstance(value, str) or not 64 <= len(value) <= 90:
        raise InvalidRequest(f"{field} must be a base58 ed25519 signature")
    try:
        return Signature.from_string(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be a base58 ed25519 signature") from None


def parse_nonce(value: object, field: str = "nonce") -> int:
    """An unsigned 64-bit integer, as a JSON integer or a digit string."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_U64:
        raise InvalidRequest(f"{field} must be an integer from 0 to 2^64 - 1")
    return value


def parse_address(value: object, field: str) -> Pubkey:
    """A base58 Solana address (32 bytes)."""
    if not isinstance(value, str) or not 32 <= len(value) <= 44:
        raise InvalidRequest(f"{field} must be a base58 Solana address")
    try:
        return Pubkey.from_string(value)
    except ValueError:
        raise InvalidRequest(f"{field} must be a base58 Solana address") from None


def parse_deadline(value: object, field: str, now: float, longest: int) -> int:
    """A whole-second unix deadline from 1 to ``longest`` seconds ahead of ``now``.

    Measured from the current whole second up to ``ceil(now + longest)``, the
    deadline ``expires_in = longest`` would give, so both ways of saying it agree."""
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{field} must be a unix time in whole seconds")
    if not math.floor(now) + 1 <= value <= math.ceil(now + longest):
        raise InvalidRequest(
            f"{field} must lie 1 to {longest} s ahead (now is {math.floor(now)}, got {value})"
        )
    return value


def require(consent: object, *, chain: str, what: str) -> None:
    """With a chain every money-moving call carries its consent (400 if missing)."""
    if consent is None and chain != "none":
        raise InvalidRequest(f"{what} needs a consent (field consent): this venue has a chain")


# ---------------------------------------------------------------- bytes


def position_address(program: Pubkey, requester: str, nonce: int) -> Pubkey:
    """The position's on-chain address: the program's ``["position", requester, nonce]``."""
    seeds = [b"position", bytes(Pubkey.from_string(requester)), nonce.to_bytes(8, "little")]
    return Pubkey.find_program_address(seeds, program)[0]


def request_message(
    program: Pubkey,
    *,
    agent_id: str,
    nonce: int,
    market: str,
    side: int,
    size: int,
    leverage: int,
    max_rate: int,
    duration_s: int | None,
    expires_at: int,
) -> bytes:
    """The request consent's bytes from the request's terms (side +1 long, -1 short)."""
    return wire.request_consent(
        program,
        Pubkey.from_string(agent_id),
        nonce,
        get_market(market).index,
        SIDE_BYTE[side],
        size,
        leverage,
        max_rate,
        duration_s or 0,
        expires_at,
    )


def request_hash_hex(message: bytes) -> str:
    """The hex sha256 of a request consent: what request objects show and quotes name."""
    return hashlib.sha256(message).hexdigest()


def quote_message(
    program: Pubkey,
    *,
    maker: str,
    request_hash: str,
    rate: int,
    collateral: int,
    valid_until: int,
) -> bytes:
    return wire.quote_consent(
        program,
        Pubkey.from_string(maker),
        bytes.fromhex(request_hash),
        rate,
        collateral,
        valid_until,
    )


def close_message(
    program: Pubkey, *, position: str, size_percent: int, closes: int, expires_at: int
) -> bytes:
    return wire.close_consent(
        program, Pubkey.from_string(position), size_percent, closes, expires_at
    )


def withdraw_message(
    program: Pubkey,
    *,
    agent_id: str,
    destination: Pubkey,
    amount: int,
    withdrawals: int,
    expires_at: int,
) -> bytes:
    return wire.withdraw_consent(
        program, Pubkey.from_string(agent_id), destination, amount, withdrawals, expires_at
    )


def check(signer: str, message: bytes, consent: Signature, what: str) -> None:
    """401 unless ``consent`` is ``signer``'s signature of exactly ``message``."""
    if not consent.verify(Pubkey.from_string(signer), message):
        raise Unauthorized(
            f"the {what} consent does not verify: it must be {signer}'s signature of the "
            f"SPEC §6 bytes for exactly these terms"
        )


# ---------------------------------------------------------------- verified consents


@dataclass(frozen=True)
class QuoteConsent:
    """A verified quote consent and the request consent hash it names."""

    signature: str
    valid_until: int
    request_hash: str


@dataclass(frozen=True)
class CloseConsent:
    """A verified close consent, good only while the position has had ``closes`` closes."""

    signature: str
    expires_at: int
    closes: int


@dataclass(frozen=True)
class WithdrawConsent:
    """A verified withdraw consent, good only while the agent has made ``withdrawals``."""

    signature: str
    destination: str
    expires_at: int
    withdrawals: int
