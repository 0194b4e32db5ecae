"""How many WebSockets the daemon holds: in all, before login, and per agent.

Pure bookkeeping, checked and updated with no ``await`` in between (trio runs one task
at a time), so two sockets racing for the last slot cannot both get it. A socket is
counted from its handshake to its end; it is "unauthenticated" until its login is
accepted, and then counts against its agent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class SocketLimits:
    max_sockets: int = 2048
    max_unauthenticated: int = 128
    max_per_agent: int = 8
    auth_timeout_s: float = 10.0
    # a cancel-on-disconnect socket silent this long is closed (4002), its quotes cancelled
    heartbeat_timeout_s: float = 10.0


class SocketGate:
    def __init__(self, limits: SocketLimits) -> None:
        self.limits = limits
        self.open = 0
        self.unauthenticated = 0
        self._by_agent: Counter[str] = Counter()
        self.refused = 0

    def admit(self) -> str | None:
        """Count a new (unauthenticated) socket, or say why it is refused."""
        if self.open >= self.limits.max_sockets:
            reason = f"too many sockets (at most {self.limits.max_sockets})"
        elif self.unauthenticated >= self.limits.max_unauthenticated:
            reason = f"too many sockets awaiting login (at most {self.limits.max_unauthenticated})"
        else:
            self.open += 1
            self.unauthenticated += 1
            return None
        self.refused += 1
        return reason

    def login(self, agent_id: str) -> bool:
        """Move the socket to ``agent_id``'s count, unless that agent is at its cap
        (False: the socket stays unauthenticated until the caller closes it)."""
        if self._by_agent[agent_id] >= self.limits.max_per_agent:
            self.refused += 1
            return False
        self.unauthenticated -= 1
        self._by_agent[agent_id] += 1
        return True

    def release(self, agent_id: str | None) -> None:
        """The socket ended: ``agent_id`` is the agent it counted for (None: no login)."""
        self.open -= 1
        if agent_id is None:
            self.unauthenticated -= 1
            return
        self._by_agent[agent_id] -= 1
        if self._by_agent[agent_id] <= 0:
            del self._by_agent[agent_id]

    def of_agent(self, agent_id: str) -> int:
        return self._by_agent[agent_id]

    def statistics(self) -> dict[str, int]:
        return {
            "open": self.open,
            "unauthenticated": self.unauthenticated,
            "refused": self.refused,
        }


@dataclass(frozen=True)
class PublicLimits:
    """Caps of the unauthenticated stream (``GET /ws/public``, issue 15): in all, and
    per client address, so watchers can never crowd out the agents' sockets."""

    max_sockets: int = 256
    max_per_address: int = 16
    subscribe_timeout_s: float = 10.0


class PublicGate:
    """Counts public-stream sockets, in all and per address (no ``await`` in between)."""

    def __init__(self, limits: PublicLimits) -> None:
        self.limits = limits
        self.open = 0
        self._by_address: Counter[str] = Counter()
        self.refused = 0

    def admit(self, address: str) -> str | None:
        """Count a new public socket from ``address``, or say why it is refused."""
        if self.open >= self.limits.max_sockets:
            reason = f"too many public sockets (at most {self.limits.max_sockets})"
        elif self._by_address[address] >= self.limits.max_per_address:
            reason = f"at most {self.limits.max_per_address} public sockets per address"
        else:
            self.open += 1
            self._by_address[address] += 1
            return None
        self.refused += 1
        return reason

    def release(self, address: str) -> None:
        self.open -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]

    def statistics(self) -> dict[str, int]:
        return {"open": self.open, "refused": self.refused}
