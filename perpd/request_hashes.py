"""The consent hashes of recent requests, in memory: a quote consent is checked with no
read before its unit.

A request's hash is fixed when the request is created, so an entry can never be wrong
about a request it names; the unit still checks the quote consent's hash against the
stored request (`perpd.engine.create_quote`), so a miss or a pruned request only costs
the read this saves. Bounded, oldest first.
"""

from __future__ import annotations

from collections import OrderedDict


class RequestHashes:
    def __init__(self, max_entries: int = 100_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._hashes: OrderedDict[str, str] = OrderedDict()  # request_id -> hash (hex)
        self.hits = 0

    def __len__(self) -> int:
        return len(self._hashes)

    def get(self, request_id: str) -> str | None:
        found = self._hashes.get(request_id)
        self.hits += found is not None
        return found

    def add(self, request_id: str, request_hash: str) -> None:
        self._hashes[request_id] = request_hash
        while len(self._hashes) > self.max_entries:
            self._hashes.popitem(last=False)
