"""The daemon's configuration: one frozen dataclass, built from the command line."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from solders.pubkey import Pubkey

from perpd.chain._program import LOCAL_PROGRAM_ID
from perpd.limits import TradeLimits
from perpd.markets import DEFAULT_FUNDING_PERIOD_S
from perpd.ratelimit import Rate, RateLimits

CHAIN_MODES = ("local", "rpc", "none")


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
    # d-limits: per-agent limits (docs/limits.md lists each with what it refuses)
    min_size_usdc: tuple[tuple[str, int], ...] = ()  # (market, micro-USDC) over 10 USDC
    max_open_requests_per_agent: int = 100
    max_live_quotes_per_agent: int = 500
    max_live_quotes_per_request: int = 100
    max_live_quotes_per_maker_request: int = 1
    agent_rate_per_s: float = 100.0  # signed calls and socket quotes per agent; 0: off
    agent_burst: int = 200
    address_rate_per_s: float = 1000.0  # every HTTP call per client address; 0: off
    address_burst: int = 2000
    public_rate_per_s: float = 10.0  # unsigned HTTP calls per client address; 0: off
    public_burst: int = 50
    connection_rate_per_s: float = 50.0  # new TCP connections per client address; 0: off
    connection_burst: int = 500
    socket_rate_per_s: float = 5.0  # WebSocket handshakes per client address; 0: off
    socket_burst: int = 64
    rate_table_size: int = 100_000  # buckets kept per table (LRU beyond)
    refusal_delay_s: float = 0.5  # a 429 for a rate is answered this late (0: at once)
    refusal_hold_max: int = 256  # 429s held back at once (each holds a socket)
    invalid_call_cost: int = 10  # agent tokens a verified call refused 400 costs in all
    page_default: int = 100  # rows per page of GET /requests, /quotes, /positions
    page_max: int = 500
    expiry_batch: int = 200  # requests + quotes expired per unit of work
    retention_s: int = 3600  # finished requests and quotes are deleted this long after
    prune_interval_s: float = 60.0
    prune_batch: int = 1000
    # d-ws: sockets
    max_connections: int = 4096  # live TCP connections (HTTP and WebSocket); then 503
    ws_max_sockets: int = 2048  # live WebSockets in all; then the handshake gets 503
    ws_max_unauthenticated: int = 128  # sockets not yet logged in; then 503
    ws_max_per_agent: int = 8  # live sockets per agent; then error rate_limited, 1008
    ws_max_message: int = 16 * 1024  # bytes; a larger message closes the socket (1009)
    ws_auth_timeout_s: float = 10.0  # a socket must log in within this, else 1008
    # d-store: database
    db_busy_timeout_ms: int = 2_000  # longest a write waits for the lock, then 503
    db_readers: int = 2  # read-only connections (threads) serving reads
    db_wal_limit_bytes: int = 16 * 1024 * 1024  # journal_size_limit; checkpoint above half
    db_checkpoint_interval_s: float = 1.0  # how often the WAL size is looked at
    # the GIL hand-over interval: the database threads wait at most this for the GIL after
    # each SQLite call while the trio thread is busy (CPython's default is 5 ms)
    gil_switch_interval_s: float = 0.0002
    # consent-api: chain mode
    # local | rpc | none (SPEC §6): local is the default; none (custodial, SQLite the only
    # ledger) is kept for tests. With a chain, consents are required.
    chain: str = "local"
    program_id: str = str(LOCAL_PROGRAM_ID)  # the escrow program the consents name
    # chain-local: rpc
    rpc_url: str = ""  # --chain rpc: the cluster's JSON-RPC URL
    authority_keypair: str = ""  # --chain rpc: the upgrade authority's keypair file
    router_keypair: str = ""  # --chain rpc: the router's keypair file ("" = the authority)
    priority_fee_micro_lamports: int = 0  # compute-unit price of every rpc transaction
    # submitter: how long a call waits for its chain transaction, then 503 chain_unavailable
    chain_confirm_timeout_s: float = 30.0
    # ops: oracle. Hermes of Pyth's upgraded Core answers 401 without a key (sent as
    # "Authorization: Bearer <key>"); set it in the config file or PERPD_HERMES_API_KEY.
    hermes_api_key: str = field(default="", repr=False)  # never in a log line
    # latency: the writer commits the units queued together in one transaction, at most
    # this many (each in its own savepoint; 1 = one commit per unit)
    db_group_max: int = 32
    # i13-history: the public funding_curve event (GET /markets shows the curve either way)
    funding_curve_events: bool = True
    # i13-quotes: a cancel-on-disconnect socket must send something (a ping) this often
    ws_heartbeat_timeout_s: float = 10.0
    # i13-quotes: how long a client id is remembered (a retry within it gets the first
    # answer); at least retention_s, and an hour past the longest request life
    client_id_retention_s: int = 86_400

    def __post_init__(self) -> None:
        if self.oracle not in ("sim", "pyth"):
            raise ValueError(f"oracle must be 'sim' or 'pyth', not {self.oracle!r}")
        if self.funding_period_s < 1:
            raise ValueError("funding period must be at least 1 s")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} out of range")
        if not 1 <= self.page_default <= self.page_max:
            raise ValueError("page_default must lie in 1..page_max")
        if min(self.max_connections, self.ws_max_sockets, self.ws_max_per_agent) < 1:
            raise ValueError("connection and socket caps must be at least 1")
        if not 0 < self.gil_switch_interval_s <= 0.1:
            raise ValueError("gil_switch_interval_s must lie in (0, 0.1]")
        if not 0 <= self.db_busy_timeout_ms <= 60_000:
            raise ValueError("db busy timeout must be 0..60000 ms")
        if not 1 <= self.db_readers <= 64:
            raise ValueError("db readers must be 1..64")
        if not 1 <= self.db_group_max <= 1000:
            raise ValueError("db group max must be 1..1000")
        if self.db_wal_limit_bytes < 0 or self.db_checkpoint_interval_s <= 0:
            raise ValueError("db WAL limit must be >= 0 and the checkpoint interval > 0")
        if self.chain not in CHAIN_MODES:
            raise ValueError(f"chain must be one of {', '.join(CHAIN_MODES)}, not {self.chain!r}")
        self.program_pubkey()
        if self.chain == "rpc" and not (
            self.rpc_url and (self.router_keypair or self.authority_keypair)
        ):
            raise ValueError(
                "--chain rpc needs --rpc-url and --authority-keypair (or a router keypair)"
            )
        if self.priority_fee_micro_lamports < 0:
            raise ValueError("priority fee must be >= 0")
        if not 0 < self.chain_confirm_timeout_s <= 600:
            raise ValueError("chain confirm timeout must lie in (0, 600] s")
        if not 0 < self.ws_heartbeat_timeout_s <= 3600:
            raise ValueError("ws heartbeat timeout must lie in (0, 3600] s")
        if self.client_id_retention_s < max(self.retention_s, 3600):
            raise ValueError("client_id_retention_s must be at least retention_s and 3600")
        self.trade_limits()  # validates the caps and minimum sizes
        self.rate_limits()

    def program_pubkey(self) -> Pubkey:
        try:
            return Pubkey.from_string(self.program_id)
        except ValueError:
            raise ValueError(f"program id {self.program_id!r} is not a base58 address") from None

    def trade_limits(self) -> TradeLimits:
        return TradeLimits(
            min_size=self.min_size_usdc,
            max_open_requests_per_agent=self.max_open_requests_per_agent,
            max_live_quotes_per_agent=self.max_live_quotes_per_agent,
            max_live_quotes_per_request=self.max_live_quotes_per_request,
            max_live_quotes_per_maker_request=self.max_live_quotes_per_maker_request,
            expiry_batch=self.expiry_batch,
        )

    def rate_limits(self) -> RateLimits:
        bursts = ("agent", "address", "public", "connection", "socket")
        for name in (*(f"{b}_burst" for b in bursts), "rate_table_size", "invalid_call_cost"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        return RateLimits(
            agent=Rate(self.agent_rate_per_s, self.agent_burst),
            address=Rate(self.address_rate_per_s, self.address_burst),
            public=Rate(self.public_rate_per_s, self.public_burst),
            connection=Rate(self.connection_rate_per_s, self.connection_burst),
            socket=Rate(self.socket_rate_per_s, self.socket_burst),
            max_keys=self.rate_table_size,
            refusal_delay_s=self.refusal_delay_s,
            refusal_hold_max=self.refusal_hold_max,
            invalid_call_cost=self.invalid_call_cost,
        )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> Config:
        """Build from a mapping, refusing unknown keys (a typo must not be ignored)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration key(s): {', '.join(unknown)}")
        return cls(**values)
