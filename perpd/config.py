"""The daemon's configuration: one frozen dataclass, built from the command line."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from perpd.markets import DEFAULT_FUNDING_PERIOD_S


@dataclass(frozen=True)
class Config:
    db: str = "perpd.db"
    host: str = "127.0.0.1"
    port: int = 8000
    dev: bool = False
    funding_period_s: int = DEFAULT_FUNDING_PERIOD_S
    oracle: str = "sim"  # sim | pyth
    hermes_url: str = "https://hermes.pyth.network"
    sim_seed: int = 7
    sim_interval_s: float = 1.0
    keeper: bool = True  # the daemon liquidates what no agent has
    keeper_grace_s: float = 2.0  # how long agents get to liquidate first
    graceful_timeout_s: float = 5.0
    # d-ws: sockets
    max_connections: int = 4096  # live TCP connections (HTTP and WebSocket); then 503
    ws_max_sockets: int = 2048  # live WebSockets in all; then the handshake gets 503
    ws_max_unauthenticated: int = 128  # sockets not yet logged in; then 503
    ws_max_per_agent: int = 8  # live sockets per agent; then error rate_limited, 1008
    ws_max_message: int = 16 * 1024  # bytes; a larger message closes the socket (1009)
    ws_auth_timeout_s: float = 10.0  # a socket must log in within this, else 1008

    def __post_init__(self) -> None:
        if self.oracle not in ("sim", "pyth"):
            raise ValueError(f"oracle must be 'sim' or 'pyth', not {self.oracle!r}")
        if self.funding_period_s < 1:
            raise ValueError("funding period must be at least 1 s")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if min(self.max_connections, self.ws_max_sockets, self.ws_max_per_agent) < 1:
            raise ValueError("connection and socket caps must be at least 1")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Config:
        """Build from a mapping, refusing unknown keys (a typo must not be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(unknown)}")
        return cls(**values)
