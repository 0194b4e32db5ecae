"""The consent bytes of SPEC §6: exactly what an agent signs and the program rebuilds.

Pure and byte-exact: the daemon verifies a consent against these bytes, the agent SDK
signs them, and the escrow program rebuilds the same bytes from its own arguments and
accounts and compares them with the message of the Ed25519 precompile call (SPEC §7).
All integers are little-endian; keys are 32 raw bytes (a `solders.pubkey.Pubkey` or
``bytes``); prefixes are ASCII without a terminator. An integer outside its wire type is
a `ValueError` rather than being wrapped, so a consent never says something else than
the caller meant; a ``bool`` is refused like any other non-``int``. Only the wire types
are checked here: what a value means (side 0 or 1, size_percent 1-100, a live deadline)
is for the daemon and the program to refuse, so tests can sign out-of-range values and
show that the program refuses them.
"""

from __future__ import annotations

import hashlib

from solders.pubkey import Pubkey

__all__ = [
    "CLOSE_PREFIX",
    "QUOTE_PREFIX",
    "REQUEST_PREFIX",
    "WITHDRAW_PREFIX",
    "close_consent",
    "quote_consent",
    "request_consent",
    "request_hash",
    "withdraw_consent",
]

REQUEST_PREFIX = b"perpd:request:v1"
QUOTE_PREFIX = b"perpd:quote:v1"
CLOSE_PREFIX = b"perpd:close:v1"
WITHDRAW_PREFIX = b"perpd:withdraw:v1"

Key = Pubkey | bytes


def _key(name: str, value: Key) -> bytes:
    """The 32 raw bytes of a key given as a `Pubkey` or as bytes."""
    if isinstance(value, Pubkey):
        return bytes(value)
    if isinstance(value, bytes | bytearray) and len(value) == 32:
        return bytes(value)
    raise ValueError(f"{name} must be a Pubkey or 32 bytes, got {value!r}")


def _int(name: str, value: int, size: int, *, signed: bool = False) -> bytes:
    """``value`` as ``size`` little-endian bytes; ValueError if it does not fit.

    Shared with `perpd.chain._pyth_account` (the same Borsh/consent integer rule)."""
    if type(value) is not int:
        raise ValueError(f"{name} must be an int, got {type(value).__name__}")
    bits = 8 * size
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, got {value}")
    return value.to_bytes(size, "little", signed=signed)


def request_consent(
    program: Key,
    requester: Key,
    nonce: int,
    market: int,
    side: int,
    size: int,
    leverage: int,
    max_rate: int,
    duration: int,
    expires_at: int,
) -> bytes:
    """The requester's consent to a trade request (side: 0 long, 1 short)."""
    return b"".join(
        (
            REQUEST_PREFIX,
            _key("program", program),
            _key("requester", requester),
            _int("nonce", nonce, 8),
            _int("market", market, 1),
            _int("side", side, 1),
            _int("size", size, 8),
            _int("leverage", leverage, 1),
            _int("max_rate", max_rate, 8, signed=True),
            _int("duration", duration, 4),
            _int("expires_at", expires_at, 8, signed=True),
        )
    )


def request_hash(consent: bytes) -> bytes:
    """sha256 of the request consent bytes: what a quote consent commits to."""
    return hashlib.sha256(consent).digest()


def quote_consent(
    program: Key, maker: Key, request_hash: bytes, rate: int, collateral: int, valid_until: int
) -> bytes:
    """The maker's consent to its quote on the request whose consent hashes to ``request_hash``."""
    if not isinstance(request_hash, bytes) or len(request_hash) != 32:
        raise ValueError(f"request_hash must be 32 bytes, got {request_hash!r}")
    return b"".join(
        (
            QUOTE_PREFIX,
            _key("program", program),
            _key("maker", maker),
            request_hash,
            _int("rate", rate, 8, signed=True),
            _int("collateral", collateral, 8),
            _int("valid_until", valid_until, 8, signed=True),
        )
    )


def close_consent(
    program: Key, position: Key, size_percent: int, closes: int, expires_at: int
) -> bytes:
    """The requester's consent to close ``size_percent`` (1-100) of the position at ``position``."""
    return b"".join(
        (
            CLOSE_PREFIX,
            _key("program", program),
            _key("position", position),
            _int("size_percent", size_percent, 1),
            _int("closes", closes, 4),
            _int("expires_at", expires_at, 8, signed=True),
        )
    )


def withdraw_consent(
    program: Key, agent: Key, destination: Key, amount: int, withdrawals: int, expires_at: int
) -> bytes:
    """The agent's consent to withdraw ``amount`` micro-USDC to the token account
    ``destination``."""
    return b"".join(
        (
            WITHDRAW_PREFIX,
            _key("program", program),
            _key("agent", agent),
            _key("destination", destination),
            _int("amount", amount, 8),
            _int("withdrawals", withdrawals, 8),
            _int("expires_at", expires_at, 8, signed=True),
        )
    )
