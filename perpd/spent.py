"""Signatures known to be spent, in memory: a replay is refused without the writer.

The durable record is the store's ``used_signatures`` table, checked inside every unit
of work; this is only its fast path. A signature enters here once a commit has recorded
it (or refused it as a replay), so a hit is always a real replay; a miss proves nothing
and the call goes on to the store. Bounded: entries leave once their timestamp window
has closed (a signature older than that is refused as stale anyway) or, past
``max_entries``, oldest first — the store still refuses those.
"""

from __future__ import annotations

from collections import OrderedDict

from perpd.auth import MAX_SKEW_MS


class SpentSignatures:
    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._seen: OrderedDict[str, int] = OrderedDict()  # signature -> its timestamp (ms)
        self.hits = 0

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, signature: str) -> bool:
        hit = signature in self._seen
        self.hits += hit
        return hit

    def add(self, signature: str, timestamp_ms: int, now_ms: int) -> None:
        """Remember a recorded signature; forget the ones whose window has closed."""
        seen = self._seen
        seen[signature] = timestamp_ms
        seen.move_to_end(signature)
        cutoff = now_ms - 2 * MAX_SKEW_MS
        for _ in range(2):  # amortised O(1): at most two old entries per new one
            old, ts = next(iter(seen.items()))
            if ts >= cutoff or old == signature:
                break
            del seen[old]
        while len(seen) > self.max_entries:
            seen.popitem(last=False)
