"""Agent authentication (SPEC §6): ed25519 over timestamp, method, target and body hash.

An agent is its Solana keypair; ``agent_id`` is the base58 public key. Verification is
pure here; replay protection needs memory of accepted signatures, which the store keeps
(`perpd.store` records each accepted signature in the same database as the state).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from solders.keypair import Keypair
from solders.pubkey import Pubkey
from solders.signature import Signature

from perpd.errors import Unauthorized

MAX_SKEW_MS = 30_000
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def signing_message(timestamp_ms: int | str, method: str, target: str, body: bytes) -> bytes:
    """The exact bytes an agent signs: ``"{ts}\\n{METHOD}\\n{target}\\n{sha256(body) hex}"``."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp_ms}\n{method.upper()}\n{target}\n{digest}".encode()


def sign_headers(
    keypair: Keypair, method: str, target: str, body: bytes, *, timestamp_ms: int | None = None
) -> dict[str, str]:
    """The three headers for a call signed by ``keypair`` (used by tests and tools)."""
    ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
    sig = keypair.sign_message(signing_message(ts, method, target, body))
    return {
        "X-Agent-Id": str(keypair.pubkey()),
        "X-Timestamp": str(ts),
        "X-Signature": str(sig),
    }


def parse_agent_id(text: object) -> Pubkey:
    """A base58 ed25519 public key, or `Unauthorized`."""
    if not isinstance(text, str) or not 32 <= len(text) <= 44:
        raise Unauthorized("agent id must be a base58 public key")
    try:
        return Pubkey.from_string(text)
    except ValueError as exc:
        raise Unauthorized("agent id must be a base58 public key") from exc


@dataclass(frozen=True)
class Verified:
    """An authenticated call: who signed it, and the signature (the replay key).

    ``session`` marks an action on a WebSocket opened with this (single-use) login: the
    login's signature was recorded when the socket opened, so its actions record nothing
    more, yet they run as that agent and no other.
    """

    agent_id: str
    signature: str
    timestamp_ms: int
    session: bool = False


def verify(
    agent_id: str | None,
    timestamp: str | None,
    signature: str | None,
    method: str,
    target: str,
    body: bytes,
    *,
    now_ms: int,
) -> Verified:
    """Check the three headers; `Unauthorized` (401) if missing, stale or forged."""
    if not agent_id or not timestamp or not signature:
        raise Unauthorized("X-Agent-Id, X-Timestamp and X-Signature are required")
    pubkey = parse_agent_id(agent_id)
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        raise Unauthorized("X-Timestamp must be unix time in milliseconds")
    if abs(int(timestamp) - now_ms) > MAX_SKEW_MS:
        raise Unauthorized("X-Timestamp is more than 30 s away from the server clock")
    if len(signature) > 100:
        raise Unauthorized("X-Signature is not a base58 ed25519 signature")
    try:
        sig = Signature.from_string(signature)
    except ValueError as exc:
        raise Unauthorized("X-Signature is not a base58 ed25519 signature") from exc
    if not sig.verify(pubkey, signing_message(timestamp, method, target, body)):
        raise Unauthorized("signature does not match")
    return Verified(agent_id=str(pubkey), signature=str(sig), timestamp_ms=int(timestamp))
