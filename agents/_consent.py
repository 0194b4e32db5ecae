"""Consents (SPEC §6): the exact bytes an agent signs so the router can relay its trade,
close or withdrawal to the escrow program, and their base58 signature.

The daemon checks each consent, and the program checks it again on chain against the
bytes it rebuilds from its own arguments, so the router can move nothing the agent did
not sign. The layouts are SPEC §6's (little-endian integers, raw 32-byte keys, ASCII
prefixes); this module is the SDK's own copy (the SDK does not depend on perpd) and is
tested byte for byte against the daemon's. Markets and sides may be given as the SDK
names them (``"BTC-PERP"``, ``"long"``) or as their wire numbers; an integer that does
not fit its field is a `ValueError`, never wrapped.

    consent = request_consent(program, me, nonce, "BTC-PERP", "long", size, 10, max_rate,
                              0, expires_at)
    body["consent"] = sign_consent(keypair, consent)
"""

from __future__ import annotations

import hashlib
import secrets

from solders.keypair import Keypair
from solders.pubkey import Pubkey

__all__ = [
    "close_consent",
    "pick_nonce",
    "position_address",
    "quote_consent",
    "request_consent",
    "request_hash",
    "sign_consent",
    "withdraw_consent",
]

MARKET_INDEX = {"BTC-PERP": 0, "ETH-PERP": 1, "SOL-PERP": 2}  # SPEC §2
SIDE_BYTE = {"long": 0, "short": 1}

Address = Pubkey | bytes | str


def _address(field: str, value: Address) -> bytes:
    """32 raw key bytes from a Pubkey, 32 bytes, or base58 text."""
    if isinstance(value, str):
        try:
            value = Pubkey.from_string(value)
        except ValueError as exc:
            raise ValueError(f"{field}: {value!r} is not a base58 address") from exc
    if isinstance(value, Pubkey):
        return bytes(value)
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return bytes(value)
    raise ValueError(f"{field} must be an address (Pubkey, 32 bytes or base58)")


def _le(field: str, value: int, width: int, signed: bool = False) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{field} must be an integer")
    try:
        return value.to_bytes(width, "little", signed=signed)
    except OverflowError as exc:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{field}={value} does not fit a {kind} {8 * width}-bit field") from exc


def _market(value: int | str) -> int:
    if isinstance(value, str):
        if value not in MARKET_INDEX:
            raise ValueError(f"unknown market {value!r}")
        return MARKET_INDEX[value]
    return value


def _side(value: int | str) -> int:
    if isinstance(value, str):
        if value not in SIDE_BYTE:
            raise ValueError(f"side must be 'long' or 'short', got {value!r}")
        return SIDE_BYTE[value]
    return value


def request_consent(
    program: Address,
    requester: Address,
    nonce: int,
    market: int | str,
    side: int | str,
    size: int,
    leverage: int,
    max_rate: int,
    duration: int,
    expires_at: int,
) -> bytes:
    """The requester's consent to a trade request (size in micro-USDC, max_rate in
    ppm, duration in seconds with 0 for perpetual, expires_at in unix seconds)."""
    parts = [
        b"perpd:request:v1",
        _address("program", program),
        _address("requester", requester),
        _le("nonce", nonce, 8),
        _le("market", _market(market), 1),
        _le("side", _side(side), 1),
        _le("size", size, 8),
        _le("leverage", leverage, 1),
        _le("max_rate", max_rate, 8, signed=True),
        _le("duration", duration, 4),
        _le("expires_at", expires_at, 8, signed=True),
    ]
    return b"".join(parts)


def request_hash(request: bytes) -> bytes:
    """The 32-byte sha256 of a request consent, which a maker's quote consent names."""
    return hashlib.sha256(request).digest()


def quote_consent(
    program: Address,
    maker: Address,
    request_hash: bytes,
    rate: int,
    collateral: int,
    valid_until: int,
) -> bytes:
    """The maker's consent to quote ``rate`` (ppm) with ``collateral`` (micro-USDC) on
    the request whose consent hashes to ``request_hash``, until ``valid_until``."""
    if not isinstance(request_hash, bytes | bytearray) or len(request_hash) != 32:
        raise ValueError("request_hash must be the 32-byte sha256 of the request consent")
    parts = [
        b"perpd:quote:v1",
        _address("program", program),
        _address("maker", maker),
        bytes(request_hash),
        _le("rate", rate, 8, signed=True),
        _le("collateral", collateral, 8),
        _le("valid_until", valid_until, 8, signed=True),
    ]
    return b"".join(parts)


def close_consent(
    program: Address, position: Address, size_percent: int, closes: int, expires_at: int
) -> bytes:
    """The requester's consent to close ``size_percent`` of the position at its
    on-chain address; ``closes`` is how many closes it had before this one."""
    parts = [
        b"perpd:close:v1",
        _address("program", program),
        _address("position", position),
        _le("size_percent", size_percent, 1),
        _le("closes", closes, 4),
        _le("expires_at", expires_at, 8, signed=True),
    ]
    return b"".join(parts)


def withdraw_consent(
    program: Address,
    agent: Address,
    destination: Address,
    amount: int,
    withdrawals: int,
    expires_at: int,
) -> bytes:
    """The agent's consent to withdraw ``amount`` micro-USDC to the USDC token account
    ``destination``; ``withdrawals`` counts its earlier consented withdrawals."""
    parts = [
        b"perpd:withdraw:v1",
        _address("program", program),
        _address("agent", agent),
        _address("destination", destination),
        _le("amount", amount, 8),
        _le("withdrawals", withdrawals, 8),
        _le("expires_at", expires_at, 8, signed=True),
    ]
    return b"".join(parts)


def sign_consent(keypair: Keypair, consent: bytes) -> str:
    """The base58 ed25519 signature of ``consent`` by ``keypair``: the wire ``consent``."""
    return str(keypair.sign_message(consent))


def position_address(program: Address, requester: Address, nonce: int) -> tuple[Pubkey, int]:
    """The position's on-chain address and bump: the program's ``["position", requester,
    nonce u64 LE]``, which the request consent's nonce fixes."""
    seeds = [b"position", _address("requester", requester), _le("nonce", nonce, 8)]
    return Pubkey.find_program_address(seeds, Pubkey(_address("program", program)))


def pick_nonce(program: Address, requester: Address) -> int:
    """A fresh random u64 nonce whose position address has bump 255 (half of all
    nonces, so two tries on average): each lower bump costs the program's
    ``lock_position`` another 1,500 compute units."""
    while True:
        nonce = secrets.randbits(64)
        if position_address(program, requester, nonce)[1] == 255:
            return nonce
