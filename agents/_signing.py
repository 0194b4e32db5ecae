"""Request signing (SPEC §6): ed25519 over timestamp, method, target and body hash.

The signed message is ``"{timestamp_ms}\\n{METHOD}\\n{target}\\n{sha256 hex of body}"``
where ``target`` is the request target exactly as sent (path and ``?query``). The
daemon refuses a signature it has already accepted (replay), and ed25519 signatures are
deterministic, so two identical calls in the same millisecond would collide: `Signer`
hands out strictly increasing timestamps to make every signature unique.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from solders.keypair import Keypair

__all__ = ["Signer", "signing_message"]


def signing_message(timestamp_ms: int, method: str, target: str, body: bytes) -> bytes:
    """The exact bytes an agent signs for one call."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{timestamp_ms}\n{method.upper()}\n{target}\n{digest}".encode()


class Signer:
    """Signs calls for one keypair with unique, increasing millisecond timestamps.

    ``clock`` returns unix seconds; it must be within 30 s of the daemon's clock (pass
    the daemon's own clock in tests that freeze time).
    """

    def __init__(self, keypair: Keypair, *, clock: Callable[[], float] = time.time) -> None:
        self.keypair = keypair
        self.agent_id = str(keypair.pubkey())
        self.clock = clock
        self._last_ms = 0

    def timestamp_ms(self) -> int:
        """Now in unix milliseconds, strictly greater than any earlier one."""
        self._last_ms = max(int(self.clock() * 1000), self._last_ms + 1)
        return self._last_ms

    def headers(self, method: str, target: str, body: bytes) -> dict[str, str]:
        """``X-Agent-Id``, ``X-Timestamp`` and ``X-Signature`` for one HTTP call."""
        ts = self.timestamp_ms()
        sig = self.keypair.sign_message(signing_message(ts, method, target, body))
        return {"X-Agent-Id": self.agent_id, "X-Timestamp": str(ts), "X-Signature": str(sig)}

    def ws_auth(self) -> dict[str, object]:
        """The WebSocket ``auth`` message: a signature of ``GET /ws`` with an empty body."""
        ts = self.timestamp_ms()
        sig = self.keypair.sign_message(signing_message(ts, "GET", "/ws", b""))
        return {"type": "auth", "agent_id": self.agent_id, "timestamp": ts, "signature": str(sig)}
