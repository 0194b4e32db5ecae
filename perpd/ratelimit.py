"""Token-bucket rate limits per key (an agent, a client address), in bounded memory.

Pure logic with an injected monotonic clock; no I/O. A bucket holds up to ``burst``
tokens and refills at ``rate`` per second; a call takes one token or is refused with
the seconds until one is back. Each call is O(1): the table is an insertion-ordered
dict used as an LRU, so idle buckets (full again, hence equal to a fresh one) are
dropped from its old end as calls come in, and the table never holds more than
``max_keys`` buckets — when it is full the least recently used bucket is forgotten
(that key starts again with a full bucket: lenient, never a leak).
"""

from __future__ import annotations

import functools
import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from perpd.tarpit import Tarpit


@dataclass(frozen=True)
class Rate:
    """``per_s`` tokens a second, at most ``burst`` at once; ``per_s <= 0`` means unlimited."""

    per_s: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_s <= 0


class Buckets:
    """One token bucket per key, at most ``max_keys`` of them."""

    def __init__(
        self, rate: Rate, *, max_keys: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        # key -> (tokens, at): tokens held at monotonic time ``at``
        self._table: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._refill_s = rate.burst / rate.per_s if not rate.unlimited else 0.0
        self.refused = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._table)

    def take(self, key: str) -> float:
        """Take one token for ``key``: 0.0 if allowed, else the seconds until one is back."""
        if self.rate.unlimited:
            return 0.0
        now = self._clock()
        rate, burst = self.rate.per_s, float(self.rate.burst)
        entry = self._table.pop(key, None)
        tokens = burst if entry is None else min(burst, entry[0] + (now - entry[1]) * rate)
        self._drop_idle(now)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / rate
            self.refused += 1
        self._table[key] = (tokens, now)  # newest at the end
        return wait

    def spend(self, key: str, tokens: float) -> None:
        """Take ``tokens`` more from ``key``'s bucket after its call went through (a
        penalty). The bucket may go into debt, by at most ``tokens``: a penalty taken
        from an almost empty bucket still delays the next call by ``tokens / rate``
        (floored at empty, a loop paced at the refill rate would never pay it), and
        never bans for longer."""
        if self.rate.unlimited or tokens <= 0:
            return
        now = self._clock()
        entry = self._table.pop(key, None)
        burst = float(self.rate.burst)
        held = burst if entry is None else min(burst, entry[0] + (now - entry[1]) * self.rate.per_s)
        self._table[key] = (max(-tokens, held - tokens), now)

    def peek(self, key: str) -> float:
        """What `take` would answer if it refuses (counted as a refusal), else 0.0 with
        nothing taken: the cheap early check, the exact one comes later with `take`."""
        if self.rate.unlimited:
            return 0.0
        entry = self._table.get(key)
        if entry is None:
            return 0.0
        rate = self.rate.per_s
        tokens = min(float(self.rate.burst), entry[0] + (self._clock() - entry[1]) * rate)
        if tokens >= 1.0:
            return 0.0
        self.refused += 1
        return (1.0 - tokens) / rate

    def _drop_idle(self, now: float) -> None:
        """Forget buckets that refilled completely (at most two per call: amortised O(1)),
        and the least recently used ones while the table is full."""
        for _ in range(2):
            if not self._table:
                return
            key, (_, at) = next(iter(self._table.items()))
            if now - at < self._refill_s:
                break
            del self._table[key]
        while len(self._table) >= self.max_keys:
            self._table.popitem(last=False)
            self.evicted += 1


def retry_after(wait_s: float) -> int:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return max(1, math.ceil(wait_s))


@functools.lru_cache(maxsize=4096)  # parsing an address costs more than the bucket itself
def address_key(host: str | None) -> str:
    """The bucket key of a client address: IPv4 as is, IPv6 by its /64 (one host's
    usual allocation, so rotating within it does not multiply an attacker's budget)."""
    if not host:
        return "?"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class RateLimits:
    """The rates the router applies (see docs/limits.md)."""

    agent: Rate = Rate(100.0, 200)  # signed calls (and socket quotes) per agent
    address: Rate = Rate(1000.0, 2000)  # every HTTP call per client address
    public: Rate = Rate(100.0, 200)  # unsigned calls per client address
    connection: Rate = Rate(50.0, 500)  # new TCP connections per client address
    socket: Rate = Rate(5.0, 64)  # WebSocket handshakes per client address
    max_keys: int = 100_000  # buckets kept per table
    refusal_delay_s: float = 0.5  # a rate refusal is answered this late (0: at once)
    refusal_hold_max: int = 256  # refusals held back at once; past it, answered at once
    invalid_call_cost: int = 10  # tokens a verified call refused 400 costs its agent


class Limiter:
    """The router's buckets: per agent, per address (all calls), per address (unsigned),
    and per address for new connections (taken by the server before reading any)."""

    def __init__(
        self, limits: RateLimits = RateLimits(), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits
        self.agent = Buckets(limits.agent, max_keys=limits.max_keys, clock=clock)
        self.address = Buckets(limits.address, max_keys=limits.max_keys, clock=clock)
        self.public = Buckets(limits.public, max_keys=limits.max_keys, clock=clock)
        self.connection = Buckets(limits.connection, max_keys=limits.max_keys, clock=clock)
        self.socket = Buckets(limits.socket, max_keys=limits.max_keys, clock=clock)
        self.tarpit = Tarpit(limits.refusal_delay_s, limits.refusal_hold_max)

    def statistics(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for name in ("agent", "address", "public", "connection", "socket"):
            b: Buckets = getattr(self, name)
            out[f"{name}_buckets"] = len(b)
            out[f"{name}_refused"] = b.refused
            out[f"{name}_evicted"] = b.evicted
        out["refusals_held"] = self.tarpit.held_total
        return out
