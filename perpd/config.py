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
    # d-store: database
    db_busy_timeout_ms: int = 2_000  # longest a write waits for the lock, then 503
    db_readers: int = 2  # read-only connections (threads) serving reads
    db_wal_limit_bytes: int = 16 * 1024 * 1024  # journal_size_limit; checkpoint above half
    db_checkpoint_interval_s: float = 5.0  # how often the WAL size is looked at

    def __post_init__(self) -> None:
        if self.oracle not in ("sim", "pyth"):
            raise ValueError(f"oracle must be 'sim' or 'pyth', not {self.oracle!r}")
        if self.funding_period_s < 1:
            raise ValueError("funding period must be at least 1 s")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if not 0 <= self.db_busy_timeout_ms <= 60_000:
            raise ValueError("db busy timeout must be 0..60000 ms")
        if not 1 <= self.db_readers <= 64:
            raise ValueError("db readers must be 1..64")
        if self.db_wal_limit_bytes < 0 or self.db_checkpoint_interval_s <= 0:
            raise ValueError("db WAL limit must be >= 0 and the checkpoint interval > 0")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Config:
        """Build from a mapping, refusing unknown keys (a typo must not be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(unknown)}")
        return cls(**values)
